"""Database endpoints: ``/{db}``, ``_all_docs``, ``_security``, ``_revs_limit``, ``_compact``."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Response, g, request

from ..errors import BadRequest
from ..security.auth import require_admin, require_db_admin
from .access import open_db
from .document import batch_write, write_result
from .http import doc_read_options, flag, integer, json_body, json_param, raw_body, respond, server, stream


def create(name: str) -> Response:
    """``PUT /{db}``: admin only; 412 ``file_exists`` when it exists."""
    require_admin(g.user)
    server().create(name)
    return respond({"ok": True}, 201, {"Location": f"{request.host_url}{quote(name, safe='')}"})


def delete(name: str) -> Response:
    """``DELETE /{db}``: admin only."""
    require_admin(g.user)
    if request.args.get("rev"):
        # CouchDB's words, its "?=rev" included
        raise BadRequest("You tried to DELETE a database with a ?=rev parameter. Did you mean to DELETE a document instead?")
    server().delete(name)
    return respond({"ok": True})


def info(name: str) -> Response:
    """``GET /{db}``."""
    return respond(open_db(name).info())


def post_doc(name: str) -> Response:
    """``POST /{db}``: create a document, with a generated id when it has none."""
    doc = json_body()
    doc.setdefault("_id", secrets.token_hex(16))
    db = open_db(name, design_write=str(doc.get("_id")).startswith("_design/"))
    if request.args.get("batch") == "ok":
        return batch_write(db, doc)
    response = write_result(db.bulk_docs([doc])[0], name)
    del response.headers["ETag"]  # CouchDB sends Location only
    return response


def ensure_full_commit(name: str) -> Response:
    """``POST /{db}/_ensure_full_commit``: a no-op, since every write is durable when acknowledged."""
    open_db(name)
    return respond({"ok": True, "instance_start_time": "0"}, 201)


def security(name: str) -> Response:
    """``GET/PUT /{db}/_security``: writing needs a server or database admin."""
    db = open_db(name)
    if request.method == "GET":
        return respond(db.get_security())
    require_db_admin(g.user, db.get_security())
    body = json_body(require_type=False)
    for group in ("admins", "members"):
        if group in body and not _valid_group(body[group]):
            raise BadRequest(f"{group} must be an object with names and roles lists of strings")
    db.put_security(body)
    return respond({"ok": True})


def _valid_group(group: Any) -> bool:
    return isinstance(group, dict) and all(
        isinstance(group.get(key, []), list) and all(isinstance(v, str) for v in group.get(key, []))
        for key in ("names", "roles"))


def revs_limit(name: str) -> Response:
    """``GET/PUT /{db}/_revs_limit``."""
    db = open_db(name)
    if request.method == "GET":
        return respond(db.revs_limit)
    require_db_admin(g.user, db.get_security())
    limit = json_body(require_type=False, expect=int)
    if isinstance(limit, bool) or limit < 1:
        raise BadRequest("_revs_limit must be a positive integer")
    db.set_revs_limit(limit)
    return respond({"ok": True})


def compact(name: str) -> Response:
    """``POST /{db}/_compact``: drop old revision bodies and orphaned attachments."""
    db = open_db(name)
    require_db_admin(g.user, db.get_security())
    db.compact()
    return respond({"ok": True}, 202)


def all_docs(name: str) -> Response:
    """``GET/POST /{db}/_all_docs``, streamed so memory stays flat."""
    return _all_docs(name, design=False)


def design_docs(name: str) -> Response:
    """``GET/POST /{db}/_design_docs``: ``_all_docs`` of the design documents alone (CouchDB 3)."""
    return _all_docs(name, design=True)


# The id range of design documents (CouchDB's ``_design_docs`` namespace).
_DESIGN_FIRST, _DESIGN_END = "_design/", "_design0"


def _all_docs(name: str, design: bool) -> Response:
    db = open_db(name)
    body = json_body() if request.method == "POST" else {}
    args = _params(body)
    keys = body.get("keys", json_param("keys", args=args))
    include_docs, doc_options = flag("include_docs", args=args), doc_read_options(args)
    total = db.doc_count
    if design:
        total = db.count_before(_DESIGN_END, False) - db.count_before(_DESIGN_FIRST, False)
    head: dict[str, Any] = {"total_rows": total}
    if flag("update_seq", args=args):
        head["update_seq"] = db.seq_string(db.update_seq)
    options = _range_options(args)
    if keys is not None:
        if not isinstance(keys, list):
            raise BadRequest(f"`keys` {'body member' if 'keys' in body else 'parameter'} must be an array.")
        # CouchDB reads a single key as key=that key (couch_mrview_http:parse_param/4); a range
        # beside keys is an error unless it is that same key.
        single = keys[0] if len(keys) == 1 else None
        if (options["start"], options["end"]) not in ((None, None), (single, single), (single, None), (None, single)):
            raise BadRequest("`keys` is incompatible with `key`, `start_key` and `end_key`", error="query_parse_error")
        rows = db.all_docs_keys(keys, include_docs, descending=options["descending"], skip=options["skip"],
                                limit=options["limit"], doc_options=doc_options)
        return stream(_rows(head | {"offset": None}, rows))  # CouchDB: no offset for keys
    if design:
        offset = _design_range(db, options)
    else:
        offset = db.count_before(options["start"], options["descending"])
    rows = db.all_docs(**options, include_docs=include_docs, doc_options=doc_options)
    offset += options["skip"]
    return stream(_rows(head | {"offset": min(offset, total) if design else offset}, rows))


def local_docs(name: str) -> Response:
    """``GET/POST /{db}/_local_docs``: the ``_local`` documents by id, as ``_all_docs`` lists the others
    (CouchDB gives no ``total_rows`` and no ``offset`` here)."""
    db = open_db(name)
    body = json_body() if request.method == "POST" and raw_body() else {}
    args = _params(body)
    keys = body.get("keys", json_param("keys", args=args))
    if keys is not None and not isinstance(keys, list):
        raise BadRequest(f"`keys` {'body member' if 'keys' in body else 'parameter'} must be an array.")
    options = _range_options(args)
    head: dict[str, Any] = {"total_rows": None, "offset": None}
    if flag("update_seq", args=args):
        head["update_seq"] = None
    rows = db.local_docs(keys=keys, include_docs=flag("include_docs", args=args), **options)
    return stream(_rows(head, rows))


def _params(body: dict) -> dict[str, str]:
    """A POST body's members as parameters, the query string's winning (couch_mrview_http)."""
    return {k: json.dumps(v) for k, v in body.items() if k != "keys"} | request.args.to_dict()


def _design_range(db: Any, options: dict[str, Any]) -> int:
    """Narrow a range to the design documents' ids; the offset of its start."""
    first, last = (_DESIGN_FIRST, _DESIGN_END) if not options["descending"] else (_DESIGN_END, _DESIGN_FIRST)
    start, end = options["start"], options["end"]
    if not options["descending"]:
        start = first if start is None else max(start, first)
        if end is None or end >= last:
            end, options["inclusive_end"] = last, False
        empty = start > end
    else:
        start = first if start is None else min(start, first)
        end = last if end is None else max(end, last)
        empty = start < end
    options["start"], options["end"] = start, end
    if empty:  # CouchDB counts every design document as passed
        return db.count_before(_DESIGN_END, False) - db.count_before(_DESIGN_FIRST, False)
    return int(db.count_before(start, options["descending"]))  # among all ids, as CouchDB's one id index


def _range_options(args: dict[str, str]) -> dict[str, Any]:
    key = json_param("key", args=args)
    start = key if key is not None else json_param("start_key", json_param("startkey", args=args), args=args)
    end = key if key is not None else json_param("end_key", json_param("endkey", args=args), args=args)
    for value in (start, end):
        if value is not None and not isinstance(value, str):
            raise BadRequest("_all_docs keys must be strings (document ids)", error="query_parse_error")
    return {"start": start, "end": end, "inclusive_end": flag("inclusive_end", True, args=args),
            "descending": flag("descending", args=args), "limit": integer("limit", args=args),
            "skip": integer("skip", 0, args=args) or 0}


def _rows(head: dict, rows: Iterator[dict]) -> Iterator[str]:
    yield json.dumps(head, separators=(",", ":"))[:-1] + ',"rows":[\n'
    first = True
    for row in rows:
        yield ("" if first else ",\n") + json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        first = False
    yield "\n]}\n"
