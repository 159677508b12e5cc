"""The ownership rule rendered as validate_doc_update (what a CouchDB hub runs) agrees with the native check.

Both run here: the rendered JavaScript in this server's QuickJS engine, exactly as the store
runs any design document's validate_doc_update, over a table of writes by the writers a hub
sees (the server itself, admins, the province, kiosk accounts).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from sync_server.design.engine import Engine
from sync_server.design.validate import refusal
from sync_server.errors import Forbidden
from sync_server.handbook import ownership

CELL_DB = "cell-tq-nh-kh-c01"
DATABASES = [CELL_DB, ownership.HANDBOOK_DB]
WRITERS = [None, ("_admin",), (ownership.PROVINCE_ROLE,), ("kiosk",), ("kiosk", "cell:TQ.NH.KH.C01")]
DOCS = [
    {"_id": "meeting:1", "type": "meeting", "cell": "TQ.NH.KH.C01"},
    {"_id": "meeting:2", "type": "meeting", "cell": "TQ.NH.KH.C02"},
    {"_id": "meeting:3", "type": "meeting"},
    {"_id": "article:1", "type": "article"},
    {"_id": "unit:1", "type": "unit", "cell": "TQ.NH.KH.C01"},
    {"_id": "untyped", "cell": "TQ.NH.KH.C01"},
    {"_id": "untyped2"},
    {"_id": "member:1", "type": "member", "cell": "TQ.NH.KH.C01", "_deleted": True},
    {"_id": "article:2", "type": "article", "_deleted": True},
    {"_id": "_design/x", "views": {}},
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _rendered(engine: Engine, db: str, doc: dict, roles: tuple[str, ...] | None) -> str | None:
    rule = ownership.rules_for(db)
    assert rule is not None
    ddoc = ownership.design_doc(rule)
    user = {"db": db, "name": None, "roles": ["_admin"] if roles is None else list(roles)}
    answer = engine.call(ddoc, {"op": "validate", "fn": "validate_doc_update", "newDoc": doc, "oldDoc": None,
                                "userCtx": user, "secObj": {}})
    if answer == 1:
        return None
    err = refusal(answer["thrown"])
    assert isinstance(err, Forbidden), err
    return err.reason


@pytest.mark.parametrize("db", DATABASES)
def test_rendered_and_native_rules_agree(engine: Engine, db: str) -> None:
    disagreements = []
    for doc, roles in itertools.product(DOCS, WRITERS):
        native = ownership.check(ownership.rules_for(db), doc, roles)
        rendered = _rendered(engine, db, doc, roles)
        # The decision must agree; the wording differs where Python's repr meets JSON.stringify
        # (a missing cell reads None natively, undefined on the hub).
        if (native is None) != (rendered is None):
            disagreements.append((doc["_id"], roles, native, rendered))
    assert not disagreements
    assert any(_rendered(engine, db, doc, ("kiosk",)) for doc in DOCS)  # the table does refuse something


def _stamp(minutes: float) -> str:
    moment = datetime.now(timezone(timedelta(hours=7))) + timedelta(minutes=minutes)
    return moment.replace(microsecond=0).isoformat()


def _checkins() -> list[tuple[str, dict, dict | None, bool]]:
    """(what, new attendance, the revision it replaces, accepted?) for member 0003, around a window of 30/90 min."""
    cell = "TQ.NH.KH.C01"
    base = {"_id": f"attendance:meeting:{cell}:m1:0003", "type": "attendance", "cell": cell,
            "meeting": f"meeting:{cell}:m1", "member": f"member:{cell}:0003", "status": "present"}
    day = (datetime.now(timezone(timedelta(hours=7))) - timedelta(days=3)).date()
    old_day = f"{day.isoformat()}T19:30:00+07:00"
    checked = dict(base, scheduled=old_day, checked_in_at=f"{day.isoformat()}T19:20:00+07:00")
    next_day = (day + timedelta(days=1)).isoformat()
    return [
        ("in the window, synced days later", checked, None, True),
        ("31 minutes early", dict(checked, checked_in_at=f"{day.isoformat()}T18:59:00+07:00"), None, False),
        ("91 minutes late", dict(checked, checked_in_at=f"{day.isoformat()}T21:01:00+07:00"), None, False),
        ("without the meeting's time", dict(base, checked_in_at=old_day), None, False),
        ("a time that is no RFC 3339", dict(checked, checked_in_at=f"{day.isoformat()} 19:30"), None, False),
        ("two minutes ahead of the clock", dict(base, scheduled=_stamp(0), checked_in_at=_stamp(0.5)), None, True),
        ("ten minutes ahead of the clock", dict(base, scheduled=_stamp(10), checked_in_at=_stamp(10)), None, False),
        ("undone that day", dict(checked, status="absent", withdrawn_at=f"{day.isoformat()}T19:25:00+07:00"), checked,
         True),
        ("undone the next day", dict(checked, status="absent", withdrawn_at=f"{next_day}T08:00:00+07:00"), checked,
         False),
        ("undone without withdrawn_at", dict(checked, status="absent"), checked, False),
        ("absent with nothing to undo", dict(checked, status="absent", withdrawn_at=old_day), None, False),
        ("excused by the member", dict(checked, status="excused"), None, False),
    ]


@pytest.mark.parametrize(("roles", "name"), [(("member", "cell:TQ.NH.KH.C01"), "TQ.NH.KH.C01.0003"),
                                             (("member", "secretary", "cell:TQ.NH.KH.C01"), "TQ.NH.KH.C01.0012")])
def test_the_check_in_window_is_the_same_rule_in_both_and_is_settable(engine: Engine, roles: tuple[str, ...],
                                                                      name: str) -> None:
    rule = ownership.rules_for(CELL_DB, checkin=ownership.checkin_window(30, 90, 120))
    assert rule is not None
    ddoc = ownership.design_doc(rule)
    outcomes = []
    for what, doc, old, _accepted in _checkins():
        native = ownership.check(rule, doc, roles, name, old)
        answer = engine.call(ddoc, {"op": "validate", "fn": "validate_doc_update", "newDoc": doc, "oldDoc": old,
                                    "userCtx": {"db": CELL_DB, "name": name, "roles": list(roles)}, "secObj": {}})
        rendered = None if answer == 1 else refusal(answer["thrown"]).reason
        assert native == rendered, what
        outcomes.append((what, native is None))
    if "secretary" in roles:  # the secretary records attendance at any time: no window
        assert all(ok for _, ok in outcomes)
    else:
        assert outcomes == [(what, accepted) for what, _, _, accepted in _checkins()]
