"""``/{db}/_design/{ddoc}/_view/{view}`` (GET, POST) and ``/{db}/_view_cleanup``: sync_server/design/views.py answers."""

from __future__ import annotations

from flask import Response, g, request

from ..design import collation, views
from ..errors import Gone, NotFound
from ..security.auth import require_admin, require_db_admin
from ..store import viewindex
from .access import open_db
from .http import json_body, respond


def view(name: str, ddoc: str, view_name: str) -> Response:
    """Query a view; a POST body may carry ``keys`` and any query parameter."""
    db = open_db(name)
    body = json_body() if request.method == "POST" else None
    params = views.parse_params(request.args.to_dict(), body)

    def load_doc(doc_id: str, rev: str | None) -> dict | None:
        try:
            return db.get(doc_id, rev, conflicts=bool(params.get("conflicts")),
                          attachments_=bool(params.get("attachments")))
        except NotFound:
            return None

    return respond(views.query(db, ddoc, view_name, params, load_doc))


def view_cleanup(name: str) -> Response:
    """Drop the index rows no live design document uses (202, as CouchDB)."""
    db = open_db(name, design_write=True)
    keep = set()
    for row in db.all_docs(start="_design/", end="_design0", include_docs=True):
        keep.add(views.signature(row["doc"]))
    viewindex.drop_others(db, keep)
    return respond({"ok": True}, 202)


def design_info(name: str, ddoc: str) -> Response:
    """``GET /{db}/_design/{ddoc}/_info``."""
    return respond(views.info(open_db(name), ddoc))


def compact_views(name: str, ddoc: str) -> Response:
    """``POST /{db}/_compact/{ddoc}``: 202 as CouchDB, once the view rows' indexes are rebuilt packed (they
    live in the database's SQLite file with every index's rows; ``_view_cleanup`` drops unused ones)."""
    db = open_db(name)
    require_db_admin(g.user, db.get_security())
    db.get(f"_design/{ddoc}")
    viewindex.compact(db)
    return respond({"ok": True}, 202)


def node_versions() -> Response:
    """``GET /_node/_local/_versions`` (server admins): the JavaScript engine and the collation library, as
    CouchDB 3.4 names them (clients and CouchDB's own tests read ``javascript_engine.name``)."""
    require_admin(g.user)
    return respond({"javascript_engine": {"name": "quickjs"},
                    "collation_driver": {"name": "libicu", "library_version": collation.version()}})


def temp_view(name: str) -> Response:
    """``POST /{db}/_temp_view``: gone since CouchDB 2, and answered as CouchDB 3.4 does."""
    open_db(name)
    raise Gone("Temporary views are not supported in CouchDB")
