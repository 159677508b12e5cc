"""Usage recorded from behaviour: pairing, revoking, signing in, being active (issue 13)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from accounts import ADMIN, basic

from schemas.hierarchy import parse_hierarchy
from sync_server.app import create_app
from sync_server.handbook import reports, usage
from sync_server.security.pairing import DEVICES_PER_MEMBER
from sync_server.settings import Settings

CELL, DB = "TQ.NH.KH.C01", "cell-tq-nh-kh-c01"
HIERARCHY = f"code,name,level,parent\nTQ,Tuyên Quang,province,\nTQ.NH,Na Hang,district,TQ\n" \
            f"TQ.NH.KH,Khâu Tinh,commune,TQ.NH\n{CELL},Bản Lằn,cell,TQ.NH.KH\n"


KIOSK_ADMIN = basic(f"{CELL}.kiosk", "1357")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 19, 30, tzinfo=timezone(timedelta(hours=7)))

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def kiosk(tmp_path):
    app = create_app(Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret", usage_delay=0))
    clock = Clock()
    app.extensions["usage"].clock = clock
    c = app.test_client()
    c.put(f"/{DB}", headers=ADMIN)
    c.put(f"/{DB}/_security", headers=ADMIN, json={"members": {"roles": [f"cell:{CELL}"]}})
    c.put("/_users", headers=ADMIN)
    c.put(f"/_users/org.couchdb.user:{CELL}.kiosk", headers=ADMIN, json={
        "_id": f"org.couchdb.user:{CELL}.kiosk", "name": f"{CELL}.kiosk", "type": "user",
        "roles": ["kiosk-admin", f"cell:{CELL}"], "pin": "1357"})
    for number, name in (("0003", "Hoàng Văn Thắng"), ("0012", "Ma Thị Lụa")):
        assert c.post("/_members", json={"member_no": number, "name": name, "smartphone": True},
                      headers=KIOSK_ADMIN).status_code == 201
    pins = {n: c.post(f"/_members/{n}/pin", headers=KIOSK_ADMIN).json["pin"] for n in ("0003", "0012")}
    yield app, c, clock, pins
    app.extensions["sync_server"].close()


def member(client, number: str) -> dict:
    return client.get(f"/{DB}/member:{CELL}:{number}", headers=ADMIN).json


def month_report(app) -> reports.Row:
    db = app.extensions["sync_server"].get(DB)
    return reports.compute(db, parse_hierarchy(HIERARCHY), "2026-12").row(CELL)


def test_first_sign_in_registers_and_activity_is_written_once_a_day(kiosk):
    app, c, clock, pins = kiosk
    assert member(c, "0003")["registered"] is False
    assert month_report(app).registered == 0
    assert c.post("/_session", json={"name": f"{CELL}.0003", "password": pins["0003"]}).status_code == 200
    first = member(c, "0003")
    assert first["registered"] is True and first["last_active"] == "2026-12-03T19:30:00+07:00"
    assert first["registered_at"] == "2026-12-03T19:30:00+07:00" and first["active_months"] == ["2026-12"]
    assert month_report(app).registered == 1  # the report follows what was done

    # a busy day costs one write: reads, syncs and check-ins the same day change nothing
    auth = basic(f"{CELL}.0003", pins["0003"])
    for _ in range(5):
        assert c.get(f"/{DB}/_changes", headers=auth).status_code == 200
    assert member(c, "0003")["_rev"] == first["_rev"]
    assert month_report(app).active == 1
    clock.now += timedelta(days=1)
    assert c.get(f"/{DB}/_changes", headers=auth).status_code == 200
    assert member(c, "0003")["last_active"] == "2026-12-04T19:30:00+07:00"
    # a month later the member is active in January too; December's report made afterwards still counts
    # them (active_months keeps the months), and the first sign-in keeps its date
    clock.now += timedelta(days=28)
    assert c.get(f"/{DB}/_changes", headers=auth).status_code == 200
    later = member(c, "0003")
    assert later["active_months"] == ["2026-12", "2027-01"] and later["registered_at"] == first["registered_at"]
    assert month_report(app).active == 1 and month_report(app).members == 2

    # refused requests and accounts without a member record count for nothing
    assert c.post("/_session", json={"name": f"{CELL}.0012", "password": "0000"}).status_code == 401
    assert member(c, "0012")["registered"] is False
    assert c.get("/_members", headers=KIOSK_ADMIN).status_code == 200
    assert c.get(f"/{DB}/member:{CELL}:kiosk", headers=ADMIN).status_code == 404


def test_a_burst_of_sign_ins_is_one_write_after_the_delay(kiosk):
    """At a meeting everyone signs in at once: their marks wait ``usage_delay`` and go in one write,
    so the live phones pull one change instead of one per member (issue 14)."""
    app, c, clock, pins = kiosk
    usage = app.extensions["usage"]
    usage.delay = 0.5
    db = app.extensions["sync_server"].get(DB)
    before = db.update_seq
    for number in ("0003", "0012"):
        assert c.post("/_session", json={"name": f"{CELL}.{number}", "password": pins[number]}).status_code == 200
    assert member(c, "0003")["registered"] is False and db.update_seq == before  # waiting, nothing written yet
    deadline = time.monotonic() + 10
    while db.update_seq == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert member(c, "0003")["registered"] is True and member(c, "0012")["registered"] is True
    rows = c.get(f"/{DB}/_changes", query_string={"since": before}, headers=ADMIN).json["results"]
    assert sorted(r["id"] for r in rows) == [f"member:{CELL}:0003", f"member:{CELL}:0012"]
    assert db.update_seq == before + 2  # one bulk write of both, no other
    # what is still waiting when the server stops is written by flush (the server calls it on its way out)
    usage.delay = 3600
    clock.now += timedelta(days=1)
    assert c.get(f"/{DB}/_changes", headers=basic(f"{CELL}.0003", pins["0003"])).status_code == 200
    assert member(c, "0003")["last_active"].startswith("2026-12-03")
    usage.flush()
    assert member(c, "0003")["last_active"] == "2026-12-04T19:30:00+07:00"


def test_pairing_writes_a_device_record_and_revoking_marks_it(kiosk):
    app, c, clock, pins = kiosk
    assert month_report(app).installed == 0
    code = c.post("/_pairing/code", headers=KIOSK_ADMIN).json["code"]
    claimed = c.post("/_pairing/claim", json={"code": code, "name": f"{CELL}.0012", "pin": pins["0012"],
                                              "label": "Điện thoại của chị Lụa"})
    assert claimed.status_code == 201
    device_id = claimed.json["device_id"]
    device = c.get(f"/{DB}/device:{CELL}:{device_id}", headers=ADMIN).json
    assert device["member"] == f"member:{CELL}:0012" and device["revoked"] is False
    assert device["label"] == "Điện thoại của chị Lụa" and device["paired_at"] == "2026-12-03T19:30:00+07:00"
    assert member(c, "0012")["installed"] is True and member(c, "0012")["registered"] is True
    assert month_report(app).installed == 1
    # a member reads the device records of the cell; only the kiosk writes them
    phone = {"Authorization": f"Bearer {claimed.json['token']}"}
    assert c.get(f"/{DB}/device:{CELL}:{device_id}", headers=phone).status_code == 200

    clock.now += timedelta(hours=2)
    assert c.delete(f"/_pairing/devices/{device_id}", headers=KIOSK_ADMIN).status_code == 200
    device = c.get(f"/{DB}/device:{CELL}:{device_id}", headers=ADMIN).json
    assert device["revoked"] is True and device["revoked_at"] == "2026-12-03T21:30:00+07:00"
    assert member(c, "0012")["installed"] is False
    assert month_report(app).installed == 0  # a revoked phone: the figure goes down


def test_reading_is_counted_per_cell_and_day_never_per_person(kiosk):
    app, c, clock, pins = kiosk
    lua, thang = basic(f"{CELL}.0012", pins["0012"]), basic(f"{CELL}.0003", pins["0003"])
    # read at home on the 1st (offline), sent when the phone reached the kiosk on the 3rd
    sent = c.post("/_reading", headers=lua, json={"reads": {"2026-12-01": {"article:dieu-le-dang": 2},
                                                            "2026-12-03": {"article:nghi-quyet-01": 1}}})
    assert sent.status_code == 200 and sent.json == {"ok": True, "counted": 3}
    assert c.post("/_reading", headers=thang, json={"reads": {"2026-12-03": {"article:nghi-quyet-01": 4}}}).json[
        "counted"] == 4
    rows = c.get(f"/{DB}/_all_docs?startkey=%22reading:%22&endkey=%22reading;%22&include_docs=true",
                 headers=ADMIN).json["rows"]
    assert [r["doc"]["date"] for r in rows] == ["2026-12-01", "2026-12-03"]
    third = rows[1]["doc"]
    assert third["counts"] == {"article:nghi-quyet-01": 5} and third["cell"] == CELL
    assert third["_id"].startswith(f"reading:{CELL}:2026-12-03:")
    assert set(third) == {"_id", "_rev", "type", "cell", "date", "counts"}  # nobody named
    row = month_report(app)
    assert row.reads == 7
    report = reports.compute(app.extensions["sync_server"].get(DB), parse_hierarchy(HIERARCHY), "2026-12")
    assert report.top_articles(CELL) == [("article:nghi-quyet-01", 5), ("article:dieu-le-dang", 2)]

    # refused, and nothing counted: bad input, old or future dates, no sign-in, not a member
    for body in ({}, {"reads": []}, {"reads": {"3 Dec": {"article:x": 1}}},
                 {"reads": {"2026-12-03": {"member:TQ.NH.KH.C01:0003": 1}}},
                 {"reads": {"2026-12-03": {"article:x": 0}}}, {"reads": {"2026-12-03": {"article:x": True}}},
                 {"reads": {"2026-09-01": {"article:x": 1}}}, {"reads": {"2026-12-05": {"article:x": 1}}},
                 {"reads": {"2026-12-03": {"article:x": 1001}}}):
        answer = c.post("/_reading", headers=lua, json=body)
        assert answer.status_code == 400 and answer.json["error"] == "bad_request", body
    assert c.post("/_reading", json={"reads": {"2026-12-03": {"article:x": 1}}}).status_code == 401
    assert c.post("/_reading", headers=KIOSK_ADMIN, json={"reads": {"2026-12-03": {"article:x": 1}}}).status_code \
        == 403
    assert month_report(app).reads == 7
    # only the kiosk writes the counts: a member (or the kiosk admin) writing one directly is refused
    forged = {"_id": f"reading:{CELL}:2026-12-03:forged", "type": "reading", "cell": CELL, "date": "2026-12-03",
              "counts": {"article:x": 500}}
    assert c.put(f"/{DB}/{forged['_id']}", headers=lua, json=forged).status_code == 403
    assert c.put(f"/{DB}/{forged['_id']}", headers=KIOSK_ADMIN, json=forged).status_code == 403


def test_a_member_adds_at_most_a_days_worth_of_reads_to_a_day(kiosk):
    app, c, clock, pins = kiosk
    lua, thang = basic(f"{CELL}.0012", pins["0012"]), basic(f"{CELL}.0003", pins["0003"])
    cap = usage.READS_PER_MEMBER_DAY

    def send(who: dict, reads: dict) -> int:
        answer = c.post("/_reading", headers=who, json={"reads": reads})
        assert answer.status_code == 200, answer.json
        return answer.json["counted"]

    assert send(lua, {"2026-12-03": {"article:a": cap - 10}}) == cap - 10
    # the same phone replaying its counts gets only what is left of its day, and then nothing
    assert send(lua, {"2026-12-03": {"article:a": 8, "article:b": 8}, "2026-12-02": {"article:a": 3}}) == 10 + 3
    assert send(lua, {"2026-12-03": {"article:b": 1}}) == 0
    assert send(thang, {"2026-12-03": {"article:b": 2}}) == 2  # another member's day is their own
    rows = c.get(f"/{DB}/_all_docs?startkey=%22reading:%22&endkey=%22reading;%22&include_docs=true",
                 headers=ADMIN).json["rows"]
    counts = {r["doc"]["date"]: r["doc"]["counts"] for r in rows}
    assert counts == {"2026-12-02": {"article:a": 3}, "2026-12-03": {"article:a": cap - 2, "article:b": 4}}
    assert month_report(app).reads == cap + 5


def test_a_remembered_phone_is_a_device_record_and_signing_out_on_it_revokes_it(kiosk):
    app, c, clock, pins = kiosk
    own_phone = {"REMOTE_ADDR": "192.168.50.23"}  # on the village Wi-Fi, not the kiosk's own screen
    remembered = c.post("/_pairing/remember", json={"name": f"{CELL}.0003", "pin": pins["0003"], "label": "Máy của anh Thắng"},
                        environ_base=own_phone)
    assert remembered.status_code == 201, remembered.json
    device_id = remembered.json["device_id"]
    assert c.get(f"/{DB}/device:{CELL}:{device_id}", headers=ADMIN).json["revoked"] is False
    assert member(c, "0003")["registered"] is True and month_report(app).installed == 1

    clock.now += timedelta(hours=1)
    phone = {"Authorization": f"Bearer {remembered.json['token']}"}
    assert c.delete("/_session", headers=phone, environ_base=own_phone).status_code == 200  # "sign out" on the phone
    assert c.get(f"/{DB}/_changes", headers=phone, environ_base=own_phone).status_code == 401
    device = c.get(f"/{DB}/device:{CELL}:{device_id}", headers=ADMIN).json
    assert device["revoked"] is True and device["revoked_at"] == "2026-12-03T20:30:00+07:00"
    assert month_report(app).installed == 0


def test_a_phone_replaced_by_a_members_fourth_is_marked_revoked(kiosk):
    app, c, clock, pins = kiosk
    own_phone = {"REMOTE_ADDR": "192.168.50.23"}
    ids = [c.post("/_pairing/remember", json={"name": f"{CELL}.0003", "pin": pins["0003"], "label": f"máy {n}"},
                  environ_base=own_phone).json["device_id"] for n in range(DEVICES_PER_MEMBER + 1)]
    revoked = [c.get(f"/{DB}/device:{CELL}:{i}", headers=ADMIN).json["revoked"] for i in ids]
    assert revoked == [True] + [False] * DEVICES_PER_MEMBER
    assert month_report(app).installed == 1  # the member still has live phones
