"""Server-wide endpoints: ``/``, ``/_up``, ``/_all_dbs``, ``/_uuids``, ``/_session``."""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qs

from flask import Response, current_app, g, request

from .. import __version__
from ..errors import BadContentType, BadRequest, NotFound, Unauthorized
from ..security.auth import require_admin
from .http import flag, integer, json_param, parse_json, raw_body, respond, server
from .pairing import signed_out

# The CouchDB API version whose behaviour this server follows.
COUCHDB_VERSION = "3.3.3"
# CouchDB's [uuids] max_count.
MAX_UUIDS = 1000


def root() -> Response:
    """``GET /``: who we are. The uuid is stable for the life of the data directory."""
    return respond({
        "couchdb": "Welcome", "version": COUCHDB_VERSION, "uuid": server().uuid,
        "features": ["access-ready"],
        "vendor": {"name": "party-handbook-sync", "version": __version__},
    })


def up() -> Response:
    """``GET /_up``: health check."""
    return respond({"status": "ok"})


def all_dbs() -> Response:
    """``GET /_all_dbs``: admin only, as in CouchDB 3."""
    require_admin(g.user)
    return respond(_db_names())


DBS_INFO_KEYS = 100  # CouchDB's [chttpd] max_db_number_for_dbs_info_req


def dbs_info() -> Response:
    """``GET /_dbs_info`` (the parameters of ``_all_dbs``) and ``POST /_dbs_info`` (``{"keys": [...]}``):
    each database's info, or ``not_found``; admin only, as in CouchDB 3."""
    require_admin(g.user)
    if request.method == "POST":
        body = parse_json(raw_body())
        if not isinstance(body, dict) or "keys" not in body:
            raise BadRequest("`keys` member must exist.")
        if not isinstance(body["keys"], list):
            raise BadRequest("`keys` member must be an array.")
        if len(body["keys"]) > DBS_INFO_KEYS:
            raise BadRequest("too_many_keys")
        names = body["keys"]
    else:
        names = _db_names()
    rows = []
    for name in names:
        try:
            info = server().get(name).info() if isinstance(name, str) else None
        except (NotFound, BadRequest):  # missing, or not a database name at all
            info = None
        rows.append({"key": name, "info": info} if info is not None else {"key": name, "error": "not_found"})
    return respond(rows)


def _db_names() -> list[str]:
    """The database names ``_all_dbs`` and ``GET /_dbs_info`` list, with their range, skip and limit."""
    descending = flag("descending")
    start = json_param("start_key", json_param("startkey"))
    end = json_param("end_key", json_param("endkey"))
    names = server().all_dbs()[::-1] if descending else server().all_dbs()
    if start is not None:
        names = [n for n in names if (n <= start if descending else n >= start)]
    if end is not None:
        names = [n for n in names if (n >= end if descending else n <= end)]
    skip, limit = integer("skip", 0) or 0, integer("limit")
    return names[skip:None if limit is None else skip + limit]


class SequentialUuids:
    """CouchDB's default ``sequential`` uuids (couch_uuids.erl): a random 26-hex prefix and a
    6-hex counter that grows by a random step, so that ids sort (and index) in creation order."""

    _LIMIT = 0xFFF000  # past this the counter starts over under a new prefix

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prefix, self._seq = secrets.token_hex(13), self._step()

    @staticmethod
    def _step() -> int:
        return secrets.randbelow(0xFFE) + 1

    def next(self) -> str:
        with self._lock:
            self._seq += self._step()
            if self._seq >= self._LIMIT:
                self._prefix, self._seq = secrets.token_hex(13), self._step()
            return f"{self._prefix}{self._seq:06x}"


_UUIDS = SequentialUuids()


def uuids() -> Response:
    """``GET /_uuids?count=N``: never cached, as CouchDB marks them."""
    count = integer("count", 1, minimum=1) or 1
    if count > MAX_UUIDS:
        raise BadRequest("count parameter too large")
    made = [_UUIDS.next() for _ in range(count)]
    return respond({"uuids": made}, headers={
        "Cache-Control": "must-revalidate, no-cache", "Pragma": "no-cache",
        "Expires": "Mon, 01 Jan 1990 00:00:00 GMT", "ETag": f'"{made[-1]}"'})


def session_get() -> Response:
    """``GET /_session``: the current user context."""
    method = g.get("auth_method")
    return respond({"ok": True, "userCtx": g.user.to_json(),
                    "info": {"authentication_handlers": ["cookie", "default"], **({"authenticated": method} if method else {})}})


def session_post() -> Response:
    """``POST /_session``: name and password (JSON or form) for an ``AuthSession`` cookie."""
    data = raw_body()
    if request.mimetype == "application/x-www-form-urlencoded":
        form = {k: v[0] for k, v in parse_qs(data.decode("utf-8", "replace")).items()}
    elif request.mimetype == "application/json":
        form = parse_json(data)
    else:  # as CouchDB: a body of any other type (or none named) is not read as a password
        raise BadContentType("Content-Type must be 'application/x-www-form-urlencoded' or 'application/json'")
    if not isinstance(form, dict) or not isinstance(form.get("name"), str) or not isinstance(form.get("password"), str):
        raise BadRequest("name and password are required")
    authenticator = current_app.extensions["authenticator"]
    audit = current_app.extensions["audit"]
    try:
        user = authenticator.check_password(form["name"], form["password"], request.remote_addr)
    except Unauthorized:
        audit.record("sign_in_failed", name=form["name"], via="session", remote=request.remote_addr)
        raise
    audit.record("sign_in", name=user.name, via="session", remote=request.remote_addr)
    g.activity_user = user  # counted as the member's activity (handbook/usage.py)
    response = respond({"ok": True, "name": user.name, "roles": list(user.roles)})
    set_session_cookie(response, user.name or "")
    return response


def session_delete() -> Response:
    """``DELETE /_session``: forget the cookie; a phone signing out with its device token is forgotten too."""
    if g.get("auth_method") == "device":
        signed_out(request.headers.get("Authorization", "")[7:].strip())
    response = respond({"ok": True})
    response.set_cookie("AuthSession", "", max_age=0, path="/", httponly=True)
    return response


def set_session_cookie(response: Response, name: str) -> None:
    authenticator = current_app.extensions["authenticator"]
    value = authenticator.make_cookie(name, int(time.time()))
    response.set_cookie("AuthSession", value, path="/", httponly=True, samesite="Lax")


def sync_status() -> Response:
    """``GET /_sync/status``: the kiosk's sync status (no credentials in it)."""
    from ..handbook.policy import quarantined_count
    from ..sync_status import SyncStatus, summary, waiting_up

    settings = current_app.config["SETTINGS"]
    stored = SyncStatus(server().data_dir).read()
    quarantined = quarantined_count(server(), settings.signing.quarantine_db)
    return respond(summary(stored, waiting_up(server(), stored, settings.sync.cell_db), quarantined))
