"""Document endpoints: ``/{db}/{docid}``, ``/{db}/_local/{id}`` and attachments."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from flask import Response, request

from ..errors import BadContentType, BadRequest, Conflict, CouchError, NotFound, RangeNotSatisfiable, error_for
from ..store.document import check_attachment_name, check_doc_id
from . import multipart
from .access import open_db
from .http import flag, json_body, json_param, parse_json, raw_body, respond

log = logging.getLogger(__name__)


def write_result(result: dict, db: str, att: str | None = None) -> Response:
    """Turn one ``bulk_docs`` result into a 201 response with ``ETag`` and ``Location``, or raise its error."""
    if "error" in result:
        raise _error_from(result)
    return respond(result, 201, {"ETag": f'"{result["rev"]}"', "Location": location(db, result["id"], att)})


def location(db: str, doc_id: str, att: str | None = None) -> str:
    """The absolute URL of a document (or attachment) just written, as CouchDB sends it in ``Location``.

    As CouchDB's default ``[chttpd] x_forwarded_host``, a proxy's ``X-Forwarded-Host`` names the host.
    """
    forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    base = f"{request.scheme}://{forwarded}/" if forwarded else request.host_url
    url = f"{base}{quote(db, safe='')}/{quote(doc_id, safe='')}"
    return url + (f"/{quote(att)}" if att is not None else "")


def _error_from(result: dict) -> CouchError:
    return error_for(result["error"], result["reason"])


def _rev_param(body_rev: Any = None) -> str | None:
    """The revision a write names: ``_rev`` of the body, ``?rev=`` or ``If-Match``, which must agree.

    :raises BadRequest: in CouchDB's words when two of them name different revisions.
    """
    rev = request.args.get("rev")
    if_match = request.headers.get("If-Match")
    etag = if_match.strip().strip('"') if if_match else None
    if body_rev is not None and rev is not None and body_rev != rev:
        raise BadRequest("Document rev from request body and query string have different values")
    explicit = body_rev if body_rev is not None else rev
    if explicit is not None and etag is not None and explicit != etag:
        raise BadRequest("Document rev and etag have different values")
    return explicit if explicit is not None else etag


def _not_modified(etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak or strong, one of a list), as CouchDB compares."""
    header = request.headers.get("If-None-Match")
    return header is not None and any(t.strip().removeprefix("W/") == etag for t in header.split(","))


def get(name: str, doc_id: str) -> Response:
    """``GET /{db}/{docid}`` with CouchDB's query options; ``open_revs`` may answer multipart/mixed."""
    db = open_db(name)
    options: dict[str, Any] = {"revs": flag("revs"), "attachments_": flag("attachments"),
                               "atts_since": json_param("atts_since"), "latest": flag("latest")}
    open_revs = json_param("open_revs") if request.args.get("open_revs") != "all" else "all"
    if open_revs is not None:
        if open_revs != "all" and not (isinstance(open_revs, list) and all(isinstance(r, str) for r in open_revs)):
            raise BadRequest("open_revs must be \"all\" or a JSON array of revisions")
        mixed = "multipart/mixed" in request.headers.get("Accept", "")
        if mixed and not options["atts_since"]:
            # As CouchDB (chttpd_db:send_docs_multipart): multipart answers carry attachment data
            # whether or not ``attachments=true`` was asked, all but those older than ``atts_since``.
            # CouchDB's replicator asks so, and writes what it gets: stubs would be missing_stub.
            options["attachments_"] = True
        results = db.open_revs(doc_id, open_revs, **options)
        if mixed:
            return _multipart(results)
        return respond(results)
    rev = request.args.get("rev")  # CouchDB gives _revs_info of the current revision only
    doc = db.get(doc_id, rev, revs_info=flag("revs_info") and rev is None, conflicts=flag("conflicts"),
                 deleted_conflicts=flag("deleted_conflicts"), local_seq=flag("local_seq"), **options)
    etag = f'"{doc["_rev"]}"'
    if _not_modified(etag):
        return Response(status=304, headers={"ETag": etag})
    if any("data" in a for a in doc.get("_attachments", {}).values()) and _accepts_related():
        return _related(doc, etag)
    return respond(doc, headers={"ETag": etag})


