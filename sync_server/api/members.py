"""``/_members``: the kiosk admin manages its own cell's members (the "Đảng viên" screen).

- ``GET /_members``: ``{"cell", "members": [...]}`` (by name; account state, never a secret)
- ``POST /_members``: add one (``member_no``, ``name``, optional ``born``, ``gender``,
  ``joined``, ``smartphone``)
- ``POST /_members/_import``: a register CSV (``text/csv``), all of it or nothing
- ``POST /_members/{no}/pin``: a new PIN, in the answer only (and the lockout lifted)
- ``POST /_members/{no}/status``: ``{"status": "active" | "moved" | "inactive"}``
- ``POST /_members/{no}/secretary``: name the cell's secretary

A kiosk admin works on the cell of its ``cell:`` role; the server admin names one with
``?cell=`` (else the kiosk's own, ``sync.cell_db``). Everyone else: 401/403. The rules
themselves are in ``handbook/members.py``, shared with ``sync-server member``.
"""

from __future__ import annotations

from flask import Response, current_app, g, request

from ..errors import BadRequest, Forbidden, Unauthorized
from ..handbook.members import Desk
from ..handbook.ownership import KIOSK_ADMIN_ROLE, cell_of_db
from .http import json_body, raw_body, respond, server, settings


def _desk() -> Desk:
    user = g.user
    cells = [r[5:] for r in user.roles if r.startswith("cell:")]
    asked = request.args.get("cell")
    if user.is_admin:
        cell = asked or (cell_of_db(settings().sync.cell_db) if settings().sync.cell_db else None)
        if cell is None and current_app.config.get("SAMPLE_ACCOUNTS"):
            from ..handbook.sample import CELL

            cell = CELL
        if cell is None:
            raise BadRequest("name the cell: ?cell=<cell code> (this kiosk has no sync.cell_db)")
    elif KIOSK_ADMIN_ROLE in user.roles and len(cells) == 1:
        cell = cells[0]
        if asked and asked != cell:
            raise Forbidden(f"you manage the members of cell {cell} only")
    elif user.name is None:
        raise Unauthorized("Sign in as the kiosk admin to manage members.")
    else:
        raise Forbidden("Only the kiosk admin of a cell manages its members.")
    auth = current_app.extensions["authenticator"]
    return Desk(server(), cell, user.name or "(admin)", current_app.extensions["audit"],
                unlock=auth.unlock, locked_for=auth.locked_for)


def list_members() -> Response:
    desk = _desk()
    return respond({"cell": desk.cell, "members": desk.list()})


def add() -> Response:
    desk = _desk()
    return respond({"ok": True, "member": desk.add(json_body())}, 201)


def import_register() -> Response:
    desk = _desk()
    if request.mimetype == "application/json":
        text = json_body().get("csv")
    elif request.mimetype in ("text/csv", "text/plain"):
        text = raw_body().decode("utf-8", errors="strict") if raw_body() else ""
    else:
        raise BadRequest("send the register as text/csv (or JSON {\"csv\": ...})", error="bad_content_type")
    if not isinstance(text, str):
        raise BadRequest("csv must be the register's text")
    return respond(desk.import_csv(text), 201)


def give_pin(number: str) -> Response:
    desk = _desk()
    body = json_body(require_type=False) if request.content_length else {}
    pin = body.get("pin")
    if pin is not None and not isinstance(pin, str):
        raise BadRequest("pin must be a string of 4 to 8 digits")
    result = desk.give_pin(number, pin)
    response = respond(result, 201)
    response.headers["Cache-Control"] = "no-store"
    return response


def set_status(number: str) -> Response:
    desk = _desk()
    status = json_body().get("status")
    if not isinstance(status, str):
        raise BadRequest("status is required")
    return respond(desk.set_status(number, status))


def name_secretary(number: str) -> Response:
    return respond(_desk().name_secretary(number))
