"""Our replicator against pouchdb-server as the provincial hub (real processes, loopback)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import couch_dump
import dataset
import pytest

from replication import Options, replicate
from replication.http_peer import HttpPeer
from sync_server.store import Server

pytestmark = pytest.mark.peers
DB = "cell"


@pytest.fixture
def peer() -> Any:
    """A function opening an HttpPeer that is closed after the test."""
    opened: list[HttpPeer] = []

    def open_peer(url: str) -> HttpPeer:
        opened.append(HttpPeer(url))
        return opened[-1]

    yield open_peer
    for item in opened:
        item.close()


def test_kiosk_and_hub_converge_both_ways(kiosk: Any, pouchdb_server: Any, peer: Any) -> None:
    couch_dump.create_db(pouchdb_server.url, DB)
    couch_dump.bulk_docs(pouchdb_server.url, DB, dataset.SIDE_A, new_edits=False)
    couch_dump.create_db(kiosk.url, DB)
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_B, new_edits=False)
    hub, cell = peer(f"{pouchdb_server.url}/{DB}"), peer(f"{kiosk.url}/{DB}")
    push, pull = replicate(cell, hub), replicate(hub, cell)
    assert push.ok and pull.ok, (push.error, pull.error)
    mine, theirs = couch_dump.dump(kiosk.url, DB), couch_dump.dump(pouchdb_server.url, DB)
    couch_dump.assert_same_dump(mine, theirs)
    assert {doc_id: mine[doc_id]["winner"]["_rev"] for doc_id in mine} == dataset.expected_winners()


def test_edits_on_both_sides_after_sync_pick_the_same_winner(kiosk: Any, pouchdb_server: Any, peer: Any) -> None:
    couch_dump.create_db(pouchdb_server.url, DB)
    rev = couch_dump.put_doc(pouchdb_server.url, DB, {"_id": "meeting:1", "status": "scheduled"})
    hub, cell = peer(f"{pouchdb_server.url}/{DB}"), peer(f"{kiosk.url}/{DB}")
    assert replicate(hub, cell).docs_written == 1
    couch_dump.put_doc(pouchdb_server.url, DB, {"_id": "meeting:1", "_rev": rev, "status": "held"})
    couch_dump.put_doc(kiosk.url, DB, {"_id": "meeting:1", "_rev": rev, "status": "cancelled"})
    assert replicate(cell, hub).ok and replicate(hub, cell).ok
    mine, theirs = couch_dump.dump(kiosk.url, DB), couch_dump.dump(pouchdb_server.url, DB)
    couch_dump.assert_same_dump(mine, theirs)
    assert len(mine["meeting:1"]["leaves"]) == 2  # the losing edit is kept as a conflict, not lost


def test_cli_replicates_a_local_database_to_the_hub_and_resumes(tmp_path: Any, pouchdb_server: Any) -> None:
    data = tmp_path / "kiosk"
    server = Server(data)
    server.create(DB).bulk_docs(dataset.SIDE_A, new_edits=False)
    server.close()
    command = [sys.executable, "-m", "sync_server", "replicate", DB, f"{pouchdb_server.url}/{DB}", "--data-dir", str(data)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"replicated {len(dataset.SIDE_A)} of {len(dataset.SIDE_A)}" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "replicated 0 of 0" in again.stdout
    hub_dump = couch_dump.dump(pouchdb_server.url, DB)
    assert sorted(hub_dump) == sorted({d["_id"] for d in dataset.SIDE_A})


def test_cli_fails_with_one_line_when_the_hub_is_down(tmp_path: Any) -> None:
    from conftest import free_port

    command = [sys.executable, "-m", "sync_server", "replicate", DB, f"http://127.0.0.1:{free_port()}/{DB}",
               "--data-dir", str(tmp_path)]
    Server(tmp_path).create(DB).bulk_docs([{"_id": "x"}])
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("Error: replication stopped:") and len(proc.stderr.strip().splitlines()) == 1


def test_filtered_pull_from_hub_by_selector(kiosk: Any, pouchdb_server: Any, peer: Any) -> None:
    # untyped documents: a database without the handbook's rule (there, the id names the kind and `type` must agree)
    couch_dump.create_db(pouchdb_server.url, "content")
    couch_dump.bulk_docs(pouchdb_server.url, "content", [
        {"_id": "article:1", "kind": "article", "audience": ["TQ.NH"]},
        {"_id": "article:2", "kind": "article", "audience": ["TQ.LB"]},
        {"_id": "unit:TQ.NH", "kind": "unit"},
    ])
    options = Options(selector={"$or": [{"kind": "unit"}, {"audience": {"$elemMatch": {"$eq": "TQ.NH"}}}]})
    result = replicate(peer(f"{pouchdb_server.url}/content"), peer(f"{kiosk.url}/content"), options)
    assert result.ok, result.error
    assert sorted(couch_dump.dump(kiosk.url, "content")) == ["article:1", "unit:TQ.NH"]
