"""Shows, lists and updates of design documents: CouchDB's answers when they are missing.

Views, filters and validate_doc_update run in QuickJS (sync_server/design); shows, lists and
updates do not, so one that exists is answered with a 400 that says so, one that is missing
gets the 404 CouchDB gives.
"""

from __future__ import annotations

from flask import Response

from ..errors import BadRequest, NotFound
from ..store import Database
from .access import open_db

# The design-document member that holds each kind of function, by its path segment.
KINDS = {"_show": "shows", "_list": "lists", "_update": "updates"}


def design_function(db: Database, name: str, kind: str, form: str) -> None:
    """Check that ``design/function`` names a function of that kind, with CouchDB's 404s when not.

    :raises BadRequest: ``form`` when the name has no ``/``; NotFound ``missing`` (no design
        document) or ``missing json key: ...``.
    """
    design, slash, function = name.partition("/")
    if not slash or not design or not function:
        raise BadRequest(form)
    functions = db.get("_design/" + design).get(kind)
    if not isinstance(functions, dict):
        raise NotFound(f"missing json key: {kind}")
    if function not in functions:
        raise NotFound(f"missing json key: {function}")


def function(name: str, design: str, segment: str, function_name: str) -> Response:
    """``/{db}/_design/{d}/_show|_list|_update/{f}``: CouchDB's 404s, else 400."""
    design_function(open_db(name), f"{design}/{function_name}", KINDS[segment], "")
    raise BadRequest(f"{KINDS[segment][:-1]} {design}/{function_name} needs JavaScript, which this server does not run")
