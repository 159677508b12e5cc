"""Mango over HTTP: ``/{db}/_find``, ``/{db}/_explain``, ``/{db}/_index`` (sync_server/design/mango.py answers)."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from flask import Response, request

from ..design import mango
from ..errors import CouchError
from .access import open_db
from .http import json_body, respond


def find(name: str) -> Response:
    """``POST /{db}/_find``."""
    return respond(mango.find(open_db(name), json_body()))


def explain(name: str) -> Response:
    """``POST /{db}/_explain``."""
    return respond(mango.explain(open_db(name), json_body()))


def index(name: str) -> Response:
    """``GET /{db}/_index`` lists (``limit``, ``skip``); ``POST`` creates (a design document: database
    admins only)."""
    if request.method == "GET":
        found = [mango.public(i) for i in mango.indexes(open_db(name))]
        limit, skip = _list_param("limit", len(found) or 1, 1), _list_param("skip", 0, 0)
        return respond({"total_rows": len(found), "indexes": found[skip:skip + limit]})
    return respond(mango.create_index(open_db(name, design_write=True), json_body()))


def _list_param(key: str, default: int, least: int) -> int:
    """``limit`` (at least 1) or ``skip`` (at least 0) of ``GET /{db}/_index``; others get CouchDB's 500."""
    pairs = (part.partition("=") for part in re.split("[&;]", request.query_string.decode("latin-1")))
    text = {unquote_plus(k): unquote_plus(v) for k, _, v in pairs}.get(key)  # ";" parts too, as mochiweb
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise CouchError("Index parameter ranges: limit > 1, skip > 0", error="invalid_list_index_params")
    return value


def index_delete(name: str, ddoc: str, kind: str, index_name: str) -> Response:
    """``DELETE /{db}/_index/{ddoc}/{type}/{name}``."""
    return respond(mango.delete_index(open_db(name, design_write=True), ddoc, index_name, kind))


def bulk_delete(name: str) -> Response:
    """``POST /{db}/_index/_bulk_delete``: the indexes of the named design documents."""
    return respond(mango.bulk_delete(open_db(name, design_write=True), json_body()))
