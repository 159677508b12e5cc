"""_users accounts (CouchDB's format, hashed) and the native ownership rules, over HTTP."""

from __future__ import annotations

import pytest
from accounts import ADMIN, basic

from sync_server.app import create_app
from sync_server.handbook import ownership
from sync_server.jobs.provision import HANDBOOK_SECURITY, security_of_cell
from sync_server.settings import Settings

CELL = "TQ.NH.KH.C01"
DB = "cell-tq-nh-kh-c01"


def meeting(cell: str, n: int = 1) -> dict:
    return {"_id": f"meeting:{cell}:00000000-0000-4000-8000-{n:012d}", "type": "meeting", "cell": cell,
            "kind": "regular", "scheduled": "2026-12-03T19:30:00+07:00", "status": "scheduled"}


@pytest.fixture
def client(tmp_path):
    app = create_app(Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret"))
    test_client = app.test_client()
    for db in ("_users", DB, "handbook"):
        assert test_client.put(f"/{db}", headers=ADMIN).status_code == 201
    # the _security provisioning gives a hub's databases (without it they are admin-only)
    assert test_client.put(f"/{DB}/_security", json=security_of_cell(CELL), headers=ADMIN).status_code == 200
    assert test_client.put("/handbook/_security", json=HANDBOOK_SECURITY, headers=ADMIN).status_code == 200
    for name, roles in (("kiosk-tq-nh-kh-c01", ["kiosk"]), ("tinh", ["province"])):
        user = {"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": roles, "password": "mật khẩu 1"}
        assert test_client.put(f"/_users/org.couchdb.user:{name}", json=user, headers=ADMIN).status_code == 201
    yield test_client
    app.extensions["sync_server"].close()


def test_password_is_stored_hashed_and_authenticates(client):
    stored = client.get("/_users/org.couchdb.user:tinh", headers=ADMIN).json
    assert "password" not in stored and stored["password_scheme"] == "pbkdf2" and len(stored["derived_key"]) == 64
    session = client.get("/_session", headers=basic("tinh", "mật khẩu 1")).json
    assert session["userCtx"] == {"name": "tinh", "roles": ["province"]}
    assert client.get("/_session", headers=basic("tinh", "sai")).status_code == 401


def test_users_database_is_for_admins_only(client):
    assert client.get("/_users/_all_docs").status_code == 401
    assert client.get("/_users/org.couchdb.user:tinh", headers=basic("tinh", "mật khẩu 1")).status_code == 403


def test_malformed_account_is_refused(client):
    bad = {"_id": "org.couchdb.user:x", "name": "y", "type": "user", "roles": []}
    response = client.put("/_users/org.couchdb.user:x", json=bad, headers=ADMIN)
    assert response.status_code == 403 and response.json["error"] == "forbidden"


def test_cookie_session_for_a_user(client):
    response = client.post("/_session", json={"name": "kiosk-tq-nh-kh-c01", "password": "mật khẩu 1"})
    assert response.status_code == 200 and "AuthSession=" in response.headers["Set-Cookie"]
    assert client.get("/_session").json["userCtx"]["name"] == "kiosk-tq-nh-kh-c01"


def test_cell_database_takes_only_its_own_cells_records(client):
    kiosk = basic("kiosk-tq-nh-kh-c01", "mật khẩu 1")
    ok = meeting(CELL)
    assert client.put(f"/{DB}/{ok['_id']}", json=ok, headers=kiosk).status_code == 201
    other = meeting("TQ.NH.KH.C02", 2)
    response = client.put(f"/{DB}/{other['_id']}", json=other, headers=kiosk)
    assert response.status_code == 403 and "belongs to 'TQ.NH.KH.C02'" in response.json["reason"]
    unit = {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang", "level": "province", "parent": None}
    response = client.put(f"/{DB}/unit:TQ", json=unit, headers=ADMIN)
    assert response.status_code == 403 and "does not belong in this database" in response.json["reason"]


def test_only_the_province_writes_the_handbook(client):
    unit = {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang", "level": "province", "parent": None}
    response = client.put("/handbook/unit:TQ", json=unit, headers=basic("kiosk-tq-nh-kh-c01", "mật khẩu 1"))
    assert response.status_code == 403 and response.json["reason"] == "only the province writes the handbook"
    assert client.put("/handbook/unit:TQ", json=unit, headers=basic("tinh", "mật khẩu 1")).status_code == 201


@pytest.mark.parametrize(
    "db, doc, roles, refused",
    [
        (DB, meeting(CELL), ("kiosk",), None),
        (DB, meeting("TQ.NH.KH.C02"), ("kiosk",), "belongs to"),
        (DB, dict(meeting(CELL), _deleted=True, cell="X"), ("kiosk",), None),
        ("handbook", {"_id": "article:x", "type": "article"}, ("kiosk",), "only the province"),
        ("handbook", {"_id": "article:x", "type": "article"}, None, None),  # the server's own replication
        ("handbook", {"_id": "meeting:x", "type": "meeting"}, ("province",), "does not belong"),
        ("other", {"_id": "x", "type": "meeting"}, ("kiosk",), None),
    ],
)
def test_ownership_rule_table(db, doc, roles, refused):
    reason = ownership.check(ownership.rules_for(db), doc, roles)
    assert (reason is None) if refused is None else (refused in reason)


def test_rendered_javascript_carries_the_same_rule():
    source = ownership.validate_doc_update(ownership.rules_for(DB))
    assert source.startswith("function (newDoc, oldDoc, userCtx, secObj)")
    assert '"cell": "TQ.NH.KH.C01"' in source and "throw({forbidden:" in source


def test_a_changed_password_or_deleted_account_counts_at_once(client):
    tinh = basic("tinh", "mật khẩu 1")
    assert client.get("/_session", headers=tinh).json["userCtx"]["name"] == "tinh"  # now cached
    doc = client.get("/_users/org.couchdb.user:tinh", headers=ADMIN).json
    doc["password"] = "mật khẩu 2"
    assert client.put("/_users/org.couchdb.user:tinh", json=doc, headers=ADMIN).status_code == 201
    assert client.get("/_session", headers=tinh).status_code == 401
    assert client.get("/_session", headers=basic("tinh", "mật khẩu 2")).status_code == 200
    rev = client.get("/_users/org.couchdb.user:tinh", headers=ADMIN).json["_rev"]
    client.delete(f"/_users/org.couchdb.user:tinh?rev={rev}", headers=ADMIN)
    assert client.get("/_session", headers=basic("tinh", "mật khẩu 2")).status_code == 401
