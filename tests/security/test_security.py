"""Issue #15, probed from outside as an attacker on the village Wi-Fi would: over HTTP only.

A kiosk as the README sets it up (an admin, ``sync.cell_db`` and ``sync.handbook_db``, the
province's public keys), with a member, a neighbour, the secretary and the kiosk admin.
"""

from __future__ import annotations

from typing import Any

import pytest
from accounts import ADMIN, account, basic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from replication import replicate
from replication.local_peer import LocalPeer
from sync_server.app import create_app
from sync_server.jobs.provision import HANDBOOK_SECURITY
from sync_server.security import signing
from sync_server.settings import Settings
from sync_server.store import Server

CELL = "TQ.NH.KH.C01"
DB = "cell-tq-nh-kh-c01"
KEY = Ed25519PrivateKey.generate()
KEYS = {"tq-2026": signing.public_text(KEY)}
MEETING_ID = f"meeting:{CELL}:00000000-0000-4000-8000-000000000001"


MEMBER = basic(f"{CELL}.0013", "1313")
NEIGHBOUR = basic(f"{CELL}.0021", "2121")
SECRETARY = basic(f"{CELL}.0012", "1212")
KIOSK_ADMIN = basic(f"{CELL}.kiosk", "9999")
PROVINCE = basic("tinh", "mật khẩu tỉnh")
KIOSK_ACCOUNT = basic("kiosk-tq-nh-kh-c02", "mật khẩu kiosk")


def article(slug: str, **extra: Any) -> dict:
    doc = {"_id": f"article:{slug}", "type": "article", "title": "Nghị quyết", "body": "Toàn văn…",
           "category": "resolution", "language": "vi", "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00"}
    return {**doc, **extra}


def signed(slug: str) -> dict:
    return signing.sign(article(slug), KEY, "tq-2026", {})


def attendance(no: str, member_no: str | None = None, **extra: Any) -> dict:
    return {"_id": f"attendance:{MEETING_ID}:{no}", "type": "attendance", "cell": CELL, "meeting": MEETING_ID,
            "member": f"member:{CELL}:{member_no or no}", "status": "present",
            "scheduled": "2026-12-03T19:30:00+07:00", "checked_in_at": "2026-12-03T19:40:00+07:00", **extra}


def member_doc(no: str) -> dict:
    return {"_id": f"member:{CELL}:{no}", "type": "member", "cell": CELL, "member_no": no, "name": "Nguyễn Văn A",
            "status": "active", "smartphone": True, "installed": True, "registered": True}


FEEDBACK_ID = f"feedback:{CELL}:3f1c2b7a-0000-4000-8000-000000000001"


def feedback(member_no: str, text: str) -> dict:
    return {"_id": FEEDBACK_ID, "type": "feedback", "cell": CELL, "about": "software", "text": text,
            "created_at": "2026-11-05T21:10:00+07:00", "member": f"member:{CELL}:{member_no}"}


def make_kiosk(data_dir: Any, **signing_settings: Any) -> Any:
    settings = (Settings().replace("server", data_dir=str(data_dir), admin="admin:secret")
                .replace("sync", cell_db=DB, handbook_db="handbook"))
    if signing_settings:
        settings = settings.replace("signing", **signing_settings)
    return create_app(settings)


@pytest.fixture
def kiosk(tmp_path):
    """A kiosk whose admin created its databases over HTTP, as the README says; no _security was written."""
    app = make_kiosk(tmp_path / "kiosk")
    c = app.test_client()
    for db in ("_users", DB, "handbook"):
        assert c.put(f"/{db}", headers=ADMIN).status_code == 201
    for doc in (account(f"{CELL}.0013", "1313", "member", f"cell:{CELL}"),
                account(f"{CELL}.0021", "2121", "member", f"cell:{CELL}"),
                account(f"{CELL}.0012", "1212", "member", "secretary", f"cell:{CELL}"),
                account(f"{CELL}.kiosk", "9999", "kiosk-admin", f"cell:{CELL}"),
                account("tinh", "mật khẩu tỉnh", "province", field="password"),
                account("kiosk-tq-nh-kh-c02", "mật khẩu kiosk", "kiosk", field="password")):
        assert c.put(f"/_users/{doc['_id']}", json=doc, headers=ADMIN).status_code == 201
    meeting = {"_id": MEETING_ID, "type": "meeting", "cell": CELL, "kind": "regular", "status": "held",
               "scheduled": "2026-12-03T19:30:00+07:00"}
    assert c.put(f"/{DB}/{MEETING_ID}", json=meeting, headers=SECRETARY).status_code == 201
    yield app
    app.extensions["sync_server"].close()