def _accepts_related() -> bool:
    """Whether the client takes ``multipart/related`` (CouchDB sends it, unless asked for JSON only)."""
    accept = request.headers.get("Accept")
    return accept is None or any(t in accept for t in ("multipart/related", "multipart/*", "*/*"))


def _related(doc: dict, etag: str) -> Response:
    """A document with inline attachments as CouchDB sends it: JSON with ``follows`` stubs, then each one's data."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for att_name, att in doc["_attachments"].items():
        if "data" in att:
            data = base64.b64decode(att.pop("data"))
            att.update(length=len(data), follows=True)
            chunks.append(f'--{boundary}\r\nContent-Disposition: attachment; filename="{att_name}"\r\n'
                          f'Content-Type: {att["content_type"]}\r\nContent-Length: {len(data)}\r\n\r\n'.encode()
                          + data + b"\r\n")
    head = f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode() + json.dumps(
        doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\r\n"
    return Response(head + b"".join(chunks) + f"--{boundary}--".encode(), headers={"ETag": etag},
                    content_type=f'multipart/related; boundary="{boundary}"')


def _multipart(results: list[dict]) -> Response:
    """``open_revs`` as multipart/mixed, one application/json part per revision (as CouchDB sends)."""
    boundary = secrets.token_hex(16)
    parts = []
    for result in results:
        headers = "Content-Type: application/json"
        if "missing" in result:
            headers += "; error=\"true\""
        parts.append(f"--{boundary}\r\n{headers}\r\n\r\n{json.dumps(result.get('ok', result), ensure_ascii=False)}")
    body = "\r\n".join(parts) + f"\r\n--{boundary}--"
    return Response(body, content_type=f'multipart/mixed; boundary="{boundary}"')


def put(name: str, doc_id: str) -> Response:
    """``PUT /{db}/{docid}``: JSON, or multipart/related with attachment bodies after the JSON."""
    db = open_db(name, design_write=doc_id.startswith("_design/"))
    follows = None
    if request.mimetype == "multipart/related":
        doc, follows = _read_related()
    else:
        doc = _json_doc()
    doc["_id"] = doc_id
    rev = _rev_param(doc.get("_rev"))
    if rev and "_rev" not in doc:
        doc["_rev"] = rev
    new_edits = flag("new_edits", True)
    if new_edits and request.args.get("batch") == "ok":
        return batch_write(db, doc)
    results = db.bulk_docs([doc], new_edits=new_edits, follows=follows)
    if not new_edits:
        if results:
            raise _error_from(results[0])
        revisions = doc.get("_revisions")  # CouchDB takes the revision from _revisions when both are given
        written = f"{revisions['start']}-{revisions['ids'][0]}" if revisions and revisions.get("ids") else doc["_rev"]
        return respond({"ok": True, "id": doc_id, "rev": written}, 200 if doc.get("_deleted") is True else 201,
                       {"ETag": f'"{written}"', "Location": location(name, doc_id)})
    response = write_result(results[0], name)
    if doc.get("_deleted") is True:  # CouchDB: 200 for a deletion, whatever the method
        response.status_code = 200
    return response


def _json_doc() -> dict:
    """The request body as a document (any content type, as CouchDB reads a PUT).

    :raises BadRequest: in CouchDB's words when it is not an object.
    """
    doc = json_body(require_type=False, expect=None)
    if not isinstance(doc, dict):
        raise BadRequest("Document must be a JSON object")
    return doc


def batch_write(db: Any, doc: dict) -> Response:
    """``?batch=ok``: CouchDB answers 202 before writing and drops a conflicting write silently.

    The write here is made at once (it is as cheap as the answer); a conflict or a
    refusal is dropped as CouchDB drops it, a malformed document still gets its 400.
    """
    result = db.bulk_docs([doc], strict=True)[0]
    if "error" in result:
        log.info("batch=ok write of %r dropped: %s", doc.get("_id"), result["error"])
    return respond({"ok": True, "id": doc["_id"]}, 202)


def copy(name: str, doc_id: str) -> Response:
    """``COPY /{db}/{docid}`` with ``Destination: target[?rev=...]``: the body and attachments under another id."""
    destination = request.headers.get("Destination")
    if not destination:
        raise BadRequest("Destination header is mandatory for COPY.")
    if "://" in destination:  # CouchDB copies within one database only
        raise BadRequest("Destination URL must be relative.")
    target, _, query = destination.partition("?")
    target = unquote(target)
    db = open_db(name, design_write=target.startswith("_design/"))
    source = db.get(doc_id, _rev_param(), attachments_=True)
    doc = {k: v for k, v in source.items() if k not in ("_id", "_rev")}
    doc["_id"] = target
    target_rev = parse_qs(query).get("rev")
    if target_rev:
        doc["_rev"] = target_rev[0]
    return write_result(db.bulk_docs([doc], strict=True)[0], name)


def _read_related() -> tuple[dict, dict[str, bytes]]:
    """Split a multipart/related body: the document, then one part per ``follows`` attachment.

    Parts are matched by the ``filename`` of their ``Content-Disposition`` when they
    carry one (CouchDB's replicator sends it), else in the document's order.
    """
    found = multipart.parts(request.headers["Content-Type"], raw_body())
    doc = parse_json(found[0].data)
    if not isinstance(doc, dict):
        raise BadRequest("The first part must be a JSON document")
    names = [n for n, a in (doc.get("_attachments") or {}).items() if isinstance(a, dict) and a.get("follows")]
    if len(names) != len(found) - 1:
        raise BadRequest("multipart/related: attachment parts do not match the 'follows' attachments")
    named = [p.param("content-disposition", "filename") for p in found[1:]]
    if sorted(n for n in named if n) == sorted(names):
        return doc, {n: p.data for n, p in zip(named, found[1:]) if n}
    return doc, {n: p.data for n, p in zip(names, found[1:])}


def form_upload(name: str, doc_id: str) -> Response:
    """``POST /{db}/{docid}`` with multipart/form-data: attachments uploaded from an HTML form.

    The form's ``_rev`` names the revision to add them to (or ``_doc`` holds the whole
    document); each ``_attachments`` file field becomes an attachment named after its file.
    """
    referer = request.headers.get("Referer")  # CouchDB's guard against forms posted from other sites
    if referer is None:
        raise BadRequest("Referer header required.")
    if urlsplit(referer).netloc != request.host:
        raise BadRequest("Referer header must match host.")
    if request.mimetype != "multipart/form-data":
        raise BadContentType("Content-Type must be multipart/form-data")
    check_doc_id(doc_id)
    db = open_db(name, design_write=doc_id.startswith("_design/"))
    fields = multipart.parts(request.headers["Content-Type"], raw_body())
    by_name = {p.param("content-disposition", "name"): p for p in fields}
    if "_doc" in by_name:
        doc = parse_json(by_name["_doc"].data)
        if not isinstance(doc, dict):
            raise BadRequest("Document must be a JSON object")
        doc["_id"] = doc_id
    else:
        rev = by_name["_rev"].data.decode() if "_rev" in by_name else None
        doc = db.get(doc_id, rev) if rev else {"_id": doc_id}
    atts = doc.setdefault("_attachments", {})
    for part in fields:
        filename = part.param("content-disposition", "filename")
        if part.param("content-disposition", "name") == "_attachments" and filename:
            atts[check_attachment_name(filename)] = {
                "content_type": part.headers.get("content-type", "application/octet-stream"),
                "data": base64.b64encode(part.data).decode()}
    response = write_result(db.bulk_docs([doc], strict=True)[0], name)
    del response.headers["Location"]
    return response


def delete(name: str, doc_id: str) -> Response:
    """``DELETE /{db}/{docid}?rev=``: writes a tombstone."""
    db = open_db(name, design_write=doc_id.startswith("_design/"))
    rev = _rev_param()
    db.get(doc_id)  # as CouchDB: first 404 (missing or deleted) for a document that is not there
    if not rev:
        raise Conflict()
    result = db.bulk_docs([{"_id": doc_id, "_rev": rev, "_deleted": True}])[0]
    response = write_result(result, name)
    response.status_code = 200
    del response.headers["Location"]
    return response


def head(name: str, doc_id: str) -> Response:
    """``HEAD /{db}/{docid}``: the ETag only."""
    doc = open_db(name).get(doc_id, request.args.get("rev"))
    return Response(status=200, headers={"ETag": f'"{doc["_rev"]}"'}, content_type="application/json")


def local(name: str, local_id: str) -> Response:
    """``GET/PUT/DELETE /{db}/_local/{id}``: not replicated, no sequence."""
    db = open_db(name)
    if request.method in ("GET", "HEAD"):
        doc = db.get_local(local_id)
        if flag("revs"):
            doc["_revisions"] = {"start": 0, "ids": [doc["_rev"][2:]]}
        return respond(doc)
    if request.method == "DELETE":
        return respond(db.put_local(local_id, {"_rev": _rev_param()}, delete=True))
    doc = _json_doc()
    rev = _rev_param(doc.get("_rev"))
    if rev and "_rev" not in doc:
        doc["_rev"] = rev
    deleted = doc.get("_deleted") is True  # CouchDB: a PUT with _deleted deletes, 200 and rev 0-0
    return respond(db.put_local(local_id, doc), 200 if deleted else 201,
                   {"Location": location(name, "_local/" + local_id)})


def attachment_get(name: str, doc_id: str, att: str) -> Response:
    """``GET /{db}/{docid}/{name}``: the raw data, with ``Range`` support for resumed transfers."""
    stub, data = open_db(name).attachment(doc_id, att, request.args.get("rev"))
    etag = f'"{stub["digest"].removeprefix("md5-")}"'  # CouchDB: the base64 MD5, without "md5-"
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "must-revalidate",
               # shown where it is opened (a PDF in the browser's viewer), not saved as a download (issue 13)
               "Content-Disposition": "inline; filename*=UTF-8''" + quote(att, safe="")}
    if _not_modified(etag):
        return Response(status=304, headers=headers)
    span = _range(request.headers.get("Range"), len(data))
    if span is None:
        return Response(data, 200, headers, content_type=stub["content_type"])
    first, last = span
    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    return Response(data[first:last + 1], 206, headers, content_type=stub["content_type"])


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=first-last`` range, ``first-`` or ``-suffix``; None for no (or multiple) ranges."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[6:].strip().partition("-")
    try:
        if first_text == "":
            first, last = max(size - int(last_text), 0), size - 1
        else:
            first, last = int(first_text), min(int(last_text), size - 1) if last_text else size - 1
    except ValueError:
        return None
    if first > last or first >= size:
        raise RangeNotSatisfiable()
    return first, last


def attachment_put(name: str, doc_id: str, att: str) -> Response:
    """``PUT /{db}/{docid}/{name}?rev=``: add or replace one attachment."""
    check_attachment_name(att)
    db = open_db(name, design_write=doc_id.startswith("_design/"))
    doc = _current(db, doc_id)
    doc.setdefault("_attachments", {})[att] = {
        "content_type": request.headers.get("Content-Type", "application/octet-stream"),
        "data": base64.b64encode(raw_body()).decode(),
    }
    return write_result(db.bulk_docs([doc])[0], name, att)


def attachment_delete(name: str, doc_id: str, att: str) -> Response:
    """``DELETE /{db}/{docid}/{name}?rev=``."""
    db = open_db(name, design_write=doc_id.startswith("_design/"))
    doc = _current(db, doc_id)
    if att not in doc.get("_attachments", {}):
        raise NotFound("Document is missing attachment")
    del doc["_attachments"][att]
    response = write_result(db.bulk_docs([doc])[0], name)
    response.status_code = 200
    del response.headers["Location"]
    return response


def _current(db: Any, doc_id: str) -> dict:
    """The revision an attachment edit applies to: ``?rev=`` names it (any leaf, as in CouchDB).

    Without ``?rev=`` the document must not exist yet (or be deleted); the write
    itself refuses a revision that is not a leaf with 409.
    """
    rev = _rev_param()
    try:
        doc = db.get(doc_id, rev, attachments_=False) if rev else db.get(doc_id)
    except NotFound:
        if rev:  # CouchDB: a revision that is not there is 409 not_found
            raise Conflict("missing_rev", error="not_found") from None
        return {"_id": doc_id}
    if rev is None:
        raise Conflict()
    doc.pop("_deleted", None)
    return doc
