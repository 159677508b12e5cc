"""Who may do what at a kiosk: members, secretaries, PINs, lockout, per-cell reading (issue 5)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from accounts import ADMIN, account, basic, open_cells

from sync_server.app import create_app
from sync_server.security import auth
from sync_server.settings import Settings

CELL, OTHER = "TQ.NH.KH.C01", "TQ.NH.KH.C02"
DB, OTHER_DB = "cell-tq-nh-kh-c01", "cell-tq-nh-kh-c02"


MEMBER = basic(f"{CELL}.001", "2468")
NEIGHBOUR = basic(f"{CELL}.002", "1357")
SECRETARY = basic(f"{CELL}.009", "9090")
OUTSIDER = basic(f"{OTHER}.001", "1111")
MEETING_ID = f"meeting:{CELL}:00000000-0000-4000-8000-000000000001"


@pytest.fixture
def client(tmp_path):
    app = create_app(Settings().replace("server", data_dir=str(tmp_path), admin="admin:secret"))
    c = app.test_client()
    open_cells(c, {DB: CELL, OTHER_DB: OTHER},
               [account(f"{CELL}.001", "2468", "member", f"cell:{CELL}"),
                account(f"{CELL}.002", "1357", "member", f"cell:{CELL}"),
                account(f"{CELL}.009", "9090", "secretary", "member", f"cell:{CELL}"),
                account(f"{OTHER}.001", "1111", "member", f"cell:{OTHER}")], roles=("province",))
    meeting = {"_id": MEETING_ID, "type": "meeting", "cell": CELL, "kind": "regular", "status": "held",
               "scheduled": "2026-12-03T19:30:00+07:00"}
    assert c.put(f"/{DB}/{MEETING_ID}", json=meeting, headers=SECRETARY).status_code == 201
    yield c
    app.extensions["sync_server"].close()


def attendance(member_no: str, meeting: str = MEETING_ID, **fields: str) -> dict:
    """A check-in to the fixture's meeting (2026-12-03 19:30 at +07:00), ten minutes after it began."""
    return {"_id": f"attendance:{meeting}:{member_no}", "type": "attendance", "cell": CELL,
            "meeting": meeting, "member": f"member:{CELL}:{member_no}", "status": "present",
            "scheduled": "2026-12-03T19:30:00+07:00", "checked_in_at": "2026-12-03T19:40:00+07:00", **fields}


def at(minutes_from_now: float) -> str:
    """A time this many minutes from now, as a phone at +07:00 writes it."""
    moment = datetime.now(timezone(timedelta(hours=7))) + timedelta(minutes=minutes_from_now)
    return moment.replace(microsecond=0).isoformat()


def meeting_at(client, scheduled: str, status: str = "scheduled") -> str:
    meeting_id = f"meeting:{CELL}:{uuid.uuid4()}"
    doc = {"_id": meeting_id, "type": "meeting", "cell": CELL, "kind": "regular", "status": status,
           "scheduled": scheduled}
    assert client.put(f"/{DB}/{meeting_id}", json=doc, headers=SECRETARY).status_code == 201
    return meeting_id


def put(client, doc: dict, who: dict[str, str]):
    current = client.get(f"/{DB}/{doc['_id']}", headers=ADMIN)
    body = dict(doc, _rev=current.json["_rev"]) if current.status_code == 200 else doc
    return client.put(f"/{DB}/{doc['_id']}", json=body, headers=who)


def test_a_check_in_made_offline_inside_the_window_is_accepted_later(client):
    # the fixture's meeting began hours ago (or long ago): the phone checked in ten minutes in, synced now
    response = put(client, attendance("001"), MEMBER)
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(("minutes", "why"), [(-61, "check-in is open from 60 minutes before the meeting to 240"),
                                               (241, "check-in is open from 60 minutes before")])
