"""One write rule, two enforcers (#15): this server natively, Apache CouchDB 3.4.3 with the rendered
``validate_doc_update``. The same table of writes (PUT, DELETE, a tombstone carrying a ``type``,
``_bulk_docs``, ``new_edits: false``, an attachment) runs against both, set up alike (accounts,
``_security`` as provisioning writes it, the design document), and each write must be accepted or
refused the same way, and as the table says.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sync_server.handbook import ownership, validation
from sync_server.jobs.provision import HANDBOOK_SECURITY

pytestmark = pytest.mark.peers
CELL = "TQ.NH.KH.C01"
DB = "cell-tq-nh-kh-c01"
MEETING = f"meeting:{CELL}:00000000-0000-4000-8000-000000000001"
FEEDBACK = f"feedback:{CELL}:3f1c2b7a-0000-4000-8000-000000000001"
ADMIN_NAME = "admin"
USERS = {  # name -> roles (each password is "pw-" + name)
    "tinh": ["province"],
    "kiosk-tq-nh-kh-c01": ["kiosk"],
    f"{CELL}.0013": ["member", f"cell:{CELL}"],
    f"{CELL}.0021": ["member", f"cell:{CELL}"],
    f"{CELL}.0012": ["member", "secretary", f"cell:{CELL}"],
    f"{CELL}.kiosk": ["kiosk-admin", f"cell:{CELL}"],
    "TQ.NH.KH.C02.0001": ["member", "cell:TQ.NH.KH.C02"],
}
CELL_SECURITY = {"admins": {"names": [], "roles": ["province"]},
                 "members": {"names": [], "roles": [f"cell:{CELL}", "province", "kiosk"]}}
HANDBOOK = {"admins": HANDBOOK_SECURITY["admins"],
            "members": {"names": [], "roles": [*HANDBOOK_SECURITY["members"]["roles"], "member"]}}
M13, M21, SEC, KADMIN, OUT = f"{CELL}.0013", f"{CELL}.0021", f"{CELL}.0012", f"{CELL}.kiosk", "TQ.NH.KH.C02.0001"


def attendance(no: str, member_no: str | None = None, typed: bool = True, **extra: Any) -> dict:
    """A check-in ten minutes into MEETING_DOC (past by now, so never "in the future")."""
    doc = {"_id": f"attendance:{MEETING}:{no}", "type": "attendance", "cell": CELL, "meeting": MEETING,
           "member": f"member:{CELL}:{member_no or no}", "status": "present",
           "scheduled": "2026-12-03T19:30:00+07:00", "checked_in_at": "2026-12-03T19:40:00+07:00", **extra}
    return doc if typed else {k: v for k, v in doc.items() if k != "type"}


def feedback(no: str, text: str) -> dict:
    return {"_id": FEEDBACK, "type": "feedback", "cell": CELL, "about": "software", "text": text,
            "created_at": "2026-11-05T21:10:00+07:00", "member": f"member:{CELL}:{no}"}


def article(slug: str, typed: bool = True) -> dict:
    doc = {"_id": f"article:{slug}", "type": "article", "title": "Nghị quyết", "body": "Toàn văn",
           "category": "resolution", "language": "vi", "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00"}
    return doc if typed else {k: v for k, v in doc.items() if k != "type"}


MEETING_DOC = {"_id": MEETING, "type": "meeting", "cell": CELL, "kind": "regular", "status": "held",
               "scheduled": "2026-12-03T19:30:00+07:00"}
MEMBER_DOC = {"_id": f"member:{CELL}:0013", "type": "member", "cell": CELL, "member_no": "0013", "name": "Đặng Thị Hoà",
              "status": "active", "smartphone": True, "installed": True, "registered": True}
DEVICE_DOC = {"_id": f"device:{CELL}:a1b2c3", "type": "device", "cell": CELL, "member": f"member:{CELL}:0013",
              "paired_at": "2026-11-05T21:10:00+07:00"}
READING_DOC = {"_id": f"reading:{CELL}:2026-11-05:a1b2c3", "type": "reading", "cell": CELL, "date": "2026-11-05",
               "counts": {"article:dieu-le-dang": 3}}
UNIT = {"_id": "unit:TQ.NH", "type": "unit", "code": "TQ.NH", "name": "Na Hang", "level": "district", "parent": "TQ"}
# The certificate round's documents (#19): the kiosk asks, the province answers, nobody else writes either.
CERT_REQUEST = json.loads((validation.SCHEMA_DIR / "examples" / "cert_request" / "valid-new.json").read_text())
CERTIFICATE = json.loads((validation.SCHEMA_DIR / "examples" / "certificate" / "valid-one.json").read_text())
OTHER_CELL_MEETING = dict(MEETING_DOC, _id="meeting:TQ.NH.KH.C02:00000000-0000-4000-8000-000000000002",
                          cell="TQ.NH.KH.C02")

# (who, operation, database, document, expected): "put" (with the current rev), "delete", "tombstone" (a PUT of
# _deleted with the given fields), "bulk", "replicate" (new_edits: false extending the current rev), "branch"
# (new_edits: false on a path of its own), "attach" (an attachment on the current rev). None: anonymous.
TABLE: list[tuple[str | None, str, str, dict, str]] = [
    (SEC, "put", DB, MEETING_DOC, "ok"),
    (M13, "put", DB, attendance("0013"), "ok"),
    (M21, "put", DB, attendance("0021"), "ok"),
    (M21, "put", DB, attendance("0013", member_no="0021", typed=False, status="absent"), "forbidden"),
    (M21, "put", DB, attendance("0013", member_no="0021", status="absent"), "forbidden"),
    (M13, "replicate", DB, attendance("0021", member_no="0013", typed=False, status="absent"), "forbidden"),
    (M13, "branch", DB, attendance("0021", member_no="0013", typed=False, status="absent"), "forbidden"),
    (M21, "replicate", DB, attendance("0021", status="excused"), "forbidden"),  # the secretary's to record
    (M21, "put", DB, attendance("0021", checked_in_at="2026-12-03T18:29:00+07:00"), "forbidden"),  # not open yet
    (M21, "put", DB, attendance("0021", checked_in_at="2026-12-03T23:31:00+07:00"), "forbidden"),  # closed
    (M21, "put", DB, attendance("0021", status="absent", withdrawn_at="2026-12-04T07:00:00+07:00"), "forbidden"),
    (M21, "replicate", DB, attendance("0021", status="absent", withdrawn_at="2026-12-03T19:50:00+07:00"), "ok"),
    (M13, "put", DB, attendance("0013", status="absent", withdrawn_at="2026-12-03T19:50:00+07:00"), "ok"),
    (M13, "put", DB, attendance("0013", checked_in_at="2026-12-03T19:55:00+07:00"), "ok"),  # checked in again
    (M13, "put", DB, feedback("0013", "Chữ to hơn"), "ok"),
    (M21, "put", DB, feedback("0021", "(đã xoá)"), "forbidden"),
    (M21, "replicate", DB, feedback("0021", "(đã xoá)"), "forbidden"),
    (M21, "attach", DB, attendance("0013"), "forbidden"),
    (M13, "attach", DB, attendance("0013"), "ok"),
    (M13, "put", DB, feedback("0013", "Chữ to hơn nữa"), "ok"),
    (M13, "delete", DB, attendance("0013"), "forbidden"),
    (M13, "put", DB, MEETING_DOC, "forbidden"),
    (KADMIN, "put", DB, MEMBER_DOC, "ok"),
    (KADMIN, "put", DB, DEVICE_DOC, "ok"),
    (M13, "put", DB, READING_DOC, "forbidden"),  # reads are counted by the kiosk only
    (SEC, "put", DB, READING_DOC, "forbidden"),
    (KADMIN, "put", DB, READING_DOC, "forbidden"),
    ("kiosk-tq-nh-kh-c01", "put", DB, READING_DOC, "ok"),
    (SEC, "tombstone", DB, {"_id": MEMBER_DOC["_id"], "type": "meeting"}, "forbidden"),
    (SEC, "delete", DB, MEMBER_DOC, "forbidden"),
    (KADMIN, "tombstone", DB, {"_id": MEETING, "type": "member"}, "forbidden"),
    (KADMIN, "delete", DB, MEETING_DOC, "forbidden"),
    (OUT, "put", DB, attendance("0001"), "forbidden"),
    (None, "put", DB, attendance("0013"), "unauthorized"),
    ("kiosk-tq-nh-kh-c01", "put", DB, OTHER_CELL_MEETING, "forbidden"),
    ("kiosk-tq-nh-kh-c01", "bulk", DB, {"_id": "note:1", "text": "chưa có type"}, "forbidden"),
    ("kiosk-tq-nh-kh-c01", "put", DB, {k: v for k, v in MEMBER_DOC.items() if k != "type"}, "forbidden"),
    ("kiosk-tq-nh-kh-c01", "put", DB, dict(MEMBER_DOC, status="moved"), "ok"),
    ("tinh", "put", DB, CERT_REQUEST, "forbidden"),
    (KADMIN, "put", DB, CERT_REQUEST, "forbidden"),
    (M13, "bulk", DB, CERT_REQUEST, "forbidden"),
    ("kiosk-tq-nh-kh-c01", "put", DB, CERT_REQUEST, "ok"),
    ("kiosk-tq-nh-kh-c01", "put", DB, CERTIFICATE, "forbidden"),
    (SEC, "put", DB, CERTIFICATE, "forbidden"),
    ("tinh", "put", DB, CERTIFICATE, "ok"),
    ("kiosk-tq-nh-kh-c01", "delete", DB, CERTIFICATE, "forbidden"),
    ("kiosk-tq-nh-kh-c01", "replicate", DB, dict(CERTIFICATE, request_rev="2-0123456789abcdef0123456789abcdef"),
     "forbidden"),
    ("tinh", "delete", DB, CERT_REQUEST, "forbidden"),
    (ADMIN_NAME, "put", DB, CERTIFICATE, "ok"),
    ("tinh", "put", "handbook", article("huong-dan-tam"), "ok"),
    ("tinh", "put", "handbook", UNIT, "ok"),
    ("kiosk-tq-nh-kh-c01", "delete", "handbook", article("huong-dan-tam"), "forbidden"),
    ("kiosk-tq-nh-kh-c01", "bulk", "handbook", article("gia-mao"), "forbidden"),
    (M13, "delete", "handbook", UNIT, "forbidden"),
    ("tinh", "put", "handbook", article("khong-type", typed=False), "forbidden"),
    ("tinh", "put", "handbook", MEETING_DOC, "forbidden"),
    (ADMIN_NAME, "put", "handbook", article("cua-admin"), "ok"),
    ("tinh", "delete", "handbook", article("huong-dan-tam"), "ok"),
    (SEC, "delete", DB, MEETING_DOC, "ok"),
    (SEC, "delete", DB, attendance("0013"), "ok"),
]


def _auth(who: str | None) -> tuple[str, str] | None:
    if who is None:
        return None
    return (ADMIN_NAME, "secret") if who == ADMIN_NAME else (who, "pw-" + who)


def _outcome(response: httpx.Response) -> str:
    body = response.json()
    if isinstance(body, list):  # _bulk_docs: the row (new_edits: false lists failures only)
        body = body[0] if body else {"ok": True}
    if response.status_code >= 400 or "error" in body:
        return str(body.get("error"))
    return "ok"


def run_table(base: str) -> list[str]:
    """Set a server up as provisioning would, then run TABLE; the outcome of every write."""
    admin = httpx.Client(base_url=base, auth=("admin", "secret"), trust_env=False, timeout=60)
    admin.put("/_users")
    for name, roles in USERS.items():
        doc = {"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": roles, "password": "pw-" + name}
        assert admin.put(f"/_users/{quote(doc['_id'], safe='')}", json=doc).status_code in (201, 202)
    for db, security in ((DB, CELL_SECURITY), ("handbook", HANDBOOK)):
        assert admin.put(f"/{db}").status_code in (201, 202)
        assert admin.put(f"/{db}/_security", json=security).status_code == 200
        design = ownership.design_doc(ownership.rules_for(db) or {})
        assert admin.put(f"/{db}/{design['_id']}", json=design).status_code in (201, 202)
    outcomes = []
    for who, op, db, doc, _expected in TABLE:
        with httpx.Client(base_url=base, auth=_auth(who), trust_env=False, timeout=60) as http:
            outcomes.append(_outcome(_write(http, admin, op, db, dict(doc))))
    admin.close()
    return outcomes


def _write(http: httpx.Client, admin: httpx.Client, op: str, db: str, doc: dict) -> httpx.Response:
    path = f"/{db}/{quote(doc['_id'], safe=':')}"
    current = admin.get(path)
    rev = current.json()["_rev"] if current.status_code == 200 else None
    if op == "put":
        return http.put(path, json=dict(doc, _rev=rev) if rev else doc)
    if op == "delete":
        return http.delete(path, params={"rev": rev})
    if op == "tombstone":
        return http.put(path, json=dict(doc, _rev=rev, _deleted=True))
    if op == "bulk":
        return http.post(f"/{db}/_bulk_docs", json={"docs": [dict(doc, _rev=rev) if rev else doc]})
    if op in ("replicate", "branch"):
        generation, digest = (int(rev.split("-")[0]), rev.split("-")[1]) if rev else (0, None)
        new = f"{generation + 1}-{'c' * 32}" if op == "replicate" else f"{generation + 5}-{'f' * 32}"
        ids = [new.split("-")[1], digest] if op == "replicate" and digest else [new.split("-")[1]]
        body = dict(doc, _rev=new, _revisions={"start": int(new.split("-")[0]), "ids": ids})
        return http.post(f"/{db}/_bulk_docs", json={"docs": [body], "new_edits": False})
    if op == "attach":
        return http.put(f"{path}/photo.jpg", params={"rev": rev}, content=b"\xff\xd8\xff\xe0 JFIF",
                        headers={"Content-Type": "image/jpeg"})
    raise AssertionError(op)


def test_this_server_and_couchdb_accept_and_refuse_the_same_writes(kiosk: Any, couchdb: Any) -> None:
    expected = [row[-1] for row in TABLE]
    ours = run_table(kiosk.base)
    theirs = run_table(couchdb.base)
    assert [(row[:3], o, t) for row, o, t in zip(TABLE, ours, theirs) if o != t] == []
    assert ours == expected, [(row[:3], o, e) for row, o, e in zip(TABLE, ours, expected) if o != e]

