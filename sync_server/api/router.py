"""Maps raw request paths to endpoint functions, the way CouchDB reads them.

WSGI servers decode ``%2F`` in PATH_INFO, which would make the document
``a/b`` look like attachment ``b`` of document ``a``. We split the raw request
URI on ``/`` first and decode each segment after, as CouchDB does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from flask import g, request
from werkzeug.wrappers import Response as BaseResponse

from ..errors import BadRequest, MethodNotAllowed, NotFound
from ..security.auth import require_admin
from . import app_static, bulk, changes, database, design, document, find, node, pairing, reading, server, views
from . import members as members_api

Handler = Callable[..., BaseResponse]

_SERVER: dict[str, dict[str, Handler]] = {
    "": {"GET": app_static.root},
    "_up": {"GET": server.up},
    "_all_dbs": {"GET": server.all_dbs},
    "_dbs_info": {"GET": server.dbs_info, "POST": server.dbs_info},
    "_uuids": {"GET": server.uuids},
    "_session": {"GET": server.session_get, "POST": server.session_post, "DELETE": server.session_delete},
    "_reading": {"POST": reading.post},
    "_membership": {"GET": node.membership},
}
_DATABASE: dict[str, Handler] = {
    "PUT": database.create, "DELETE": database.delete, "GET": database.info,
    "HEAD": database.info, "POST": database.post_doc,
}
_DB_SPECIAL: dict[str, dict[str, Handler]] = {
    "_all_docs": {"GET": database.all_docs, "POST": database.all_docs},
    "_local_docs": {"GET": database.local_docs, "POST": database.local_docs},
    "_design_docs": {"GET": database.design_docs, "POST": database.design_docs},
    "_changes": {"GET": changes.changes, "POST": changes.changes},
    "_bulk_docs": {"POST": bulk.bulk_docs},
    "_bulk_get": {"POST": bulk.bulk_get},
    "_revs_diff": {"POST": bulk.revs_diff},
    "_ensure_full_commit": {"POST": database.ensure_full_commit},
    "_security": {"GET": database.security, "PUT": database.security},
    "_revs_limit": {"GET": database.revs_limit, "PUT": database.revs_limit},
    "_compact": {"POST": database.compact},
    "_view_cleanup": {"POST": views.view_cleanup},
    "_temp_view": {"POST": views.temp_view},
    "_find": {"POST": find.find},
    "_explain": {"POST": find.explain},
    "_index": {"GET": find.index, "POST": find.index},
}
_DOCUMENT: dict[str, Handler] = {
    "GET": document.get, "PUT": document.put, "DELETE": document.delete, "HEAD": document.head,
    "COPY": document.copy, "POST": document.form_upload,
}
_ATTACHMENT: dict[str, Handler] = {
    "GET": document.attachment_get, "HEAD": document.attachment_get,
    "PUT": document.attachment_put, "DELETE": document.attachment_delete,
}
_LOCAL: dict[str, Handler] = {"GET": document.local, "PUT": document.local, "DELETE": document.local}


def segments() -> list[str]:
    """The decoded segments of the raw request path."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI") or request.path
    path = raw.split("?", 1)[0]
    if "://" in path:  # an absolute-form request target
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    parts = [unquote_plus(p) for p in path.split("/")[1:]]  # "+" is a space, as mochiweb reads paths
    while parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()
    return parts or [""]


def dispatch() -> BaseResponse:
    """Find and call the endpoint for this request."""
    parts = segments()
    handler, args = _resolve(parts)
    return handler(*args)


def _pick(table: dict[str, Handler]) -> Handler:
    method = "GET" if request.method == "HEAD" and "HEAD" not in table else request.method
    if method not in table:
        raise MethodNotAllowed(f"Only {','.join(sorted(table))} allowed")
    return table[method]


