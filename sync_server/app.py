"""The Flask application factory: one Server, one router, one error handler."""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from .api import router
from .api.http import compress_response, respond
from .api.server import set_session_cookie
from .errors import CouchError, NotFound, RequestTooLarge, Unauthorized
from .handbook.policy import open_store
from .handbook.usage import Usage
from .security.audit import audit_for
from .security.auth import ADMIN_PARTY, ANONYMOUS, USER_PREFIX, Authenticator, User, current_name, current_roles
from .security.pairing import Pairing
from .settings import Settings
from .store import Server
from .store.database import CROSS_PROCESS_POLL

log = logging.getLogger(__name__)
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "COPY", "OPTIONS", "PATCH", "TRACE", "CONNECT"]


def create_app(settings: Settings, server: Server | None = None) -> Flask:
    """Build the WSGI app for one data directory.

    :param server: an already open store (tests); opened from settings otherwise.
    """
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    store = server or open_store(settings)
    app.extensions["sync_server"] = store
    app.extensions["audit"] = audit_for(store.data_dir)
    app.extensions["pairing"] = Pairing(store.data_dir)
    app.extensions["usage"] = Usage(store, delay=settings.server.usage_delay)
    app.extensions["authenticator"] = Authenticator(settings.server.admin, store.secret,
                                                    settings.couchdb.session_timeout, _user_lookup(store))
    app.add_url_rule("/", "couch", router.dispatch, methods=_METHODS)
    app.url_map.converters["anything"] = _Anything
    app.add_url_rule("/<anything:_rest>", "couch_path", lambda _rest: router.dispatch(), methods=_METHODS)
    app.before_request(_authenticate)
    app.after_request(_finish)
    app.after_request(_note_activity)
    app.teardown_request(_forget_user)
    app.register_error_handler(CouchError, _couch_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _user_lookup(store: Server) -> Callable[[str], dict | None]:
    """Find an account document in ``_users``: a request with a session cookie (every request of a
    syncing phone) needs it, so accounts are kept in memory while ``_users`` does not change.

    A write to ``_users`` by this process (a new PIN, a deleted account) empties the cache at once;
    one by another process (``sync-server members``) is seen within ``CROSS_PROCESS_POLL`` seconds,
    by one look at its sequence. Callers must not change the document they get.
    """
    cache: dict[str, dict | None] = {}
    state: dict[str, Any] = {"db": None, "seq": -1, "checked": 0.0, "generation": 0}
    lock = threading.Lock()

    def forget(_db: object = None) -> None:
        with lock:
            cache.clear()
            state["checked"] = 0.0
            state["generation"] += 1

    def lookup(name: str) -> dict | None:
        try:
            db = store.get("_users") if store.exists("_users") else None
        except NotFound:
            db = None
        if db is None:
            return None
        with lock:
            fresh = state["db"] is db and time.monotonic() - state["checked"] < CROSS_PROCESS_POLL
            if fresh and name in cache:
                return cache[name]
        if not fresh:
            seq = db.update_seq
            with lock:
                if state["db"] is not db:
                    db.on_change(forget)
                if state["db"] is not db or state["seq"] != seq:
                    cache.clear()
                    state["generation"] += 1
                state.update(db=db, seq=seq, checked=time.monotonic())
        generation = state["generation"]
        try:
            doc: dict | None = db.get(USER_PREFIX + name)
        except NotFound:
            doc = None
        with lock:
            if state["generation"] == generation:  # no write came between: what was read is current
                if len(cache) > 10_000:
                    cache.clear()
                cache[name] = doc
        return doc

    return lookup


class _Anything(BaseConverter):
    """Any path, newlines included: document ids may hold any character (the router decodes)."""

    regex = r"[\s\S]+"
    part_isolating = False


def _authenticate() -> None:
    """Set ``g.user`` from HTTP basic auth or the ``AuthSession`` cookie."""
    auth: Authenticator = current_app.extensions["authenticator"]
    g.user = ADMIN_PARTY if auth.admin_party else ANONYMOUS
    current_roles.set(g.user.roles)
    current_name.set(None)
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            name, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return _bad_auth()
        try:
            g.user, g.auth_method = (auth.check_password(name, password, request.remote_addr) if not auth.admin_party
                                     else User(name, ("_admin",))), "default"
        except Unauthorized:
            current_app.extensions["audit"].record("sign_in_failed", name=name, via="basic",
                                                   remote=request.remote_addr)
            raise
        current_roles.set(g.user.roles)
        current_name.set(g.user.name)
        return None
    if header.lower().startswith("bearer "):
        return _device(auth, header[7:].strip())
    cookie = request.cookies.get("AuthSession")
    if cookie and not auth.admin_party:
        found = auth.read_cookie(cookie, int(time.time()))
        if found:
            g.user, g.auth_method = found[0], "cookie"
            current_roles.set(g.user.roles)
            current_name.set(g.user.name)
            g.refresh_cookie = time.time() - found[1] > auth.session_timeout / 2
    return None


def _device(auth: Authenticator, token: str) -> None:
    """A paired phone's device token: the member it was paired for, unless revoked."""
    member = current_app.extensions["pairing"].member_of(token, auth.binding)
    user = auth.user_named(member) if member else None
    if user is None:
        raise Unauthorized("This device is not paired with the kiosk (or was revoked): pair it again.")
    g.user, g.auth_method = user, "device"
    current_roles.set(user.roles)
    current_name.set(user.name)


def _forget_user(_exc: BaseException | None = None) -> None:
    """The request is over: writes made later on this thread (a job, the sample) are the server's own."""
    current_roles.set(None)
    current_name.set(None)


def _bad_auth() -> None:
    raise Unauthorized("Authorization header is not valid base64 of name:password")


_request_ids = itertools.count(int.from_bytes(secrets.token_bytes(5), "big"))


def _request_id() -> str:
    """10 hex digits, as CouchDB's; a counter from a random start (one system call per process, not per request)."""
    return f"{next(_request_ids) & 0xFFFFFFFFFF:010x}"


def _finish(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "must-revalidate")
    response.headers["Server"] = "party-handbook-sync (CouchDB 3 API)"
    # as CouchDB: one per request, for logs; the client's own when it sends one (at most 64 characters)
    response.headers["X-Couch-Request-ID"] = request.headers.get("X-Couch-Request-ID", "")[:64] or _request_id()
    response.headers["X-CouchDB-Body-Time"] = "0"
    if g.get("refresh_cookie") and g.user.name:
        set_session_cookie(response, g.user.name)
    return compress_response(response)


def _note_activity(response: Response) -> Response:
    """A member's request that went through: registered, and active today (handbook/usage.py)."""
    if response.status_code < 400:
        try:
            current_app.extensions["usage"].active(g.get("activity_user") or g.get("user"))
        except Exception:  # usage is counted, never a reason to fail the member's request
            log.exception("usage not recorded")
    return response


def _couch_error(exc: CouchError) -> Response:
    headers = {}
    if exc.status == 401 and request.headers.get("Authorization", "").lower().startswith("basic"):
        headers["WWW-Authenticate"] = 'Basic realm="server"'
    return respond(exc.to_json(), exc.status, headers)


def _http_error(exc: HTTPException) -> Response:
    if exc.code == 413:
        return _couch_error(RequestTooLarge())
    err = CouchError(exc.description or exc.name, error=(exc.name or "error").lower().replace(" ", "_"))
    return respond(err.to_json(), exc.code or 500)


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error")
    return respond(CouchError(f"{type(exc).__name__}: {exc}"[:200]).to_json(), 500)
