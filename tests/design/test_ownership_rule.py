"""The ownership rule rendered as validate_doc_update (what a CouchDB hub runs) agrees with the native check.

Both run here: the rendered JavaScript in this server's QuickJS engine, exactly as the store
runs any design document's validate_doc_update, over a table of writes by the writers a hub
sees (the server itself, admins, the province, kiosk accounts).
"""

from __future__ import annotations

import itertools

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
