"""Our replicator against the provincial hub: pouchdb-server and a real Apache CouchDB 3 (processes on loopback)."""

from __future__ import annotations

import base64
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import couch_dump
import dataset
import httpx
import pytest

from replication import Options, replicate
from replication.http_peer import HttpPeer
from sync_server.store import Server

pytestmark = pytest.mark.peers
DB = "cell"


@pytest.fixture(params=["pouchdb-server", "couchdb"])
def hub(request: pytest.FixtureRequest) -> Any:
    """The hub: ``.url`` (admin credentials in it where needed), ``.kind``, ``.digests`` (comparable with ours)."""
    server = request.getfixturevalue("pouchdb_server" if request.param == "pouchdb-server" else "couchdb")
    # CouchDB's digest of a gzip-stored text attachment is the MD5 of the encoded bytes (couch_dump.without_digests)
    return SimpleNamespace(url=server.url, kind=request.param, digests=request.param != "couchdb")


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


def test_kiosk_and_hub_converge_both_ways(kiosk: Any, hub: Any, peer: Any) -> None:
    couch_dump.create_db(hub.url, DB)
    couch_dump.bulk_docs(hub.url, DB, dataset.SIDE_A, new_edits=False)
    couch_dump.create_db(kiosk.url, DB)
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_B, new_edits=False)
    remote, cell = peer(f"{hub.url}/{DB}"), peer(f"{kiosk.url}/{DB}")
    push, pull = replicate(cell, remote), replicate(remote, cell)
    assert push.ok and pull.ok, (push.error, pull.error)
    mine, theirs = couch_dump.dump(kiosk.url, DB), couch_dump.dump(hub.url, DB)
    couch_dump.assert_same_dump(mine, theirs, digests=hub.digests)
    assert {doc_id: mine[doc_id]["winner"]["_rev"] for doc_id in mine} == dataset.expected_winners()


def test_edits_on_both_sides_after_sync_pick_the_same_winner(kiosk: Any, hub: Any, peer: Any) -> None:
    couch_dump.create_db(hub.url, DB)
    rev = couch_dump.put_doc(hub.url, DB, {"_id": "meeting:1", "status": "scheduled"})
    remote, cell = peer(f"{hub.url}/{DB}"), peer(f"{kiosk.url}/{DB}")
    assert replicate(remote, cell).docs_written == 1
    couch_dump.put_doc(hub.url, DB, {"_id": "meeting:1", "_rev": rev, "status": "held"})
    couch_dump.put_doc(kiosk.url, DB, {"_id": "meeting:1", "_rev": rev, "status": "cancelled"})
    assert replicate(cell, remote).ok and replicate(remote, cell).ok
    mine, theirs = couch_dump.dump(kiosk.url, DB), couch_dump.dump(hub.url, DB)
    couch_dump.assert_same_dump(mine, theirs, digests=hub.digests)
    assert len(mine["meeting:1"]["leaves"]) == 2  # the losing edit is kept as a conflict, not lost