def rev_of(c: Any, db: str, doc_id: str) -> str:
    return c.get(f"/{db}/{doc_id}", headers=ADMIN).json["_rev"]


# --- items 1-3: deletions go through the rules; deny by default ---------------------------


def test_nobody_at_the_kiosk_deletes_handbook_articles_or_units(kiosk):
    c = kiosk.test_client()
    for doc in (article("co-dinh-kem"), {"_id": "unit:TQ.NH", "type": "unit", "code": "TQ.NH", "name": "Na Hang",
                                         "level": "district", "parent": "TQ"}):
        assert c.put(f"/handbook/{doc['_id']}", json=doc, headers=ADMIN).status_code == 201
    rev = rev_of(c, "handbook", "article:co-dinh-kem")
    anonymous = c.delete(f"/handbook/article:co-dinh-kem?rev={rev}")
    assert anonymous.status_code == 401 and anonymous.json["error"] == "unauthorized"
    member = c.delete(f"/handbook/unit:TQ.NH?rev={rev_of(c, 'handbook', 'unit:TQ.NH')}", headers=MEMBER)
    assert member.status_code == 403 and member.json == {"error": "forbidden",
                                                         "reason": "only the province writes the handbook"}
    by_bulk = c.post("/handbook/_bulk_docs", headers=MEMBER,
                     json={"docs": [{"_id": "article:co-dinh-kem", "_rev": rev, "_deleted": True}]})
    assert by_bulk.json[0]["error"] == "forbidden"
    assert c.get("/handbook/article:co-dinh-kem", headers=MEMBER).status_code == 200  # still there for members


def test_a_handbook_kept_under_another_name_has_the_same_rule(tmp_path):
    settings = (Settings().replace("server", data_dir=str(tmp_path / "kiosk"), admin="admin:secret")
                .replace("sync", cell_db=DB, handbook_db="so-tay"))
    app = create_app(settings)
    c = app.test_client()
    c.put("/_users", headers=ADMIN)
    c.put(f"/_users/org.couchdb.user:{CELL}.0013", json=account(f"{CELL}.0013", "1313", "member", f"cell:{CELL}"),
          headers=ADMIN)
    c.put("/so-tay", headers=ADMIN)
    assert c.put("/so-tay/article:x", json=article("x"), headers=ADMIN).status_code == 201
    refused = c.delete(f"/so-tay/article:x?rev={rev_of(c, 'so-tay', 'article:x')}", headers=MEMBER)
    assert refused.status_code == 403 and refused.json["reason"] == "only the province writes the handbook"
    app.extensions["sync_server"].close()


def test_a_kiosk_account_deletes_nothing_in_a_hubs_handbook(tmp_path):
    """Our server as a hub, set up as provisioning sets it: a kiosk account reads, only the province deletes."""
    app = create_app(Settings().replace("server", data_dir=str(tmp_path / "hub"), admin="admin:secret"))
    c = app.test_client()
    for db in ("_users", "handbook"):
        c.put(f"/{db}", headers=ADMIN)
    c.put("/handbook/_security", json=HANDBOOK_SECURITY, headers=ADMIN)
    for doc in (account("tinh", "mật khẩu tỉnh", "province", field="password"),
                account("kiosk-tq-nh-kh-c02", "mật khẩu kiosk", "kiosk", field="password")):
        c.put(f"/_users/{doc['_id']}", json=doc, headers=ADMIN)
    assert c.put("/handbook/article:huong-dan-tam", json=article("huong-dan-tam"), headers=PROVINCE).status_code == 201
    rev = rev_of(c, "handbook", "article:huong-dan-tam")
    refused = c.delete(f"/handbook/article:huong-dan-tam?rev={rev}", headers=KIOSK_ACCOUNT)
    assert refused.status_code == 403 and refused.json["error"] == "forbidden"
    assert c.get("/handbook/article:huong-dan-tam", headers=KIOSK_ACCOUNT).status_code == 200
    assert c.delete(f"/handbook/article:huong-dan-tam?rev={rev}", headers=PROVINCE).status_code == 200
    app.extensions["sync_server"].close()