def _resolve(parts: list[str]) -> tuple[Handler, list[Any]]:
    head, rest = parts[0], parts[1:]
    if parts == ["_sync", "status"]:
        return _pick({"GET": server.sync_status}), []
    if parts == ["_node", "_local", "_versions"]:  # #18: which JavaScript engine runs design documents
        return _pick({"GET": views.node_versions}), []
    if head == "_pairing":
        return _pairing_route(rest)
    if head == "_members":
        return _members_route(rest)
    if head == "_app":
        return _pick({"GET": app_static.serve}), [rest]
    if head == "_node" and len(rest) >= 2 and rest[1] == "_config":
        return _pick({"GET": node.config, "PUT": node.config, "DELETE": node.config}), [rest[0], rest[2:]]
    if head == "" or (head.startswith("_") and not rest and head in _SERVER):
        return _pick(_SERVER.get(head) or {}), []
    if head.startswith("_") and head not in ("_users", "_replicator", "_global_changes"):
        # CouchDB: a path of its own it does not know is for server admins (401 to anyone else);
        # for them it is no database (404), and one cannot be made under that name (400)
        require_admin(g.user)
        if rest or request.method != "PUT":
            raise NotFound("Database does not exist.")
        raise BadRequest(
            f"Name: '{head[:80]}'. Only lowercase characters (a-z), digits (0-9), and any of the characters "
            "_, $, (, ), +, -, and / are allowed. Must begin with a letter.", error="illegal_database_name")
    if not rest:
        return _pick(_DATABASE), [head]
    first = rest[0]
    if first in _DB_SPECIAL and len(rest) == 1:
        return _pick(_DB_SPECIAL[first]), [head]
    if first == "_design" and len(rest) >= 4 and rest[2] in design.KINDS:
        return _pick({"GET": design.function, "POST": design.function, "PUT": design.function}), \
            [head, rest[1], rest[2], "/".join(rest[3:])]
    if first == "_design" and len(rest) == 3 and rest[2] == "_info":
        return _pick({"GET": views.design_info}), [head, rest[1]]
    if first == "_index" and len(rest) > 1:  # #18: Mango indexes
        return _index_route(head, rest[1:])
    if first in ("_local", "_local/") and len(rest) == 1:  # no id after the prefix
        raise BadRequest("Invalid _local document id.")
    if first == "_compact" and len(rest) == 2:  # #18: a design document's views
        return _pick({"POST": views.compact_views}), [head, rest[1]]
    if first in ("_design", "_local") and len(rest) >= 2:
        return _named(head, f"{first}/{rest[1]}", rest[2:])
    if first.startswith(("_design/", "_local/")):
        return _named(head, first, rest[1:])
    if first.startswith("_"):
        raise BadRequest("Only reserved document ids may start with underscore.", error="illegal_docid")
    return _named(head, first, rest[1:])


def _index_route(db: str, rest: list[str]) -> tuple[Handler, list[str]]:
    """``/{db}/_index/_bulk_delete`` and ``/{db}/_index/[_design/]{ddoc}/{type}/{name}``; else 404."""
    if rest == ["_bulk_delete"]:
        return _pick({"POST": find.bulk_delete}), [db]
    if len(rest) == 4 and rest[0] == "_design":
        rest = ["_design/" + rest[1], *rest[2:]]
    if len(rest) == 3:
        return _pick({"DELETE": find.index_delete}), [db, *rest]
    raise NotFound("missing")


def _pairing_route(rest: list[str]) -> tuple[Handler, list[str]]:
    if rest == ["code"]:
        return _pick({"POST": pairing.new_code}), []
    if rest == ["claim"]:
        return _pick({"POST": pairing.claim}), []
    if rest == ["remember"]:
        return _pick({"POST": pairing.remember}), []
    if rest == ["devices"]:
        return _pick({"GET": pairing.devices}), []
    if rest == ["locks"]:
        return _pick({"GET": pairing.locks, "DELETE": pairing.lift}), []
    if len(rest) == 2 and rest[0] == "devices":
        return _pick({"DELETE": pairing.revoke}), [rest[1]]
    raise NotFound("missing")


def _members_route(rest: list[str]) -> tuple[Handler, list[str]]:
    """``/_members``: the kiosk admin's desk for its cell's members (api/members.py)."""
    if not rest:
        return _pick({"GET": members_api.list_members, "POST": members_api.add}), []
    if rest == ["_import"]:
        return _pick({"POST": members_api.import_register}), []
    actions = {"pin": members_api.give_pin, "status": members_api.set_status,
               "secretary": members_api.name_secretary}
    if len(rest) == 2 and rest[1] in actions:
        return _pick({"POST": actions[rest[1]]}), [rest[0]]
    raise NotFound("missing")


def _named(db: str, doc_id: str, att: list[str]) -> tuple[Handler, list[str]]:
    if doc_id.startswith("_local/"):
        if doc_id == "_local/":
            raise BadRequest("Invalid _local document id.")
        if att:
            raise BadRequest("_local documents do not accept attachments.")
        return _pick(_LOCAL), [db, doc_id[7:]]
    if doc_id.startswith("_design/") and len(att) == 2 and att[0] == "_view":  # #18: views
        return _pick({"GET": views.view, "POST": views.view}), [db, doc_id[8:], att[1]]
    if doc_id.startswith("_design/") and att == ["_info"]:
        return _pick({"GET": views.design_info}), [db, doc_id[8:]]
    if att:
        return _pick(_ATTACHMENT), [db, doc_id, "/".join(att)]
    return _pick(_DOCUMENT), [db, doc_id]
