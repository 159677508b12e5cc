"""``/_membership`` and ``/_node/{node}/_config``: the one node, and its configuration in CouchDB's words.

The kiosk is configured by its config.yaml (sync_server/settings.py), read once at start. The
``_config`` API shows, under CouchDB's section and key names, the values that have a CouchDB
counterpart, and refuses every change with 403 ``forbidden`` (as CouchDB refuses a section closed
to the HTTP API); setting a key
to the value it already has is accepted (a no-op), as tools that set then restore a value expect.
Server admins only, as in CouchDB.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, request

from ..errors import BadRequest, Forbidden, NotFound
from ..security.auth import require_admin
from .http import parse_json, raw_body, respond, settings

NODE = "nonode@nohost"  # the name CouchDB gives a node that is not distributed


def membership() -> Response:
    """``GET /_membership``: one node."""
    require_admin(g.user)
    return respond({"all_nodes": [NODE], "cluster_nodes": [NODE]})


def _config() -> dict[str, dict[str, str]]:
    """The configuration under CouchDB's names, every value a string as CouchDB's are."""
    couch = settings().couchdb
    return {
        "couchdb": {"max_document_size": str(couch.max_document_size), "default_security": couch.default_security,
                    "single_node": "true"},
        "chttpd": {"max_http_request_size": str(couch.max_request_size), "decode_plus_to_space": "true",
                   "x_forwarded_host": "X-Forwarded-Host"},
        "chttpd_auth": {"authentication_db": "_users", "timeout": str(couch.session_timeout)},
        "couch_httpd_auth": {"authentication_db": "_users", "timeout": str(couch.session_timeout)},
        "uuids": {"algorithm": "sequential", "max_count": "1000"},
    }


def config(node: str, path: list[str]) -> Response:
    """``GET /_node/{node}/_config[/{section}[/{key}]]``; ``PUT`` and ``DELETE`` of a key."""
    require_admin(g.user)
    if node not in ("_local", NODE):
        raise NotFound(f"Node {node[:80]} is not known", error="not_found")
    values = _config()
    if request.method == "GET":
        if not path:
            return respond(values)
        section = values.get(path[0], {})
        if len(path) == 1:
            return respond(section)
        if path[1] not in section:
            raise NotFound("unknown_config_value")
        return respond(section[path[1]])
    if len(path) != 2:
        raise BadRequest("A configuration value is /_node/{node}/_config/{section}/{key}")
    current = values.get(path[0], {}).get(path[1])
    wanted: Any = parse_json(raw_body()) if request.method == "PUT" else None
    if request.method == "PUT" and not isinstance(wanted, str):
        raise BadRequest("Request body must be a JSON string")
    if current is None and request.method == "DELETE":
        raise NotFound("unknown_config_value")
    if wanted is None or wanted != current:
        raise Forbidden("The kiosk is configured by its config.yaml; its configuration is read-only over HTTP.")
    return respond(current)
