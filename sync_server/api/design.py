"""Design-document functions (views, shows, lists, updates): CouchDB's answers when they are missing.

The kiosk runs no JavaScript (a separate issue), so a function that exists is
answered with a 400 that says so; one that is missing gets the 404 CouchDB gives.
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


def view(name: str, design: str, view_name: str) -> Response:
    """``GET/POST /{db}/_design/{d}/_view/{v}``: 404 ``missing`` or ``missing_named_view``, else 400."""
    views = open_db(name).get("_design/" + design).get("views")
    if not isinstance(views, dict) or view_name not in views:
        raise NotFound("missing_named_view")
    raise BadRequest(f"view {design}/{view_name} needs JavaScript, which this server does not run")


def function(name: str, design: str, segment: str, function_name: str) -> Response:
    """``/{db}/_design/{d}/_show|_list|_update/{f}``: CouchDB's 404s, else 400."""
    design_function(open_db(name), f"{design}/{function_name}", KINDS[segment], "")
    raise BadRequest(f"{KINDS[segment][:-1]} {design}/{function_name} needs JavaScript, which this server does not run")