def test_a_kiosk_set_up_as_the_readme_says_does_not_serve_its_cell_to_anyone(kiosk):
    c = kiosk.test_client()
    anonymous = c.get(f"/{DB}/_all_docs?include_docs=true")
    assert anonymous.status_code == 401 and anonymous.json["error"] == "unauthorized"
    assert c.get(f"/{DB}/_all_docs", headers=MEMBER).status_code == 200
    assert c.get("/handbook/_all_docs", headers=MEMBER).status_code == 200
    assert c.get("/handbook/_all_docs").status_code == 401
    outsider = {"_id": "org.couchdb.user:TQ.NH.KH.C02.0001", "name": "TQ.NH.KH.C02.0001", "type": "user",
                "roles": ["cell:TQ.NH.KH.C02"], "pin": "4444"}
    c.put(f"/_users/{outsider['_id']}", json=outsider, headers=ADMIN)
    assert c.get(f"/{DB}/_all_docs", headers=basic("TQ.NH.KH.C02.0001", "4444")).status_code == 403


def test_a_database_without_security_is_admin_only(kiosk):
    c = kiosk.test_client()
    assert c.put("/other", headers=ADMIN).status_code == 201
    assert c.get("/other/_security", headers=ADMIN).json == {}
    assert c.put("/other/x", json={"a": 1}).status_code == 401
    assert c.get("/other/_all_docs", headers=MEMBER).status_code == 403
    assert c.put("/other/x", json={"a": 1}, headers=ADMIN).status_code == 201


def test_existing_kiosk_databases_get_their_security_at_start(tmp_path):
    """A data directory made before #15 (databases with an empty _security) is closed when the kiosk starts."""
    before = Server(tmp_path / "kiosk")
    before.create(DB)
    before.create("handbook")
    before.close()
    app = make_kiosk(tmp_path / "kiosk")
    assert app.test_client().get(f"/{DB}/_all_docs").status_code == 401
    assert app.extensions["sync_server"].get("handbook").get_security()["members"]["roles"][0] == f"cell:{CELL}"
    app.extensions["sync_server"].close()


# --- items 4, 5, 10: one rule, old and new document, whatever `type` says -------------------


def test_a_member_cannot_rewrite_another_members_attendance_without_type(kiosk):
    c = kiosk.test_client()
    assert c.put(f"/{DB}/{attendance('0013')['_id']}", json=attendance("0013"), headers=MEMBER).status_code == 201
    forged = {k: v for k, v in attendance("0013", member_no="0021", status="absent").items() if k != "type"}
    response = c.put(f"/{DB}/{forged['_id']}?rev={rev_of(c, DB, forged['_id'])}", json=forged, headers=NEIGHBOUR)
    assert response.status_code == 403 and response.json["error"] == "forbidden"
    assert c.get(f"/{DB}/{forged['_id']}", headers=ADMIN).json["status"] == "present"


