"""``_changes`` filter functions (``filter=ddoc/name``) and ``filter=_view``, as CouchDB 3.4 runs them.

The function gets the winning revision of each changed document (a deleted one as
``{_id, _rev, _deleted: true}``) and a request object shaped like CouchDB's
(chttpd_external:json_req_obj): ``query``, ``userCtx``, ``secObj``, ``info``, ``method``,
``path``, ``headers``, ``body``... A document passes when the function returns a
truthy value; with ``filter=_view`` when the view's map function emits anything.
Replicators that read this server as a source ask for the same ``_changes`` URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import BadRequest, NotFound
from ..store import Database
from .engine import engine
from .validate import user_ctx


def load_ddoc(db: Database, name: str) -> dict:
    """``_design/name``, winning revision.

    :raises NotFound: ``missing`` or ``deleted``, as CouchDB says it.
    """
    return db.get(f"_design/{name}")


def _function(ddoc: dict, section: str, name: str) -> str:
    """The path of ``section.name`` in the design document, checked to be there (else a CouchDB-shaped 404)."""
    funs = ddoc.get(section)
    if not isinstance(funs, dict) or name not in funs:
        raise NotFound(f"missing json key: {name}" if isinstance(funs, dict) else f"missing json key: {section}")
    return f"{section}.{name}"


def request_object(db: Database, method: str, path: list[str], query: dict[str, Any], headers: dict[str, str],
                   body: str | None, peer: str | None, server_uuid: str) -> dict:
    """The ``req`` a filter function receives."""
    return {
        "info": db.info(), "id": None, "uuid": server_uuid, "method": method,
        "requested_path": path, "path": path, "raw_path": "/" + "/".join(path),
        "query": query, "headers": headers, "body": body if body is not None else "undefined",
        "peer": peer, "form": {}, "cookie": {}, "userCtx": user_ctx(db.name), "secObj": db.get_security(),
    }


def predicate(db: Database, name: str, query: dict[str, Any], req: Callable[[], dict]) -> Callable[[dict], bool]:
    """The per-document test of ``filter=name`` (``ddoc/filter`` or ``_view``).

    :raises BadRequest: for a malformed name; NotFound for a missing design document or function.
    """
    if name == "_view":
        view = query.get("view")
        if not view:
            raise BadRequest("`view` filter parameter is not provided.")
        ddoc_name, _, view_name = view.partition("/")
        if not view_name:
            raise BadRequest("`view` must be of the form `designname/viewname`")
        ddoc = load_ddoc(db, ddoc_name)
        views = ddoc.get("views")
        if not isinstance(views, dict) or view_name not in views or not isinstance(views[view_name], dict) \
                or "map" not in views[view_name]:
            raise NotFound(f"missing json key: {view_name}")
        path = f"views.{view_name}.map"
        return lambda doc: engine().call(ddoc, {"op": "map_filter", "fn": path, "docs": [doc]})[0]
    ddoc_name, _, filter_name = name.partition("/")
    if not ddoc_name or not filter_name:
        raise BadRequest("`filter` must be of the form `designname/filtername`")
    ddoc = load_ddoc(db, ddoc_name)
    path = _function(ddoc, "filters", filter_name)
    request = req()
    return lambda doc: engine().call(ddoc, {"op": "filter", "fn": path, "docs": [doc], "req": request})[0]
