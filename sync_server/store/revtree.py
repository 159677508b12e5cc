"""Revision trees, CouchDB's way. Pure functions, no I/O here.

A tree is a flat dict ``{rev: [parent_rev_or_None, deleted]}``; a node whose
parent is None is a root (a first revision, or one whose ancestors were stemmed
away by ``_revs_limit``). Leaves are the nodes no other node names as parent.

The winner is the leaf with the highest (not deleted, generation, hash), the
rule of CouchDB (couch_doc / couch_key_tree "winning revision") and PouchDB
(pouchdb-merge/src/winningRev.js), so all three pick the same revision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import BadRequest

Tree = dict[str, list]

# CouchDB accepts any text after the generation, even none (couch_doc:parse_rev/1: PouchDB's
# tests send "3-totally_fake_rev" and expect a 409, not a 400, and "1-"); the length is
# bounded so that ids stay short enough to index.
_REV_RE = re.compile(r"^([0-9]{1,10})-([^\x00]{0,256})$", re.DOTALL)


def parse_rev(rev: object) -> tuple[int, str]:
    """Split ``"N-hash"`` into (N, hash).

    :raises BadRequest: when the revision is not of that form.
    """
    match = _REV_RE.match(rev) if isinstance(rev, str) else None
    if not match:
        raise BadRequest("Invalid rev format")
    return int(match.group(1)), match.group(2)


def pos(rev: str) -> int:
    """The generation of a revision already known to be valid."""
    return int(rev.split("-", 1)[0])


def is_deleted(tree: Tree, rev: str) -> bool:
    """Whether the revision ``rev`` of the tree is a deletion."""
    return bool(tree[rev][1])


def sort_key(tree: Tree, rev: str) -> tuple[bool, int, str]:
    """The key CouchDB orders leaves by: live first, then generation, then hash."""
    generation, digest = rev.split("-", 1)
    return (not tree[rev][1], int(generation), digest)


def leaves(tree: Tree) -> list[str]:
    """Every leaf, winner first, in CouchDB's order."""
    parents = {node[0] for node in tree.values()}
    found = [rev for rev in tree if rev not in parents]
    return sorted(found, key=lambda rev: sort_key(tree, rev), reverse=True)


def winning_rev(tree: Tree) -> str:
    """The deterministic winner among the leaves."""
    return leaves(tree)[0]


def is_leaf(tree: Tree, rev: str) -> bool:
    """Whether no revision in the tree descends from ``rev``."""
    return rev in tree and all(node[0] != rev for node in tree.values())


def path(tree: Tree, rev: str) -> list[str]:
    """Revisions from ``rev`` back to its root, newest first."""
    found = []
    current: str | None = rev
    while current is not None and current in tree:
        found.append(current)
        current = tree[current][0]
    return found


def merge_path(tree: Tree, revs: list[str], deleted: bool) -> bool:
    """Add a path (newest first, consecutive generations) to the tree in place.

    The newest revision gets the ``deleted`` flag. Returns True when the leaf
    was not already in the tree.
    """
    leaf = revs[0]
    if leaf in tree:
        return False
    for index, rev in enumerate(revs):
        parent = revs[index + 1] if index + 1 < len(revs) else None
        if rev in tree:
            if tree[rev][0] is None and parent is not None:
                tree[rev][0] = parent  # the incoming path knows more history than we kept
                continue
            break
        tree[rev] = [parent, deleted if index == 0 else False]
    return True


def stem(tree: Tree, limit: int) -> list[str]:
    """Keep only the newest ``limit`` revisions of each leaf's path, in place.

    As in CouchDB (couch_key_tree:stem/2) and PouchDB (pouchdb-merge stem), each
    path is cut on its own and the cut paths are merged again, so a revision
    keeps its parent only when some cut path still holds both.
    Returns the removed revisions, whose bodies may then be deleted.
    """
    keep: set[str] = set()
    linked: set[str] = set()
    for leaf in leaves(tree):
        chain = path(tree, leaf)[:limit]
        keep.update(chain)
        linked.update(chain[:-1])
    removed = [rev for rev in tree if rev not in keep]
    for rev in removed:
        del tree[rev]
    for rev, node in tree.items():
        if rev not in linked:
            node[0] = None
    return removed


def descendant_leaves(tree: Tree, rev: str) -> list[str]:
    """The leaves that descend from ``rev`` (itself when it is a leaf)."""
    return [leaf for leaf in leaves(tree) if rev in path(tree, leaf)]


def missing_revs(tree: Tree, revs: Iterable[str]) -> tuple[list[str], list[str]]:
    """The revisions the tree lacks, and the leaves that could be their ancestors."""
    missing = [rev for rev in dict.fromkeys(revs) if rev not in tree]
    if not missing:
        return [], []
    highest = max(pos(rev) for rev in missing)
    ancestors = [leaf for leaf in leaves(tree) if pos(leaf) < highest]
    return missing, sorted(ancestors)


def revisions(tree: Tree, rev: str, limit: int | None = None) -> dict:
    """The ``_revisions`` object for ``rev``: start and the hashes, newest first.

    :param limit: at most this many (``_revs_limit``: CouchDB cuts the history it
        sends to the current limit even before compaction stems the tree).
    """
    chain = path(tree, rev)[:limit]
    return {"start": pos(rev), "ids": [r.split("-", 1)[1] for r in chain]}


def path_from_revisions(rev: str, revisions_obj: object) -> list[str]:
    """Turn a document's ``_rev`` and ``_revisions`` into a path, newest first.

    :raises BadRequest: when ``_revisions`` is malformed or does not match ``_rev``.
    """
    if revisions_obj is None:
        return [rev]
    if not isinstance(revisions_obj, dict):
        raise BadRequest("_revisions must be an object")
    start, ids = revisions_obj.get("start"), revisions_obj.get("ids")
    if not isinstance(start, int) or isinstance(start, bool) or start < 1 or not isinstance(ids, list) or not ids:
        raise BadRequest("_revisions must have an integer start and a non-empty ids list")
    if len(ids) > start:
        raise BadRequest("_revisions has more ids than its start allows")
    chain = [f"{start - i}-{h}" for i, h in enumerate(ids)]
    for item in chain:
        parse_rev(item)
    if chain[0] != rev:
        raise BadRequest("_rev does not match the first of _revisions")
    return chain