def test_a_replicated_revision_cannot_take_over_another_members_attendance(kiosk):
    c = kiosk.test_client()
    doc_id = attendance("0021")["_id"]
    assert c.put(f"/{DB}/{doc_id}", json=attendance("0021"), headers=NEIGHBOUR).status_code == 201
    rev = rev_of(c, DB, doc_id)
    # 0013 claims 0021's record: no type (so no schema), and 0013's own member id in it
    forged = {k: v for k, v in attendance("0021", member_no="0013", status="absent").items() if k != "type"}
    for body in (dict(forged, _rev="9-" + "f" * 32),  # a branch of its own, winning by its generation
                 dict(forged, _rev="2-" + "f" * 32, _revisions={"start": 2, "ids": ["f" * 32, rev.split("-")[1]]})):
        rows = c.post(f"/{DB}/_bulk_docs", headers=MEMBER, json={"docs": [body], "new_edits": False}).json
        assert rows and rows[0]["error"] == "forbidden", rows
    assert rev_of(c, DB, doc_id) == rev


def test_a_member_cannot_replace_someone_elses_feedback(kiosk):
    c = kiosk.test_client()
    assert c.put(f"/{DB}/{FEEDBACK_ID}", json=feedback("0013", "Chữ to hơn"), headers=MEMBER).status_code == 201
    rewritten = dict(feedback("0021", "(đã xoá)"), _rev=rev_of(c, DB, FEEDBACK_ID))
    response = c.put(f"/{DB}/{FEEDBACK_ID}", json=rewritten, headers=NEIGHBOUR)
    assert response.status_code == 403 and "only their own feedback" in response.json["reason"]
    replicated = dict(feedback("0021", "(đã xoá)"), _rev="7-" + "a" * 32)
    rows = c.post(f"/{DB}/_bulk_docs", headers=NEIGHBOUR, json={"docs": [replicated], "new_edits": False}).json
    assert rows[0]["error"] == "forbidden"
    assert c.get(f"/{DB}/{FEEDBACK_ID}", headers=ADMIN).json["text"] == "Chữ to hơn"
    edited = dict(feedback("0013", "Chữ to hơn nữa"), _rev=rev_of(c, DB, FEEDBACK_ID))
    assert c.put(f"/{DB}/{FEEDBACK_ID}", json=edited, headers=MEMBER).status_code == 201  # the author may


def test_a_tombstones_own_type_does_not_choose_the_rule(kiosk):
    c = kiosk.test_client()
    assert c.put(f"/{DB}/member:{CELL}:0013", json=member_doc("0013"), headers=KIOSK_ADMIN).status_code == 201
    by_secretary = c.put(f"/{DB}/member:{CELL}:0013", headers=SECRETARY,
                         json={"_rev": rev_of(c, DB, f"member:{CELL}:0013"), "_deleted": True, "type": "meeting"})
    assert by_secretary.status_code == 403 and by_secretary.json["reason"] == "a secretary does not write member documents"
    by_kiosk_admin = c.put(f"/{DB}/{MEETING_ID}", headers=KIOSK_ADMIN,
                           json={"_rev": rev_of(c, DB, MEETING_ID), "_deleted": True, "type": "member"})
    assert by_kiosk_admin.status_code == 403
    assert c.delete(f"/{DB}/{MEETING_ID}?rev={rev_of(c, DB, MEETING_ID)}", headers=KIOSK_ADMIN).status_code == 403
    assert c.delete(f"/{DB}/{MEETING_ID}?rev={rev_of(c, DB, MEETING_ID)}", headers=SECRETARY).status_code == 200


def test_untyped_or_foreign_documents_do_not_enter_a_cell_database(kiosk):
    c = kiosk.test_client()
    for doc in ({"_id": "note:1", "text": "x"}, {k: v for k, v in member_doc("0099").items() if k != "type"}):
        response = c.put(f"/{DB}/{doc['_id']}", json=doc, headers=ADMIN)
        assert response.status_code == 403 and response.json["error"] == "forbidden", doc
    attachment = c.put(f"/{DB}/{attendance('0013')['_id']}/photo.jpg", data=b"\xff\xd8", headers=dict(
        NEIGHBOUR, **{"Content-Type": "image/jpeg"}))
    assert attachment.status_code == 403  # an attachment is a write of the document too


# --- signatures cover the whole life of an article --------------------------------------------


@pytest.fixture
def signed_kiosk(tmp_path):
    app = make_kiosk(tmp_path / "kiosk", public_keys=KEYS)
    yield app
    app.extensions["sync_server"].close()


