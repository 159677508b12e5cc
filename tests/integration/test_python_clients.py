"""The Python CouchDB clients the design card names, as a province's own scripts would use them,
against this project's server and a real Apache CouchDB 3: ``couchdb`` (CouchDB-Python 1.2) and
``cloudant`` (python-cloudant 2.15). Both install and run on Python 3.11; both are unmaintained
(README: what to use instead).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.peers,
              # python-cloudant says at import that IBM replaced it by ibmcloudant; that is the point of the README
              pytest.mark.filterwarnings("ignore:The module cloudant is now deprecated:DeprecationWarning")]
TEXT = "Biên bản họp chi bộ tháng 11.\n".encode() * 200


@pytest.fixture(params=["ours", "couchdb"])
def server(request: pytest.FixtureRequest) -> Any:
    """A server: ``.url`` with the admin's credentials, ``.base`` without, ``.auth``, ``.kind``."""
    if request.param == "ours":
        kiosk = request.getfixturevalue("kiosk")
        kiosk.auth, kiosk.kind = ("admin", "secret"), "ours"
        return kiosk
    couch = request.getfixturevalue("couchdb")
    couch.kind = "couchdb"
    return couch


def test_couchdb_python(server: Any) -> None:
    import couchdb

    hub = couchdb.Server(server.url + "/")
    assert hub.version().startswith("3.")  # both answer as CouchDB 3
    db = hub.create("province-scripts")
    doc_id, _ = db.save({"_id": "note:1", "text": "v1"})
    doc = db[doc_id]
    doc["text"] = "v2"
    db.save(doc)
    assert db["note:1"]["text"] == "v2" and db["note:1"]["_rev"].startswith("2-")
    db.put_attachment(db["note:1"], TEXT, "minutes.txt", "text/plain")
    assert db.get_attachment("note:1", "minutes.txt").read() == TEXT
    db.save({"_id": "note:2", "text": "other"})
    changes = db.changes(since=0)
    assert {row["id"] for row in changes["results"]} == {"note:1", "note:2"}
    assert db.changes(since=changes["last_seq"])["results"] == []
    assert sorted(row.id for row in db.view("_all_docs")) == ["note:1", "note:2"]
    if server.kind == "couchdb":  # server-side replication: CouchDB's own replicator, full URLs
        result = hub.replicate(f"{server.url}/province-scripts", f"{server.url}/province-copy", create_target=True)
        assert result["ok"] and hub["province-copy"]["note:1"]["text"] == "v2"


def test_cloudant(server: Any) -> None:
    from cloudant.client import CouchDB

    client = CouchDB(server.auth[0], server.auth[1], url=server.base, connect=True, use_basic_auth=True)
    try:
        db = client.create_database("province-cloudant", throw_on_exists=True)
        doc = db.create_document({"_id": "note:1", "text": "v1"})
        doc["text"] = "v2"
        doc.save()
        assert db["note:1"]["text"] == "v2" and doc["_rev"].startswith("2-")
        doc.put_attachment("minutes.txt", "text/plain", TEXT)
        assert doc.get_attachment("minutes.txt", attachment_type="binary") == TEXT
        db.create_document({"_id": "note:2", "text": "other"})
        feed = db.changes(since=0, feed="normal")
        assert {row["id"] for row in feed if "id" in row} == {"note:1", "note:2"}
        assert sorted(d["_id"] for d in db) == ["note:1", "note:2"]
        if server.kind == "couchdb":  # a replication document in _replicator, run by CouchDB's scheduler
            _replicate_with_cloudant(client, db)
    finally:
        client.disconnect()
    with httpx.Client(base_url=server.base, auth=server.auth, trust_env=False, timeout=30) as http:
        assert http.get("/province-cloudant/note:1").json()["text"] == "v2"


def _replicate_with_cloudant(client: Any, source: Any) -> None:
    from cloudant.replicator import Replicator

    target = client.create_database("province-cloudant-copy")
    replicator = Replicator(client)
    replicator.create_replication(source, target, repl_id="province-copy")
    deadline = time.monotonic() + 60  # CouchDB's scheduler starts jobs within seconds
    while replicator.replication_state("province-copy") != "completed":
        assert time.monotonic() < deadline, replicator.replication_state("province-copy")
        time.sleep(0.5)
    assert target["note:1"]["text"] == "v2"
    replicator.stop_replication("province-copy")  # deletes its document: _replicator is not wiped between tests
