"""Mango over HTTP: ``/{db}/_find``, ``/{db}/_explain``, ``/{db}/_index`` (sync_server/design/mango.py answers)."""

from __future__ import annotations

from flask import Response, request

from ..design import mango
from .access import open_db
from .http import json_body, respond


def find(name: str) -> Response:
    """``POST /{db}/_find``."""
    return respond(mango.find(open_db(name), json_body()))


def explain(name: str) -> Response:
    """``POST /{db}/_explain``."""
    return respond(mango.explain(open_db(name), json_body()))


def index(name: str) -> Response:
    """``GET /{db}/_index`` lists; ``POST`` creates (a design document: database admins only)."""
    if request.method == "GET":
        found = mango.indexes(open_db(name))
        return respond({"total_rows": len(found), "indexes": found})
    return respond(mango.create_index(open_db(name, design_write=True), json_body()))


def index_delete(name: str, ddoc: str, index_name: str) -> Response:
    """``DELETE /{db}/_index/{ddoc}/json/{name}``."""
    return respond(mango.delete_index(open_db(name, design_write=True), ddoc, index_name))