def test_cli_replicates_a_local_database_to_the_hub_and_resumes(tmp_path: Any, hub: Any) -> None:
    data = tmp_path / "kiosk"
    server = Server(data)
    server.create(DB).bulk_docs(dataset.SIDE_A, new_edits=False)
    server.close()
    command = [sys.executable, "-m", "sync_server", "replicate", DB, f"{hub.url}/{DB}", "--data-dir", str(data)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"replicated {len(dataset.SIDE_A)} of {len(dataset.SIDE_A)}" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "replicated 0 of 0" in again.stdout
    hub_dump = couch_dump.dump(hub.url, DB)
    assert sorted(hub_dump) == sorted({d["_id"] for d in dataset.SIDE_A})


def test_cli_fails_with_one_line_when_the_hub_is_down(tmp_path: Any) -> None:
    from conftest import free_port

    command = [sys.executable, "-m", "sync_server", "replicate", DB, f"http://127.0.0.1:{free_port()}/{DB}",
               "--data-dir", str(tmp_path)]
    Server(tmp_path).create(DB).bulk_docs([{"_id": "x"}])
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("Error: replication stopped:") and len(proc.stderr.strip().splitlines()) == 1


def test_filtered_pull_from_hub_by_selector(kiosk: Any, hub: Any, peer: Any) -> None:
    couch_dump.create_db(hub.url, "handbook")
    couch_dump.bulk_docs(hub.url, "handbook", [
        {"_id": "article:1", "kind": "article", "audience": ["TQ.NH"]},
        {"_id": "article:2", "kind": "article", "audience": ["TQ.LB"]},
        {"_id": "unit:TQ.NH", "kind": "unit"},
    ])
    options = Options(selector={"$or": [{"kind": "unit"}, {"audience": {"$elemMatch": {"$eq": "TQ.NH"}}}]})
    result = replicate(peer(f"{hub.url}/handbook"), peer(f"{kiosk.url}/handbook"), options)
    assert result.ok, result.error
    assert sorted(couch_dump.dump(kiosk.url, "handbook")) == ["article:1", "unit:TQ.NH"]


def test_a_record_edited_at_the_hub_with_unchanged_attachments_reaches_the_kiosk(kiosk: Any, hub: Any,
                                                                                  peer: Any) -> None:
    """The hub's new revision carries its attachments as stubs; the kiosk resolves them by name and revpos.

    On CouchDB the text attachment's digest is the MD5 of its gzip-encoded bytes, not of the text:
    a kiosk matching stubs by digest refused the revision (missing_stub) and never asked again.
    The large text crosses the link gzip-compressed (CouchDB keeps it so).
    """
    minutes = "Biên bản họp chi bộ. Đồng chí bí thư chủ trì.\n".encode() * 4000  # ~200 KB, compresses well
    notes = b"short text, inline in _bulk_get"
    couch_dump.create_db(hub.url, DB)
    rev = couch_dump.put_doc(hub.url, DB, {"_id": "minutes:1", "text": "v1", "_attachments": {
        "minutes.txt": {"content_type": "text/plain", "data": base64.b64encode(minutes).decode()},
        "notes.txt": {"content_type": "text/plain", "data": base64.b64encode(notes).decode()},
        "photo.bin": {"content_type": "image/png", "data": base64.b64encode(dataset.BINARY).decode()}}})
    source = peer(f"{hub.url}/{DB}")
    first = replicate(source, peer(f"{kiosk.url}/{DB}"))
    assert first.ok and first.docs_written == 1, first.errors
    assert first.bytes_received < len(minutes) // 4  # the text came compressed
    with httpx.Client(base_url=hub.url, trust_env=False, timeout=30) as http:
        doc = http.get(f"/{DB}/minutes:1").json()
        assert doc["_rev"] == rev and all(att.get("stub") for att in doc["_attachments"].values())
        doc["text"] = "v2, edited at the province"
        assert http.put(f"/{DB}/minutes:1", json=doc).status_code == 201
    second = replicate(source, peer(f"{kiosk.url}/{DB}"))
    assert second.ok and second.docs_written == 1 and second.doc_write_failures == 0, second.errors
    mine, theirs = couch_dump.dump(kiosk.url, DB), couch_dump.dump(hub.url, DB)
    couch_dump.assert_same_dump(mine, theirs, digests=hub.digests)
    assert mine["minutes:1"]["winner"]["text"] == "v2, edited at the province"
    assert base64.b64decode(mine["minutes:1"]["winner"]["_attachments"]["minutes.txt"]["data"]) == minutes
    # the kiosk edits on top, the hub takes it without a conflict
    couch_dump.put_doc(kiosk.url, DB, dict(mine["minutes:1"]["winner"], text="v3, kiosk"))
    assert replicate(peer(f"{kiosk.url}/{DB}"), source).docs_written == 1
    back = couch_dump.dump(hub.url, DB)["minutes:1"]
    assert back["winner"]["text"] == "v3, kiosk" and len(back["leaves"]) == 1
