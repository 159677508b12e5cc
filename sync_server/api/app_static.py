"""The web app (``kiosk_client/static``) served at ``/_app/``, as CouchDB serves Fauxton at ``/_utils/``.

Files are read from the package, never from node_modules: the kiosk runs without npm.
Every response is revalidated (``no-cache`` with an ETag): the service worker keeps
the offline copy, so the HTTP cache must never hold a stale one beside it.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from ..errors import NotFound
from ..handbook.ownership import HANDBOOK_DB, cell_of_db
from .http import respond
from .server import root as couch_root

STATIC = Path(__file__).resolve().parent.parent.parent / "kiosk_client" / "static"
# Explicit types: Python's mimetypes table differs between systems (.js, .webmanifest).
TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json", ".css": "text/css; charset=utf-8",
    ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml", ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
PREFIX = "/_app/"


def root() -> BaseResponse:
    """``GET /``: a browser (preferring HTML) goes to the app; CouchDB clients get the welcome JSON."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html" \
            and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]:
        return redirect(PREFIX, 302)
    return couch_root()


def serve(rest: list[str]) -> BaseResponse:
    """``GET /_app/<path>``: a file of the app; ``/_app`` itself redirects so relative URLs work."""
    if not rest and not request.path.endswith("/"):
        return redirect(PREFIX, 301)
    if rest == ["sample.json"]:
        return _sample()
    if rest == ["kiosk.json"]:
        return _kiosk()
    path = _file(rest or ["index.html"])
    response = Response(path.read_bytes(), content_type=TYPES.get(path.suffix, "application/octet-stream"))
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if path.name == "sw.js":
        response.headers["Service-Worker-Allowed"] = PREFIX
    response.add_etag()
    return response.make_conditional(request)


def _file(parts: list[str]) -> Path:
    """The file under STATIC; anything outside it (``..``, hidden names) is missing."""
    if any(not p or p.startswith(".") or "\\" in p for p in parts):
        raise NotFound("missing")
    path = STATIC.joinpath(*parts).resolve()
    if not path.is_file() or STATIC not in path.parents:
        raise NotFound("missing")
    return path


def _sample() -> Response:
    """The demo accounts, only from a server started with ``--sample`` (or ``server.sample_db``)."""
    if not current_app.config.get("SAMPLE_ACCOUNTS"):
        raise NotFound("missing")
    from ..handbook.sample import CELL, CELL_DB, DEMO_KIOSK_ADMIN, DEMO_MEMBER, DEMO_SECRETARY, HANDBOOK_DB

    return respond({"sample": True, "cell": CELL, "cell_db": CELL_DB, "handbook_db": HANDBOOK_DB,
                    "member": DEMO_MEMBER, "secretary": DEMO_SECRETARY, "kiosk_admin": DEMO_KIOSK_ADMIN})


def _kiosk() -> Response:
    """The cell this kiosk serves (``sync.cell_db``; on a sample server without one, the sample's cell).

    The app fixes the cell part of the member code on its sign-in and pairing forms, so a
    member types only their number. 404 when the kiosk has no cell configured.
    """
    sync = current_app.config["SETTINGS"].sync
    cell = cell_of_db(sync.cell_db) if sync.cell_db else None
    if cell is not None:
        found = {"cell": cell, "cell_db": sync.cell_db, "handbook_db": sync.handbook_db or HANDBOOK_DB}
    elif current_app.config.get("SAMPLE_ACCOUNTS"):
        from ..handbook.sample import CELL, CELL_DB
        from ..handbook.sample import HANDBOOK_DB as SAMPLE_HANDBOOK_DB

        found = {"cell": CELL, "cell_db": CELL_DB, "handbook_db": sync.handbook_db or SAMPLE_HANDBOOK_DB}
    else:
        raise NotFound("missing")
    server = current_app.config["SETTINGS"].server
    found["screen_idle_seconds"] = server.screen_idle_seconds
    found["checkin_opens_minutes"] = server.checkin_opens_minutes  # the app says when check-in opens and closes
    found["checkin_closes_minutes"] = server.checkin_closes_minutes
    tls = current_app.config.get("TLS")
    if server.public_name and tls:  # the address that works offline on a phone (#19)
        found["app_url"] = f"https://{server.public_name}:{tls['port']}/_app/"
    response = respond(found)
    response.headers["Cache-Control"] = "no-cache"
    return response
