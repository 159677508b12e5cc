"""PouchDB 9 in Node replicates into and out of our server; both sides must end identical.

Each side is dumped (tests/peers/pouch.js ``dump`` for PouchDB, couch_dump.dump for
our server): documents, revision trees (``_revisions`` of every leaf), winners and
``_conflicts`` must be equal, attachments byte for byte.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import couch_dump
import dataset
import pytest

pytestmark = pytest.mark.peers

DB = "cell"
Pouch = Callable[[dict[str, Any]], Any]


@pytest.fixture
def local(tmp_path: Path) -> str:
    """Return the path of an on-disk PouchDB (created on first use)."""
    return str(tmp_path / "pouch-local")


@pytest.fixture
def remote(kiosk: Any) -> str:
    """Create the test database on our server and return its URL (with credentials)."""
    couch_dump.create_db(kiosk.url, DB)
    return f"{kiosk.url}/{DB}"


def load_local(pouch: Pouch, db: str, docs: list[dict[str, Any]]) -> None:
    """Write revision trees into a PouchDB with new_edits: false."""
    assert pouch({"op": "bulk", "db": db, "docs": docs, "new_edits": False}) == []


def replicate(pouch: Pouch, source: str, target: str, **options: Any) -> dict[str, Any]:
    """Replicate with PouchDB and check that it completed without a failed write."""
    result = pouch({"op": "replicate", "source": source, "target": target, **options})
    assert result["ok"] is True, result
    assert result["doc_write_failures"] == 0, result
    assert result["errors"] == [], result
    return result


def dumps(pouch: Pouch, local: str, kiosk: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the dump of our server's database and that of the local PouchDB."""
    return couch_dump.dump(kiosk.url, DB), pouch({"op": "dump", "db": local})


def test_pouchdb_push_one_shot(pouch: Pouch, local: str, remote: str, kiosk: Any) -> None:
    load_local(pouch, local, dataset.SIDE_A)
    result = replicate(pouch, local, remote)
    assert result["docs_written"] == len(dataset.SIDE_A)
    couch_dump.assert_same_dump(*dumps(pouch, local, kiosk))


def test_pouchdb_pull_one_shot(pouch: Pouch, local: str, remote: str, kiosk: Any) -> None:
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_B, new_edits=False)
    result = replicate(pouch, remote, local)
    assert result["docs_written"] == len(dataset.SIDE_B)
    couch_dump.assert_same_dump(*dumps(pouch, local, kiosk))


def test_pouchdb_sync_merges_conflicts_deletions_attachments(
    pouch: Pouch, local: str, remote: str, kiosk: Any
) -> None:
    load_local(pouch, local, dataset.SIDE_A)
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_B, new_edits=False)
    replicate(pouch, local, remote)
    replicate(pouch, remote, local)
    mine, theirs = dumps(pouch, local, kiosk)
    couch_dump.assert_same_dump(mine, theirs)
    assert {i: d["winner"]["_rev"] for i, d in mine.items()} == dataset.expected_winners()
    assert len(mine["conflict"]["winner"]["_conflicts"]) == 2
    leaves = mine["deleted-conflict"]["leaves"]
    assert [leaf["doc"].get("_deleted", False) for leaf in leaves] == [False, True]
    photo = mine["att-binary"]["winner"]["_attachments"]["photo.bin"]
    assert base64.b64decode(photo["data"]) == dataset.BINARY


def test_pouchdb_reads_our_server_like_raw_http(pouch: Pouch, remote: str, kiosk: Any) -> None:
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_A + dataset.SIDE_B, new_edits=False)
    couch_dump.assert_same_dump(couch_dump.dump(kiosk.url, DB), pouch({"op": "dump", "db": remote}))


def test_pouchdb_live_push(pouch: Pouch, local: str, remote: str, kiosk: Any) -> None:
    load_local(pouch, local, dataset.SIDE_A[:4])
    wanted = len({d["_id"] for d in dataset.SIDE_A})
    result = replicate(pouch, local, remote, live=True, wait_for=wanted, then_write=dataset.SIDE_A[4:])
    assert result["reached"] is True, result
    couch_dump.assert_same_dump(*dumps(pouch, local, kiosk))