def test_an_untyped_article_is_checked_like_a_typed_one(signed_kiosk):
    c = signed_kiosk.test_client()
    c.put("/handbook", headers=ADMIN)
    c.put("/other", headers=ADMIN)
    untyped = {k: v for k, v in article("gia-mao").items() if k != "type"}
    for db in ("handbook", "other"):
        response = c.put(f"/{db}/article:gia-mao", json=untyped, headers=ADMIN)
        assert response.status_code == 403 and response.json["error"] == "forbidden", db
    assert "not signed" in c.put("/other/article:gia-mao", json=untyped, headers=ADMIN).json["reason"]
    assert c.put("/handbook/article:that", json=signed("that"), headers=ADMIN).status_code == 201


def test_only_a_signed_retraction_deletes_an_article_at_a_kiosk(tmp_path, signed_kiosk):
    from sync_server.jobs.publish import retraction

    hub = Server(tmp_path / "hub")  # a hub that checks nothing: what anyone there writes reaches the kiosk
    hub_db = hub.create("handbook")
    hub_db.bulk_docs([signed("nq-01"), signed("nq-02")])
    store = signed_kiosk.extensions["sync_server"]
    assert replicate(LocalPeer(hub, "handbook"), LocalPeer(store, "handbook")).docs_written == 2
    key_path = tmp_path / "tq-2026.pem"
    key_path.write_bytes(KEY.private_bytes(*_pem()))
    tombstone = retraction("article:nq-02", str(key_path), None, KEYS)
    hub_db.bulk_docs([{"_id": "article:nq-01", "_rev": hub_db.get("article:nq-01")["_rev"], "_deleted": True},
                      dict(tombstone, _rev=hub_db.get("article:nq-02")["_rev"])])
    result = replicate(LocalPeer(hub, "handbook"), LocalPeer(store, "handbook"))
    hub.close()
    assert [(e["id"], e["error"]) for e in result.errors] == [("article:nq-01", "forbidden")]
    c = signed_kiosk.test_client()
    assert c.get("/handbook/article:nq-01", headers=ADMIN).status_code == 200  # the unsigned deletion is not applied
    assert c.get("/handbook/article:nq-02", headers=ADMIN).status_code == 404  # the province's retraction is
    assert c.get("/_sync/status").json["quarantined"] == 1  # and counted with the quarantined
    bare = c.delete(f"/handbook/article:nq-01?rev={rev_of(c, 'handbook', 'article:nq-01')}", headers=ADMIN)
    assert bare.status_code == 403 and "not signed" in bare.json["reason"]


def _pem() -> tuple:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()


# --- items 9, 11, 14, 15: sign-in, audit, pairing ------------------------------------------


