"""Every write is checked: schemas (403 forbidden, the rest of a batch lands) and signed articles.

Over HTTP (the in-process app) and through replication (a hub with no checks
replicates into a kiosk that has the province's keys).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from replication import replicate
from replication.local_peer import LocalPeer
from sync_server.app import create_app
from sync_server.security import signing
from sync_server.settings import Settings
from sync_server.store import Server

KEY = Ed25519PrivateKey.generate()
KEYS = {"tq-2026": signing.public_text(KEY)}
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40
MEETING = {"_id": "meeting:TQ.NH.KH.C01:b2e47d90-1c3a-4e8f-a5d6-7f09c1e2d384", "type": "meeting",
           "cell": "TQ.NH.KH.C01", "kind": "regular", "scheduled": "2026-12-03T19:30:00+07:00",
           "place": "Nhà văn hoá thôn Nà Khậu", "status": "scheduled"}


def article(slug: str, **extra: Any) -> dict:
    doc = {"_id": f"article:{slug}", "type": "article", "title": "Nghị quyết", "body": "Toàn văn…",
           "category": "resolution", "language": "vi", "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00"}
    doc.update(extra)
    return doc


def signed(slug: str, data: bytes | None = PDF) -> dict:
    atts = {"nq.pdf": data} if data is not None else {}
    doc = signing.sign(article(slug), KEY, "tq-2026", atts)
    if atts:
        doc["_attachments"] = {"nq.pdf": {"content_type": "application/pdf", "data": base64.b64encode(data).decode()}}
    return doc


@pytest.fixture
def kiosk(tmp_path):
    settings = Settings().replace("server", data_dir=str(tmp_path / "kiosk")).replace("signing", public_keys=KEYS)
    app = create_app(settings)
    yield app
    app.extensions["sync_server"].close()


def test_schema_violation_is_403_and_nothing_is_stored(kiosk):
    client = kiosk.test_client()
    client.put("/cell")
    bad = dict(MEETING, status="postponed")
    response = client.put(f"/cell/{bad['_id']}", json=bad)
    assert response.status_code == 403
    assert response.json["error"] == "forbidden" and "status" in response.json["reason"]
    assert client.get(f"/cell/{bad['_id']}").status_code == 404


def test_bulk_batch_with_one_invalid_document_lands_the_rest(kiosk):
    client = kiosk.test_client()
    client.put("/cell")
    bad = dict(MEETING, _id="meeting:TQ.NH.KH.C01:ffffffff-0000-4000-8000-000000000000", cell="TQ.NH.KH.C02")
    rows = client.post("/cell/_bulk_docs", json={"docs": [MEETING, bad, {"_id": "note", "text": "untyped"}]}).json
    assert [r.get("error") for r in rows] == [None, "forbidden", None]
    assert "does not match" in rows[1]["reason"]
    assert client.get("/cell").json["doc_count"] == 2


def test_signed_article_lands_and_tampered_one_is_quarantined(kiosk):
    client = kiosk.test_client()
    client.put("/handbook")
    good = signed("nq-01")
    assert client.put(f"/handbook/{good['_id']}", json=good).status_code == 201
    assert client.get(f"/handbook/{good['_id']}/nq.pdf").data == PDF
    forged = signed("nq-02", PDF)
    forged["_attachments"]["nq.pdf"]["data"] = base64.b64encode(b"%PDF forged").decode()
    response = client.put(f"/handbook/{forged['_id']}", json=forged)
    assert response.status_code == 403 and "does not match its signed hash" in response.json["reason"]
    assert client.get(f"/handbook/{forged['_id']}").status_code == 404
    unsigned = article("nq-03")
    assert client.put(f"/handbook/{unsigned['_id']}", json=unsigned).json["reason"].endswith("not signed")
    quarantine = kiosk.extensions["sync_server"].get("quarantine")
    held = [row["doc"] for row in quarantine.all_docs(include_docs=True)]
    assert sorted(d["article"]["_id"] for d in held) == ["article:nq-02", "article:nq-03"]
    assert kiosk.test_client().get("/quarantine/_all_docs").status_code in (200, 401)  # admin party here


def test_replicated_batch_refuses_forged_and_invalid_documents(tmp_path, kiosk):
    hub = Server(tmp_path / "hub")  # a store without the policy: it checks nothing
    forged = signed("nq-02")
    forged["title"] = "Nghị quyết (sửa đổi trái phép)"
    hub.create("handbook").bulk_docs([signed("nq-01"), forged, dict(MEETING, kind="secret"), signed("nq-04", None)])
    store = kiosk.extensions["sync_server"]
    result = replicate(LocalPeer(hub, "handbook"), LocalPeer(store, "handbook"))
    hub.close()
    assert result.ok and result.docs_written == 2
    assert sorted((e["id"], e["error"]) for e in result.errors) == [
        ("article:nq-02", "forbidden"), (MEETING["_id"], "forbidden")]
    assert sorted(r["id"] for r in store.get("handbook").all_docs()) == ["article:nq-01", "article:nq-04"]
    assert store.get("handbook").attachment("article:nq-01", "nq.pdf")[1] == PDF
    assert store.get("quarantine").doc_count == 1