def test_pouchdb_live_pull(pouch: Pouch, local: str, remote: str, kiosk: Any) -> None:
    # The docs written after the first pause reach PouchDB through the feed=longpoll it waits on.
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_B[:4], new_edits=False)
    wanted = len({d["_id"] for d in dataset.SIDE_B})
    result = replicate(pouch, remote, local, live=True, wait_for=wanted, then_write=dataset.SIDE_B[4:])
    assert result["reached"] is True, result
    couch_dump.assert_same_dump(*dumps(pouch, local, kiosk))


def test_pouchdb_edit_both_sides_after_sync(pouch: Pouch, local: str, remote: str, kiosk: Any) -> None:
    [created] = pouch({"op": "bulk", "db": local, "docs": [{"_id": "minutes", "text": "v1"}]})
    replicate(pouch, local, remote)
    first = {"_id": "minutes", "_rev": created["rev"]}
    [on_pouch] = pouch({"op": "bulk", "db": local, "docs": [{**first, "text": "edited in PouchDB"}]})
    on_kiosk = couch_dump.put_doc(kiosk.url, DB, {**first, "text": "edited on the kiosk"})
    replicate(pouch, local, remote)
    replicate(pouch, remote, local)
    mine, theirs = dumps(pouch, local, kiosk)
    couch_dump.assert_same_dump(mine, theirs)
    winner, loser = sorted([on_pouch["rev"], on_kiosk], reverse=True)
    for side in (mine, theirs):
        assert side["minutes"]["winner"]["_rev"] == winner
        assert side["minutes"]["winner"]["_conflicts"] == [loser]


def test_pouchdb_edit_beats_deletion_on_other_side(
    pouch: Pouch, local: str, remote: str, kiosk: Any
) -> None:
    [created] = pouch({"op": "bulk", "db": local, "docs": [{"_id": "member", "name": "An"}]})
    replicate(pouch, local, remote)
    first = {"_id": "member", "_rev": created["rev"]}
    pouch({"op": "bulk", "db": local, "docs": [{**first, "_deleted": True}]})
    edited = couch_dump.put_doc(kiosk.url, DB, {**first, "name": "An (moved to cell 4)"})
    replicate(pouch, local, remote)
    replicate(pouch, remote, local)
    mine, theirs = dumps(pouch, local, kiosk)
    couch_dump.assert_same_dump(mine, theirs)
    assert mine["member"]["winner"]["_rev"] == edited
    leaves = mine["member"]["leaves"]
    assert [leaf["doc"].get("_deleted", False) for leaf in leaves].count(True) == 1


def test_pouchdb_many_docs_in_batches(
    pouch: Pouch, local: str, remote: str, kiosk: Any, tmp_path: Path
) -> None:
    # More than PouchDB's batch_size (100): several rounds of _changes, _revs_diff,
    # _bulk_docs or _bulk_get, and a checkpoint (_local) after each.
    docs = [{"_id": f"attendance-{i:04d}", "present": i % 3 != 0} for i in range(250)]
    pouch({"op": "bulk", "db": local, "docs": docs})
    assert replicate(pouch, local, remote)["docs_written"] == len(docs)
    again = str(tmp_path / "pouch-again")
    assert replicate(pouch, remote, again)["docs_written"] == len(docs)
    couch_dump.assert_same_dump(*dumps(pouch, again, kiosk))


def test_pouchdb_unusual_doc_ids(
    pouch: Pouch, local: str, remote: str, kiosk: Any, tmp_path: Path
) -> None:
    ids = ["a/b c", "ünïcødé-ид", "plus+amp&eq=q?#frag", "%2F-encoded"]
    pouch({"op": "bulk", "db": local, "docs": [{"_id": i, "v": i} for i in ids]})
    replicate(pouch, local, remote)
    again = str(tmp_path / "pouch-again")
    replicate(pouch, remote, again)
    assert sorted(couch_dump.dump(kiosk.url, DB)) == sorted(ids)
    pulled, pushed = pouch({"op": "dump", "db": again}), pouch({"op": "dump", "db": local})
    couch_dump.assert_same_dump(pulled, pushed)


def test_pouchdb_push_survives_kill9(pouch: Pouch, local: str, remote: str, kiosk: Any) -> None:
    load_local(pouch, local, dataset.SIDE_A)
    replicate(pouch, local, remote)
    kiosk.kill9()
    kiosk.restart()
    couch_dump.assert_same_dump(*dumps(pouch, local, kiosk))
    assert replicate(pouch, local, remote)["docs_written"] == 0