def from_client(address: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_the_admin_password_is_locked_out_too(kiosk):
    c = kiosk.test_client()
    for _ in range(5):
        assert c.get("/_session", headers=basic("admin", "doan-mo"), **from_client("192.168.50.66")).status_code == 401
    locked = c.get("/_session", headers=ADMIN, **from_client("192.168.50.66"))
    assert locked.status_code == 401 and locked.json["error"] == "unauthorized" and "locked" in locked.json["reason"]
    assert c.get("/_session", headers=ADMIN, **from_client("127.0.0.1")).json["userCtx"]["roles"] == ["_admin"]


def test_a_new_admin_password_revokes_the_admin_cookie(tmp_path):
    first = make_kiosk(tmp_path / "kiosk")
    signed_in = first.test_client().post("/_session", json={"name": "admin", "password": "secret"})
    cookie = signed_in.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    first.extensions["sync_server"].close()
    settings = (Settings().replace("server", data_dir=str(tmp_path / "kiosk"), admin="admin:mat-khau-moi")
                .replace("sync", cell_db=DB, handbook_db="handbook"))
    second = create_app(settings)
    c = second.test_client()
    c.set_cookie("AuthSession", cookie)
    assert c.get("/_session").json["userCtx"] == {"name": None, "roles": []}
    assert c.get("/_all_dbs").status_code == 401
    second.extensions["sync_server"].close()


def test_a_failed_sign_in_writes_a_bounded_line_to_the_audit_log(kiosk):
    c = kiosk.test_client()
    assert c.post("/_session", json={"name": "x" * 1_000_000, "password": "1234"}).status_code == 401
    line = (kiosk.extensions["sync_server"].data_dir / "audit.log").read_text(encoding="utf-8").splitlines()[-1]
    assert len(line.encode()) < 2000 and "sign_in_failed" in line and "1000000 characters" in line


def test_wrong_pins_lock_the_guessing_client_not_the_member(kiosk):
    c = kiosk.test_client()
    wrong = basic(f"{CELL}.0013", "0000")
    for _ in range(5):
        assert c.get("/_session", headers=wrong, **from_client("192.168.50.66")).status_code == 401
    assert c.get("/_session", headers=MEMBER, **from_client("192.168.50.66")).status_code == 401
    assert c.get("/_session", headers=MEMBER, **from_client("192.168.50.20")).json["userCtx"]["name"] == f"{CELL}.0013"


def test_one_client_spraying_a_pin_over_every_member_is_stopped(kiosk):
    c = kiosk.test_client()
    for no in range(100, 120):  # one try per account: no account reaches its own limit
        assert c.get("/_session", headers=basic(f"{CELL}.{no:04d}", "1234"), **from_client("192.168.50.66")).status_code == 401
    refused = c.get("/_session", headers=MEMBER, **from_client("192.168.50.66"))
    assert refused.status_code == 401 and "from this device" in refused.json["reason"]
    assert c.get("/_session", headers=MEMBER, **from_client("192.168.50.20")).status_code == 200


def test_a_guesser_changing_addresses_is_stopped_per_account(kiosk):
    c = kiosk.test_client()
    for n in range(50):  # one wrong PIN from each of 50 addresses: no client reaches a limit of its own
        c.get("/_session", headers=basic(f"{CELL}.0013", f"{n:04d}"), **from_client(f"10.0.{n}.1"))
    locked = c.get("/_session", headers=MEMBER, **from_client("192.168.50.20"))
    assert locked.status_code == 401 and "this account is locked" in locked.json["reason"]
    assert c.get("/_session", headers=NEIGHBOUR).status_code == 200  # the others are not
    assert c.delete(f"/_pairing/locks?name={CELL}.0013", headers=KIOSK_ADMIN).json["lifted"] == 1
    assert c.get("/_session", headers=MEMBER, **from_client("192.168.50.20")).status_code == 200


def test_a_lock_is_capped_and_the_kiosk_admin_lifts_it(kiosk, monkeypatch):
    from sync_server.security import auth

    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    c = kiosk.test_client()
    wrong = basic(f"{CELL}.0013", "0000")
    for _ in range(25):  # 25 locks in a row: uncapped, the last would last 2**24 * 30 s (16 years)
        for _ in range(5):
            c.get("/_session", headers=wrong)
        reason = c.get("/_session", headers=MEMBER).json["reason"]
        clock[0] += 901
    assert reason == "Too many wrong tries: this account is locked for 900 s."
    for _ in range(5):
        c.get("/_session", headers=wrong)
    assert c.get("/_session", headers=MEMBER).status_code == 401
    elsewhere = from_client("192.168.50.20")
    listed = c.get("/_pairing/locks", headers=KIOSK_ADMIN, **elsewhere).json
    assert [lock["name"] for lock in listed if "name" in lock] == [f"{CELL}.0013"]
    assert c.delete("/_pairing/locks", headers=SECRETARY, **elsewhere).status_code == 403
    assert c.delete("/_pairing/locks", headers=KIOSK_ADMIN, **elsewhere).json["lifted"] >= 1
    assert c.get("/_session", headers=MEMBER).json["userCtx"]["name"] == f"{CELL}.0013"


def _pair(c: Any, code: str, who: str = f"{CELL}.0013", pin: str = "1313", client: str = "192.168.50.20") -> Any:
    return c.post("/_pairing/claim", json={"code": code, "name": who, "pin": pin, "label": "điện thoại"},
                  **from_client(client))


def test_pairing_codes_cannot_be_guessed(kiosk):
    c = kiosk.test_client()
    code = c.post("/_pairing/code", headers=KIOSK_ADMIN).json["code"]
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 11)]
    for n, guess in enumerate(wrong):  # ten guesses, from ten addresses: no client lock helps here
        response = _pair(c, guess, client=f"192.168.50.{100 + n}")
        assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert _pair(c, code).status_code == 401  # the live code was dropped: the admin shows a new one
    assert _pair(c, c.post("/_pairing/code", headers=KIOSK_ADMIN).json["code"]).status_code == 201


