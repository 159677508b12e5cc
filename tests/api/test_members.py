"""``/_members``: the kiosk admin manages its own cell's members, and nothing else (issue 13)."""

from __future__ import annotations

import json

import pytest
from accounts import ADMIN, account, basic, open_cells

from sync_server.app import create_app
from sync_server.security.audit import verify
from sync_server.settings import Settings

CELL, OTHER = "TQ.NH.KH.C01", "TQ.NH.KH.C02"
DB, OTHER_DB = "cell-tq-nh-kh-c01", "cell-tq-nh-kh-c02"


KIOSK_ADMIN = basic(f"{CELL}.kiosk", "1357")
OTHER_ADMIN = basic(f"{OTHER}.kiosk", "2468")


@pytest.fixture
def app(tmp_path):
    app = create_app(Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret"))
    open_cells(app.test_client(), {DB: CELL, OTHER_DB: OTHER},
               [account(f"{CELL}.kiosk", "1357", "kiosk-admin", f"cell:{CELL}"),
                account(f"{OTHER}.kiosk", "2468", "kiosk-admin", f"cell:{OTHER}")])
    yield app
    app.extensions["sync_server"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def add(client, number: str, name: str, headers=KIOSK_ADMIN, **extra):
    return client.post("/_members", json={"member_no": number, "name": name, **extra}, headers=headers)


def signs_in(client, name: str, pin: str) -> int:
    return client.post("/_session", json={"name": name, "password": pin}).status_code


def test_the_kiosk_admin_adds_a_member_gives_a_pin_and_the_member_signs_in(client, app):
    created = add(client, "3", "Hoàng Văn Thắng", born=1949, gender="male", smartphone=True)
    assert created.status_code == 201
    member = created.json["member"]
    assert member["member_no"] == "0003" and member["account"] == f"{CELL}.0003" and not member["has_pin"]
    stored = client.get(f"/{DB}/member:{CELL}:0003", headers=ADMIN).json
    assert stored["status"] == "active" and stored["installed"] is False and stored["registered"] is False
    assert add(client, "0003", "Someone else").status_code == 409

    given = client.post("/_members/3/pin", headers=KIOSK_ADMIN)
    assert given.status_code == 201 and given.headers["Cache-Control"] == "no-store"
    pin = given.json["pin"]
    assert pin.isdigit() and len(pin) == 6
    assert signs_in(client, f"{CELL}.0003", pin) == 200
    roles = client.get(f"/_users/org.couchdb.user:{CELL}.0003", headers=ADMIN).json["roles"]
    assert sorted(roles) == ["cell:TQ.NH.KH.C01", "member"]

    listed = client.get("/_members", headers=KIOSK_ADMIN).json
    assert listed["cell"] == CELL and [m["member_no"] for m in listed["members"]] == ["0003"]
    assert listed["members"][0]["has_pin"] is True and "pin" not in json.dumps(listed).replace('"has_pin"', "")

    # the PIN is shown once: never in the audit log, which records who gave it
    log = (app.extensions["sync_server"].data_dir / "audit.log").read_text()
    assert pin not in log and '"event":"pin_given"' in log.replace(" ", "")
    assert verify(app.extensions["sync_server"].data_dir)[0]


def test_a_new_pin_lifts_the_lockout_and_ends_the_old_sessions(client):
    add(client, "0007", "Ma Văn Sinh")
    first = client.post("/_members/0007/pin", json={"pin": "1111"}, headers=KIOSK_ADMIN)
    assert first.status_code == 201 and first.json["pin"] == "1111"
    member = basic(f"{CELL}.0007", "1111")
    assert client.get(f"/{DB}", headers=member).status_code == 200
    for _ in range(5):
        assert signs_in(client, f"{CELL}.0007", "9999") == 401
    locked = client.post("/_session", json={"name": f"{CELL}.0007", "password": "1111"})
    assert locked.status_code == 401 and "locked" in locked.json["reason"]
    row = client.get("/_members", headers=KIOSK_ADMIN).json["members"][0]
    assert 25 <= row["locked_seconds"] <= 30

    pin = client.post("/_members/0007/pin", headers=KIOSK_ADMIN).json["pin"]
    assert signs_in(client, f"{CELL}.0007", pin) == 200  # at once, no waiting out the lock
    assert client.get(f"/{DB}", headers=member).status_code == 401  # the old PIN is gone
    assert client.get("/_members", headers=KIOSK_ADMIN).json["members"][0]["locked_seconds"] == 0


def test_a_pin_written_by_another_process_lifts_the_lockout_too(client, app):
    """``sync-server member pin`` runs beside the server: the lock follows the PIN, not the memory."""
    from sync_server.handbook.members import Desk
    from sync_server.security.audit import AuditLog

    add(client, "0008", "Lý Thị Mai")
    client.post("/_members/0008/pin", json={"pin": "1111"}, headers=KIOSK_ADMIN)
    for _ in range(5):
        signs_in(client, f"{CELL}.0008", "9999")
    assert signs_in(client, f"{CELL}.0008", "1111") == 401
    store = app.extensions["sync_server"]
    Desk(store, CELL, "cli", AuditLog(store.data_dir)).give_pin("0008", "2222")  # no unlock callback
    assert signs_in(client, f"{CELL}.0008", "2222") == 200


def test_only_the_kiosk_admin_of_the_cell_manages_it(client):
    add(client, "0001", "Hoàng Văn A")
    pin = client.post("/_members/0001/pin", headers=KIOSK_ADMIN).json["pin"]
    member = basic(f"{CELL}.0001", pin)
    assert client.get("/_members").status_code == 401
    assert client.post("/_members/0001/pin").status_code == 401
    for headers in (member, OTHER_ADMIN):
        assert client.post("/_members/0001/pin", headers=headers).status_code in (403, 404)
    assert client.post("/_members/0001/pin", headers=member).json["error"] == "forbidden"
    # another cell's kiosk admin sees and touches only its own cell
    assert client.get("/_members", headers=OTHER_ADMIN).json == {"cell": OTHER, "members": []}
    assert client.post("/_members/0001/pin", headers=OTHER_ADMIN).json["error"] == "not_found"
    assert client.get(f"/_members?cell={CELL}", headers=OTHER_ADMIN).status_code == 403
    assert client.post(f"/_members/0001/status?cell={CELL}", json={"status": "moved"},
                       headers=OTHER_ADMIN).status_code == 403
    # the server admin names the cell
    assert client.get(f"/_members?cell={CELL}", headers=ADMIN).json["members"][0]["member_no"] == "0001"
    assert signs_in(client, f"{CELL}.0001", pin) == 200  # nothing changed by the refusals


def test_accounts_that_are_not_plain_members_are_refused(client):
    # a member record whose number is also a kiosk admin's account: the desk will not touch that account
    add(client, "kiosk", "Máy nhà văn hoá")
    refused = client.post("/_members/kiosk/pin", headers=KIOSK_ADMIN)
    assert refused.status_code == 403 and "plain member" in refused.json["reason"]
    assert signs_in(client, f"{CELL}.kiosk", "1357") == 200
    assert client.post("/_members/kiosk/status", json={"status": "moved"}, headers=KIOSK_ADMIN).status_code == 403
    assert client.get(f"/{DB}/member:{CELL}:kiosk", headers=ADMIN).json["status"] == "active"
    # no role but member and secretary is ever given, whatever the body says
    add(client, "0002", "Hoàng Văn B")
    body = {"pin": "4321", "roles": ["_admin"]}
    assert client.post("/_members/0002/pin", json=body, headers=KIOSK_ADMIN).status_code == 201
    assert "_admin" not in client.get(f"/_users/org.couchdb.user:{CELL}.0002", headers=ADMIN).json["roles"]
    assert client.post("/_members/0002/pin", json={"pin": "12"}, headers=KIOSK_ADMIN).json["error"] == "bad_request"


def test_moved_members_lose_their_account_and_the_secretary_is_one(client):
    for number, name in (("0001", "Hoàng Văn A"), ("0002", "Ma Thị B"), ("0003", "Đặng Văn C")):
        add(client, number, name)
    pins = {n: client.post(f"/_members/{n}/pin", headers=KIOSK_ADMIN).json["pin"] for n in ("0001", "0002", "0003")}
    assert client.post("/_members/0001/secretary", headers=KIOSK_ADMIN).json["secretary"] == f"{CELL}.0001"
    assert client.post("/_members/0002/secretary", headers=KIOSK_ADMIN).status_code == 200
    rows = {m["member_no"]: m for m in client.get("/_members", headers=KIOSK_ADMIN).json["members"]}
    assert [n for n, m in rows.items() if m["secretary"]] == ["0002"]
    assert client.post(f"/{DB}/_bulk_docs", headers=basic(f"{CELL}.0002", pins["0002"]), json={"docs": [
        {"_id": f"meeting:{CELL}:00000000-0000-4000-8000-000000000009", "type": "meeting", "cell": CELL,
         "kind": "regular", "status": "scheduled", "scheduled": "2026-12-10T19:30:00+07:00"}]}).json[0].get("ok")

    session = client.post("/_session", json={"name": f"{CELL}.0003", "password": pins["0003"]})
    assert session.status_code == 200
    assert client.post("/_members/0003/status", json={"status": "moved"}, headers=KIOSK_ADMIN).status_code == 200
    assert client.get(f"/{DB}", headers=basic(f"{CELL}.0003", pins["0003"])).status_code == 401
    assert client.get("/_session").json["userCtx"]["name"] is None  # the cookie's session ended too
    assert client.get(f"/{DB}/member:{CELL}:0003", headers=ADMIN).json["status"] == "moved"
    assert client.post("/_members/0003/pin", headers=KIOSK_ADMIN).status_code == 409  # not while moved
    assert client.post("/_members/0003/status", json={"status": "gone"}, headers=KIOSK_ADMIN).status_code == 400
    client.post("/_members/0003/status", json={"status": "active"}, headers=KIOSK_ADMIN)
    assert client.post("/_members/0003/pin", headers=KIOSK_ADMIN).status_code == 201


REGISTER = """Số đảng viên,Họ và tên,Năm sinh,Giới tính,Điện thoại thông minh
1,Hoàng Văn Thắng,1949,nam,không
12,Ma Thị Lụa,1968,nữ,có
0013,Đặng Thị Hoà,1970,nữ,x
"""


def test_a_register_csv_is_imported_whole_or_not_at_all(client):
    done = client.post("/_members/_import", data=REGISTER.encode(), content_type="text/csv", headers=KIOSK_ADMIN)
    assert done.status_code == 201 and done.json == {"ok": True, "added": 3, "updated": 0}
    rows = client.get("/_members", headers=KIOSK_ADMIN).json["members"]
    # sorted by given name, as a Vietnamese register reads
    assert [(m["member_no"], m["name"], m["smartphone"]) for m in rows] == [
        ("0013", "Đặng Thị Hoà", True), ("0012", "Ma Thị Lụa", True), ("0001", "Hoàng Văn Thắng", False)]
    lua = client.get(f"/{DB}/member:{CELL}:0012", headers=ADMIN).json
    assert (lua["born"], lua["gender"]) == (1968, "female")

    # a file with a bad line changes nothing, and names every bad line
    bad = REGISTER.replace("1968", "nineteen") + "12,Trùng số,1950,nam,có\n5,,1950,nam,có\n"
    refused = client.post("/_members/_import", data=bad.encode(), content_type="text/csv", headers=KIOSK_ADMIN)
    assert refused.status_code == 400 and refused.json["error"] == "bad_request"
    reason = refused.json["reason"]
    assert "line 3" in reason and "line 6" in reason and "line 5" not in reason.split("nothing imported")[0]
    assert client.get(f"/{DB}/member:{CELL}:0001", headers=ADMIN).json["_rev"].startswith("1-")

    # importing again updates names and keeps what the kiosk knows (installed, registered, account)
    pin = client.post("/_members/1/pin", headers=KIOSK_ADMIN).json["pin"]
    again = REGISTER.replace("Hoàng Văn Thắng", "Hoàng Văn Thắng (Bản Lằn)")
    assert client.post("/_members/_import", json={"csv": again}, headers=KIOSK_ADMIN).json["updated"] == 3
    assert client.get(f"/{DB}/member:{CELL}:0001", headers=ADMIN).json["name"] == "Hoàng Văn Thắng (Bản Lằn)"
    assert signs_in(client, f"{CELL}.0001", pin) == 200
    assert client.post("/_members/_import", data=b"name\nX\n", content_type="text/csv",
                       headers=KIOSK_ADMIN).json["reason"].startswith("nothing imported: line 1: the header needs")
    assert client.post("/_members/_import", data=REGISTER.encode(), content_type="text/csv",
                       headers=OTHER_ADMIN).json["added"] == 3  # into its own cell only
    assert client.get(f"/{OTHER_DB}/member:{OTHER}:0001", headers=ADMIN).status_code == 200
