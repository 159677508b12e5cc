"""Revision tree rules, with cases from CouchDB's documented behaviour.

CouchDB picks the winner among leaves by (not deleted, generation, hash),
highest first (docs.couchdb.org "Replication and conflict model"; couch_doc and
pouchdb-merge/src/winningRev.js agree).
"""

import pytest

from sync_server.errors import BadRequest
from sync_server.store import revtree


def tree_of(*paths, deleted=()):
    """Build a tree from paths written oldest first."""
    tree = {}
    for chain in paths:
        revtree.merge_path(tree, list(reversed(chain)), chain[-1] in deleted)
    return tree


@pytest.mark.parametrize(
    "paths, deleted, winner",
    [
        ([["1-a"]], (), "1-a"),
        ([["1-a", "2-b"], ["1-a", "2-c"]], (), "2-c"),  # same generation: higher hash wins
        ([["1-a", "2-b", "3-x"], ["1-a", "2-z"]], (), "3-x"),  # longer branch wins over a higher hash
        ([["1-a", "2-b", "3-x"], ["1-a", "2-c"]], ("3-x",), "2-c"),  # a live leaf beats a deleted deeper one
        ([["1-a", "2-b"], ["1-a", "2-c"]], ("2-b", "2-c"), "2-c"),  # all deleted: usual order among them
        ([["1-a", "2-B"], ["1-a", "2-a"]], (), "2-a"),  # byte order: lowercase sorts above uppercase
        ([["1-a", "2-9"], ["1-a", "2-10"]], (), "2-9"),  # hashes compare as strings, not numbers
    ],
)
def test_winning_rev_follows_couchdb(paths, deleted, winner):
    assert revtree.winning_rev(tree_of(*paths, deleted=deleted)) == winner


def test_leaves_are_sorted_winner_first():
    tree = tree_of(["1-a", "2-b"], ["1-a", "2-c"], ["1-a", "2-d"], deleted=("2-d",))
    assert revtree.leaves(tree) == ["2-c", "2-b", "2-d"]


def test_is_deleted_reads_each_node():
    tree = tree_of(["1-a", "2-b"], ["1-a", "2-d"], deleted=("2-d",))
    assert [revtree.is_deleted(tree, rev) for rev in ("1-a", "2-b", "2-d")] == [False, False, True]


def test_merge_path_is_idempotent():
    tree = tree_of(["1-a", "2-b"])
    assert revtree.merge_path(tree, ["2-b", "1-a"], False) is False
    assert tree == {"1-a": [None, False], "2-b": ["1-a", False]}


def test_merge_path_extends_a_leaf():
    tree = tree_of(["1-a", "2-b"])
    assert revtree.merge_path(tree, ["3-c", "2-b", "1-a"], False)
    assert revtree.leaves(tree) == ["3-c"]


def test_merge_path_reattaches_a_stemmed_root():
    tree = {"2-b": [None, False]}
    revtree.merge_path(tree, ["3-c", "2-b", "1-a"], False)
    assert revtree.path(tree, "3-c") == ["3-c", "2-b", "1-a"]


def test_merge_disjoint_stemmed_paths_makes_a_conflict():
    # CouchDB: paths that share no revision become separate branches (couch_key_tree:merge).
    tree = tree_of(["1-a", "2-b"])
    revtree.merge_path(tree, ["4-d", "3-c"], False)
    assert revtree.leaves(tree) == ["4-d", "2-b"]


def test_stem_keeps_limit_revisions_per_leaf():
    tree = tree_of(["1-a", "2-b", "3-c", "4-d"], ["1-a", "2-b", "3-x"])
    removed = revtree.stem(tree, 2)
    assert removed == ["1-a"]
    # each leaf's path is cut on its own: 3-c loses its parent although 2-b stays for 3-x
    assert revtree.path(tree, "4-d") == ["4-d", "3-c"]
    assert revtree.path(tree, "3-x") == ["3-x", "2-b"]


def test_stem_keeps_shared_ancestors_of_a_short_branch():
    tree = tree_of(["1-a", "2-b", "3-c", "4-d"], ["1-a", "2-e"])
    revtree.stem(tree, 2)
    assert set(tree) == {"4-d", "3-c", "2-e", "1-a"}


def test_missing_revs_reports_possible_ancestors():
    tree = tree_of(["1-a", "2-b"], ["1-a", "2-c", "3-d"])
    missing, ancestors = revtree.missing_revs(tree, ["2-b", "3-z", "4-y", "3-z"])
    assert missing == ["3-z", "4-y"]
    assert ancestors == ["2-b", "3-d"]


def test_missing_revs_nothing_missing():
    assert revtree.missing_revs(tree_of(["1-a"]), ["1-a"]) == ([], [])


def test_revisions_object_lists_hashes_newest_first():
    tree = tree_of(["1-a", "2-b", "3-c"])
    assert revtree.revisions(tree, "3-c") == {"start": 3, "ids": ["c", "b", "a"]}


def test_descendant_leaves_for_latest():
    tree = tree_of(["1-a", "2-b", "3-c"], ["1-a", "2-d"])
    assert revtree.descendant_leaves(tree, "1-a") == ["3-c", "2-d"]
    assert revtree.descendant_leaves(tree, "2-b") == ["3-c"]


@pytest.mark.parametrize("rev", ["", "1", "a-b", "-abc", 12, None, "1-a\x00b", "1-" + "a" * 300])
def test_parse_rev_rejects_malformed(rev):
    with pytest.raises(BadRequest):
        revtree.parse_rev(rev)


def test_parse_rev_accepts_couchdb_revs():
    assert revtree.parse_rev("12-967a00dff5e02add41819138abb3284d") == (12, "967a00dff5e02add41819138abb3284d")


@pytest.mark.parametrize(
    "rev, revisions",
    [
        ("2-b", {"start": 3, "ids": ["b", "a"]}),  # start does not match _rev
        ("2-b", {"start": 2, "ids": ["c", "a"]}),  # first id does not match _rev
        ("2-b", {"start": 2, "ids": []}),
        ("2-b", {"start": 1, "ids": ["b", "a"]}),  # more ids than generations
        ("2-b", {"start": "2", "ids": ["b"]}),
        ("2-b", ["b", "a"]),
    ],
)
def test_path_from_revisions_rejects_mismatch(rev, revisions):
    with pytest.raises(BadRequest):
        revtree.path_from_revisions(rev, revisions)


def test_path_from_revisions_builds_the_chain():
    assert revtree.path_from_revisions("3-c", {"start": 3, "ids": ["c", "b"]}) == ["3-c", "2-b"]