def test_wrong_pairing_codes_count_toward_the_clients_lock(kiosk):
    c = kiosk.test_client()
    for n in range(20):
        _pair(c, f"{n:06d}", client="192.168.50.66")
    code = c.post("/_pairing/code", headers=KIOSK_ADMIN).json["code"]
    refused = _pair(c, code, client="192.168.50.66")
    assert refused.status_code == 401 and "from this device" in refused.json["reason"]


def test_a_new_pin_revokes_the_members_paired_phones(kiosk):
    c = kiosk.test_client()
    paired = _pair(c, c.post("/_pairing/code", headers=KIOSK_ADMIN).json["code"])
    bearer = {"Authorization": f"Bearer {paired.json['token']}"}
    assert c.get(f"/{DB}/_all_docs", headers=bearer).status_code == 200
    user = c.get(f"/_users/org.couchdb.user:{CELL}.0013", headers=ADMIN).json
    assert c.put(f"/_users/org.couchdb.user:{CELL}.0013", json=dict(user, pin="8642"), headers=ADMIN).status_code == 201
    revoked = c.get(f"/{DB}/_all_docs", headers=bearer)
    assert revoked.status_code == 401 and revoked.json["error"] == "unauthorized"


def test_a_kiosk_admin_sees_and_unpairs_only_its_own_cells_phones(kiosk):
    c = kiosk.test_client()
    device = _pair(c, c.post("/_pairing/code", headers=KIOSK_ADMIN).json["code"]).json["device_id"]
    other = account("TQ.NH.KH.C02.kiosk", "7777", "kiosk-admin", "cell:TQ.NH.KH.C02")
    c.put(f"/_users/{other['_id']}", json=other, headers=ADMIN)
    neighbour_admin = basic("TQ.NH.KH.C02.kiosk", "7777")
    assert c.get("/_pairing/devices", headers=neighbour_admin).json == []
    refused = c.delete(f"/_pairing/devices/{device}", headers=neighbour_admin)
    assert refused.status_code == 404 and refused.json["error"] == "not_found"
    assert [d["device_id"] for d in c.get("/_pairing/devices", headers=KIOSK_ADMIN).json] == [device]
    assert c.delete(f"/_pairing/devices/{device}", headers=KIOSK_ADMIN).status_code == 200


def test_a_kiosk_admins_pairing_code_pairs_only_its_own_cells_members(kiosk):
    c = kiosk.test_client()
    other = account("TQ.NH.KH.C02.kiosk", "7777", "kiosk-admin", "cell:TQ.NH.KH.C02")
    c.put(f"/_users/{other['_id']}", json=other, headers=ADMIN)
    code = c.post("/_pairing/code", headers=basic("TQ.NH.KH.C02.kiosk", "7777")).json["code"]
    refused = _pair(c, code)  # a member of TQ.NH.KH.C01
    assert refused.status_code == 403 and refused.json == {
        "error": "forbidden", "reason": "This code pairs phones of TQ.NH.KH.C02 only."}
    assert c.get("/_pairing/devices", headers=ADMIN).json == []
    assert _pair(c, c.post("/_pairing/code", headers=KIOSK_ADMIN).json["code"]).status_code == 201
    assert _pair(c, c.post("/_pairing/code", headers=ADMIN).json["code"], who=f"{CELL}.0021", pin="2121").status_code == 201