def test_a_check_in_outside_the_window_is_refused(client, minutes, why):
    scheduled = at(-600)  # began ten hours ago
    past = meeting_at(client, scheduled)
    response = put(client, attendance("001", past, scheduled=scheduled, checked_in_at=at(-600 + minutes)), MEMBER)
    assert response.status_code == 403 and why in response.json["reason"]
    inside = put(client, attendance("001", past, scheduled=scheduled, checked_in_at=at(-600 + minutes * 59 // 60)), MEMBER)
    assert inside.status_code == 201, inside.json  # a minute or so inside the window


def test_a_check_in_from_the_future_or_for_another_time_is_refused(client):
    scheduled = at(30)
    soon = meeting_at(client, scheduled)
    ahead = put(client, attendance("001", soon, scheduled=scheduled, checked_in_at=at(20)), MEMBER)
    assert ahead.status_code == 403 and "in the future" in ahead.json["reason"]
    skewed = put(client, attendance("001", soon, scheduled=scheduled, checked_in_at=at(2)), MEMBER)
    assert skewed.status_code == 201, skewed.json  # a phone a little ahead of the kiosk is fine
    # the window is judged against the meeting's own time: a check-in naming another time is refused
    later = meeting_at(client, at(600))
    forged = put(client, attendance("001", later, scheduled=at(10), checked_in_at=at(0)), MEMBER)
    assert forged.status_code == 403 and "the meeting is scheduled at" in forged.json["reason"]
    scheduled = at(10)
    cancelled = meeting_at(client, scheduled, status="cancelled")
    refused = put(client, attendance("001", cancelled, scheduled=scheduled, checked_in_at=at(0)), MEMBER)
    assert refused.status_code == 403 and "cancelled" in refused.json["reason"]


def test_a_member_undoes_their_check_in_that_day_and_not_later(client):
    day = (datetime.now(timezone(timedelta(hours=7))) - timedelta(days=2)).date().isoformat()  # offline since
    meeting = meeting_at(client, f"{day}T19:30:00+07:00")
    checked_in = attendance("001", meeting, scheduled=f"{day}T19:30:00+07:00", checked_in_at=f"{day}T19:40:00+07:00")
    assert put(client, checked_in, MEMBER).status_code == 201
    refused = put(client, dict(checked_in, status="absent", withdrawn_at=f"{day}T19:40:00+07:00"[:10].replace(
        day, (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()) + "T08:00:00+07:00"), MEMBER)
    assert refused.status_code == 403 and "undone on the day it was made" in refused.json["reason"]
    undone = put(client, dict(checked_in, status="absent", withdrawn_at=f"{day}T19:45:00+07:00"), MEMBER)
    assert undone.status_code == 201, undone.json
    assert client.get(f"/{DB}/{checked_in['_id']}", headers=ADMIN).json["status"] == "absent"
    again = put(client, dict(checked_in, checked_in_at=f"{day}T19:50:00+07:00"), MEMBER)
    assert again.status_code == 201, again.json  # and checks in again while it is open


@pytest.mark.parametrize("fields", [{"status": "absent", "withdrawn_at": "2026-12-03T19:45:00+07:00"},
                                    {"status": "excused"}])
def test_a_member_writes_absent_only_as_an_undo_and_never_excused(client, fields):
    response = put(client, attendance("001", **fields), MEMBER)
    assert response.status_code == 403
    assert "undo their own check-in" in response.json["reason"] or "the secretary records" in response.json["reason"]


def test_the_secretary_marks_members_without_a_phone_at_any_time(client):
    marked = {"_id": f"attendance:{MEETING_ID}:002", "type": "attendance", "cell": CELL, "meeting": MEETING_ID,
              "member": f"member:{CELL}:002", "status": "present", "marked_by": f"member:{CELL}:009",
              "marked_at": at(0)}
    assert put(client, marked, SECRETARY).status_code == 201
    assert put(client, dict(marked, status="absent"), SECRETARY).status_code == 201
    # a member cannot mark a neighbour, inside the window or not
    assert put(client, attendance("002"), MEMBER).status_code == 403


def test_pin_is_stored_with_scrypt(client):
    stored = client.get(f"/_users/org.couchdb.user:{CELL}.001", headers=ADMIN).json
    assert stored["password_scheme"] == "scrypt" and "pin" not in stored and stored["scrypt_n"] >= 2**14


def test_member_checks_in_only_themself(client):
    own = attendance("001")
    assert client.put(f"/{DB}/{own['_id']}", json=own, headers=MEMBER).status_code == 201
    theirs = attendance("002")
    response = client.put(f"/{DB}/{theirs['_id']}", json=theirs, headers=MEMBER)
    assert response.status_code == 403 and "only their own attendance" in response.json["reason"]
    assert client.get(f"/{DB}/{theirs['_id']}", headers=ADMIN).status_code == 404


def test_only_the_secretary_writes_meetings_and_minutes(client):
    minutes = {"_id": f"minutes:{MEETING_ID}", "type": "minutes", "cell": CELL, "meeting": MEETING_ID,
               "text": "Chi bộ thống nhất kế hoạch tháng 12.", "written_at": "2026-12-03T21:00:00+07:00"}
    refused = client.put(f"/{DB}/{minutes['_id']}", json=minutes, headers=MEMBER)
    assert refused.status_code == 403 and "writes only attendance and feedback" in refused.json["reason"]
    assert client.put(f"/{DB}/{minutes['_id']}", json=minutes, headers=SECRETARY).status_code == 201


def test_members_do_not_delete(client):
    rev = client.get(f"/{DB}/{MEETING_ID}", headers=MEMBER).json["_rev"]
    response = client.delete(f"/{DB}/{MEETING_ID}?rev={rev}", headers=MEMBER)
    assert response.status_code == 403 and "do not delete" in response.json["reason"]


def test_nobody_at_the_kiosk_writes_articles_or_units(client):
    client.put("/handbook", headers=ADMIN)
    unit = {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang", "level": "province", "parent": None}
    for who in (MEMBER, SECRETARY):
        assert client.put("/handbook/unit:TQ", json=unit, headers=who).status_code == 403


def test_another_cells_member_reads_and_writes_nothing_here(client):
    for path in (f"/{DB}/{MEETING_ID}", f"/{DB}/_all_docs", f"/{DB}/_changes"):
        assert client.get(path, headers=OUTSIDER).status_code == 403, path
    response = client.post(f"/{DB}/_bulk_get", json={"docs": [{"id": MEETING_ID}]}, headers=OUTSIDER)
    assert response.status_code == 403
    own = dict(attendance("001"), cell=OTHER)
    assert client.post(f"/{DB}/_bulk_docs", json={"docs": [own]}, headers=OUTSIDER).status_code == 403
    assert client.get(f"/{DB}/_all_docs", headers=MEMBER).status_code == 200


def test_five_wrong_pins_lock_the_account_for_a_growing_time(client, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    wrong = basic(f"{CELL}.001", "0000")
    for _ in range(auth.MAX_TRIES):
        assert client.get("/_session", headers=wrong).status_code == 401
    locked = client.get("/_session", headers=MEMBER)  # even the right PIN, while locked
    assert locked.status_code == 401 and "locked for 30 s" in locked.json["reason"]
    clock[0] += 31
    for _ in range(auth.MAX_TRIES):  # the guessing goes on: the second lock lasts twice as long
        client.get("/_session", headers=wrong)
    clock[0] += 31
    assert "locked for 29 s" in client.get("/_session", headers=MEMBER).json["reason"]
    clock[0] += 30
    assert client.get("/_session", headers=MEMBER).json["userCtx"]["name"] == f"{CELL}.001"
    assert client.get("/_session", headers=wrong).status_code == 401  # a success starts the count afresh
    assert client.get("/_session", headers=MEMBER).status_code == 200


def test_a_bad_pin_is_refused(client):
    doc = account(f"{CELL}.003", "12", "member", f"cell:{CELL}")
    response = client.put(f"/_users/{doc['_id']}", json=doc, headers=ADMIN)
    assert response.status_code == 400 and "4 to 8 digits" in response.json["reason"]


def test_a_new_pin_or_a_deleted_account_revokes_the_members_sessions(client):
    signed_in = client.post("/_session", json={"name": f"{CELL}.001", "password": "2468"})
    assert signed_in.status_code == 200
    cookie = {"Cookie": "AuthSession=" + signed_in.headers["Set-Cookie"].split("AuthSession=")[1].split(";")[0]}
    assert client.get(f"/{DB}/{MEETING_ID}", headers=cookie).status_code == 200

    doc = client.get(f"/_users/org.couchdb.user:{CELL}.001", headers=ADMIN).json
    doc["pin"] = "8642"  # the kiosk admin resets the PIN (a lost phone, a PIN seen by others)
    assert client.put(f"/_users/{doc['_id']}", json=doc, headers=ADMIN).status_code == 201
    assert client.get("/_session", headers=cookie).json["userCtx"]["name"] is None
    assert client.get(f"/{DB}/{MEETING_ID}", headers=cookie).status_code == 401

    again = client.post("/_session", json={"name": f"{CELL}.002", "password": "1357"})
    cookie = {"Cookie": "AuthSession=" + again.headers["Set-Cookie"].split("AuthSession=")[1].split(";")[0]}
    assert client.get(f"/{DB}/{MEETING_ID}", headers=cookie).status_code == 200
    rev = client.get(f"/_users/org.couchdb.user:{CELL}.002", headers=ADMIN).json["_rev"]
    assert client.delete(f"/_users/org.couchdb.user:{CELL}.002?rev={rev}", headers=ADMIN).status_code == 200
    assert client.get(f"/{DB}/{MEETING_ID}", headers=cookie).status_code == 401


def test_a_pin_changed_by_another_process_ends_the_sessions_within_a_second(client, tmp_path):
    """Accounts are kept in memory between requests (a syncing phone sends dozens a minute); a new PIN
    written by another process (``sync-server members`` beside the running kiosk) still ends the
    member's sessions, once the kiosk has looked at ``_users`` again (at most a second later)."""
    from sync_server.store import Server
    from sync_server.store.database import CROSS_PROCESS_POLL

    signed_in = client.post("/_session", json={"name": f"{CELL}.001", "password": "2468"})
    cookie = {"Cookie": "AuthSession=" + signed_in.headers["Set-Cookie"].split("AuthSession=")[1].split(";")[0]}
    assert client.get(f"/{DB}/{MEETING_ID}", headers=cookie).status_code == 200  # the account is now cached
    other = Server(str(tmp_path))  # another process's view of the same files
    try:
        users = other.get("_users")
        doc = users.get(f"org.couchdb.user:{CELL}.001")
        assert "ok" in users.bulk_docs([{**doc, "derived_key": "0" * 64, "salt": "another"}])[0]  # a new secret: a new salt
    finally:
        other.close()
    deadline = time.monotonic() + CROSS_PROCESS_POLL + 5
    while client.get(f"/{DB}/{MEETING_ID}", headers=cookie).status_code == 200:
        assert time.monotonic() < deadline, "the old session still works"
        time.sleep(0.1)
    assert client.get(f"/{DB}/{MEETING_ID}", headers=cookie).status_code == 401


def test_a_requests_roles_do_not_outlive_it_on_the_same_thread(client, tmp_path):
    from sync_server.security.auth import current_name, current_roles

    assert client.get(f"/{DB}/{MEETING_ID}", headers=MEMBER).status_code == 200
    assert current_roles.get() is None and current_name.get() is None
