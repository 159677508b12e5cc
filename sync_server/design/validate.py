"""``validate_doc_update`` of every design document, on every write the store makes.

The store calls :class:`DesignValidator` (``StoreOptions.validate_design``) for each
non-design document written through any path (PUT, DELETE, POST, ``_bulk_docs``
with or without ``new_edits``, attachments, replication into this server), and
only while the database has live design documents: a database without any pays
one index seek per write batch. As in CouchDB (couch_db.erl ``validate_doc_update``
and couch_query_servers.erl), every design document's function runs, in id order;
the first refusal wins:

* ``throw({forbidden: msg})``     -> 403 ``forbidden``
* ``throw({unauthorized: msg})``  -> 401 ``unauthorized``
* any other thrown value          -> 500 ``unknown_error``; a thrown ``Error`` -> 500.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..errors import CouchError, Forbidden, Unauthorized
from ..security.auth import current_name, current_roles
from .engine import CompilationError, engine

# Design documents remembered per (db, id, rev): the body when it has a validate_doc_update, else None.
_CACHED = 256


def user_ctx(db_name: str) -> dict:
    """CouchDB's userCtx of the request being served; the server's own writes run as admin."""
    roles = current_roles.get()
    if roles is None:
        return {"db": db_name, "name": None, "roles": ["_admin"]}
    return {"db": db_name, "name": current_name.get(), "roles": list(roles)}


class DesignValidator:
    """The hook the store calls; holds no state but a cache of design documents."""

    def __init__(self) -> None:
        self._ddocs: OrderedDict[tuple[str, str, str], dict | None] = OrderedDict()
        self._lock = threading.Lock()

    def _ddoc(self, db_name: str, doc_id: str, rev: str, load: Callable[[str, str], dict | None]) -> dict | None:
        key = (db_name, doc_id, rev)
        with self._lock:
            if key in self._ddocs:
                self._ddocs.move_to_end(key)
                return self._ddocs[key]
        body = load(doc_id, rev)
        ddoc = None
        if body is not None and isinstance(body.get("validate_doc_update"), str):
            ddoc = {"_id": doc_id, "_rev": rev, **body}
        with self._lock:
            self._ddocs[key] = ddoc
            while len(self._ddocs) > _CACHED:
                self._ddocs.popitem(last=False)
        return ddoc

    def __call__(self, db_name: str, ddocs: list[tuple[str, str]], load: Callable[[str, str], dict | None],
                 new_doc: dict, load_old: Callable[[], dict | None], security: Callable[[], dict]) -> None:
        """:raises Forbidden, Unauthorized, CouchError: as the first refusing function says."""
        funs = [d for d in (self._ddoc(db_name, i, r, load) for i, r in ddocs) if d is not None]
        if not funs:
            return
        command = {"op": "validate", "fn": "validate_doc_update", "newDoc": new_doc, "oldDoc": load_old(),
                   "userCtx": user_ctx(db_name), "secObj": security()}
        for ddoc in funs:
            answer = engine().call(ddoc, command)
            if answer == 1:
                continue
            raise refusal(answer.get("thrown") if isinstance(answer, dict) else answer)


class InvalidDesignDoc(CouchError):
    status, error, reason = 400, "invalid_design_doc", "Invalid design document."


BUILTIN_REDUCES = ("_sum", "_count", "_stats", "_approx_count_distinct")


def check_design_doc(body: dict) -> None:
    """Refuse a design document whose views CouchDB would refuse (couch_mrview:validate/2).

    Map and reduce functions must compile; built-in reduces must exist. Other functions
    (filters, validate_doc_update) are compiled when first used, as in CouchDB.
    :raises InvalidDesignDoc, CompilationError: 400, with CouchDB's reasons.
    """
    if body.get("language") == "query" and isinstance(body.get("views"), dict):
        for name, view in body["views"].items():  # Mango's indexes: the map is an object
            if isinstance(view, dict) and "map" in view and not isinstance(view["map"], dict):
                raise InvalidDesignDoc(f"`views.{name}.map` field must have object type")
    if body.get("language", "javascript") != "javascript" or "views" not in body:
        return
    views = body["views"]
    if not isinstance(views, dict):
        raise InvalidDesignDoc("`views` is not an object")
    paths = []
    for name, view in views.items():
        if name == "lib":
            continue
        if not isinstance(view, dict):
            raise InvalidDesignDoc(f"View `{name}` must be an object")
        if "map" not in view:
            raise InvalidDesignDoc(f"View `{name}` must contain map function")
        if not isinstance(view["map"], str):
            raise InvalidDesignDoc(f"`views.{name}.map` field must have string type")
        paths.append(("map", name))
        reduce = view.get("reduce")
        if reduce is not None:
            if not isinstance(reduce, str):
                raise InvalidDesignDoc(f"`views.{name}.reduce` field must have string type")
            if reduce.startswith("_"):
                if not any(reduce.startswith(b) for b in BUILTIN_REDUCES):
                    raise InvalidDesignDoc(f"`{reduce}` is not a supported reduce function.")
            else:
                paths.append(("reduce", name))
    for kind, name in paths:
        try:
            engine().call({"views": views}, {"op": "compile", "fns": [f"views.{name}.{kind}"]})
        except CompilationError as exc:
            raise CompilationError(f"Compilation of the {kind} function in the '{name}' view failed: {exc.reason}") from None


def refusal(thrown: Any) -> CouchError:
    """The error CouchDB answers for a value a validate_doc_update function threw."""
    if isinstance(thrown, dict) and len(thrown) == 1:
        (kind, message), = thrown.items()
        text = message if isinstance(message, str) else _text(message)
        if kind == "forbidden":
            return Forbidden(text)
        if kind == "unauthorized":
            return Unauthorized(text)
        return CouchError(text)
    return CouchError(_text(thrown))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


__all__ = ["CompilationError", "DesignValidator", "check_design_doc", "refusal", "user_ctx"]
