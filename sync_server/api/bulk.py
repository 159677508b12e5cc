"""Replication endpoints: ``_bulk_docs``, ``_bulk_get``, ``_revs_diff``."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Response

from ..errors import BadRequest, CouchError, NotFound
from ..store.database import Database
from ..store.document import check_incoming
from .access import open_db
from .http import flag, json_body, respond


def bulk_docs(name: str) -> Response:
    """``POST /{db}/_bulk_docs``: 201 even when single documents conflict or are refused (each row says why).

    A malformed document refuses the whole request (400, 412 or 413), as in
    CouchDB (chttpd_db.erl, ``_bulk_docs``), and nothing is written.
    """
    body = json_body()
    docs, new_edits = body.get("docs"), body.get("new_edits", True)
    if docs is None:
        raise BadRequest("POST body must include `docs` parameter.")
    if not isinstance(docs, list):
        raise BadRequest("`docs` parameter must be an array.")
    for doc in docs:
        check_incoming(doc, new_edits is not False)
    if not isinstance(new_edits, bool):
        raise BadRequest("`new_edits` parameter must be a boolean.")
    design = any(str(d.get("_id", "")).startswith("_design/") for d in docs)
    db = open_db(name, design_write=design)
    if new_edits:
        for doc in docs:
            if "_id" not in doc:
                doc["_id"] = secrets.token_hex(16)
        if body.get("all_or_nothing") is True:  # CouchDB 3 dropped it: 417 with a row per document
            return respond([{"id": d["_id"], "rev": d.get("_rev", "0-"), "error": "not_implemented",
                             "reason": "all_or_nothing is not supported"} for d in docs], 417)
    local = [i for i, d in enumerate(docs) if str(d.get("_id", "")).startswith("_local/")]
    if not local:
        return respond(db.bulk_docs(docs, new_edits=new_edits, strict=True), 201)
    rows = db.bulk_docs([d for d in docs if not str(d.get("_id", "")).startswith("_local/")],
                        new_edits=new_edits, strict=True)
    by_id = {row["id"]: row for row in rows} if not new_edits else {}
    results = iter(rows)
    out = []
    for i, doc in enumerate(docs):
        if i in local:
            out.append(_write_local(db, doc))
        elif new_edits:
            out.append(next(results))
        elif doc["_id"] in by_id:
            out.append(by_id[doc["_id"]])
    return respond([r for r in out if new_edits or "error" in r], 201)


def _write_local(db: Database, doc: dict) -> dict:
    """A ``_local`` document in ``_bulk_docs``, written (or deleted) as CouchDB does; its row."""
    local_id = doc["_id"][len("_local/"):]
    try:
        return db.put_local(local_id, doc)
    except CouchError as exc:
        return {"id": doc["_id"], **exc.to_json()}


def bulk_get(name: str) -> Response:
    """``POST /{db}/_bulk_get``: many revisions in one request, as PouchDB and CouchDB 3 replicators ask."""
    db = open_db(name)
    asked = json_body().get("docs")
    if not isinstance(asked, list):
        raise BadRequest("Missing JSON list of 'docs'.")
    options = {"revs": flag("revs"), "attachments_": flag("attachments"), "latest": flag("latest")}
    return respond({"results": [_bulk_get_one(db, item, options) for item in asked]})


def _bulk_get_one(db: Database, item: Any, options: dict) -> dict:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return {"id": None, "docs": [{"error": {"id": None, "rev": None, "error": "bad_request",
                                                "reason": "Each request needs an id"}}]}
    doc_id, rev = item["id"], item.get("rev")
    atts_since = item.get("atts_since")
    try:
        if rev is None:
            found: list[dict[str, Any]] = [{"ok": db.get(doc_id, revs=options["revs"], attachments_=options["attachments_"],
                                   atts_since=atts_since)}]
        else:
            found = db.open_revs(doc_id, [rev], **options, atts_since=atts_since, raw=True)
    except NotFound as exc:
        found = [{"missing": rev or "", "reason": exc.reason}]
    docs = [r if "ok" in r else {"error": {"id": doc_id, "rev": r["missing"], "error": "not_found",
                                           "reason": r.get("reason", "missing")}} for r in found]
    return {"id": doc_id, "docs": docs}


def revs_diff(name: str) -> Response:
    """``POST /{db}/_revs_diff``: only what this database lacks."""
    db = open_db(name)
    return respond(db.revs_diff(json_body()))
