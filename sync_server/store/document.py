"""Checks on incoming documents and the shapes of outgoing ones. No I/O here.

A stored revision body is the document without ``_id``, ``_rev`` and the other
special members, except ``_attachments``, which is kept as stubs
(``content_type``, ``digest``, ``length``, ``revpos``, ``stub``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from ..errors import BadRequest, InvalidDocId
from .revtree import parse_rev

# The special members CouchDB 3 accepts on a document (couch_doc:transfer_fields/3);
# anything else starting with "_" is a doc_validation error there too.
SPECIAL_MEMBERS = frozenset({
    "_id", "_rev", "_deleted", "_attachments", "_revisions", "_revs_info",
    "_conflicts", "_deleted_conflicts", "_local_seq",
})
# Special members CouchDB keeps in the body (per-document access, replicator documents).
BODY_MEMBERS = frozenset({
    "_access", "_replication_state", "_replication_state_time", "_replication_state_reason",
    "_replication_id", "_replication_stats",
})
# CouchDB sets no limit by default ([couchdb] max_document_id_length = infinity); ids are
# indexed here, so one is kept, far above any real id (PouchDB's tests use ids of 1.5 KB).
MAX_DOC_ID_BYTES = 8192
# Real documents are a few levels deep; this bound keeps hostile input from
# exhausting the stack of the parser, the hasher or the serializer.
MAX_DEPTH = 100
_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 text kept as is: orjson (C, about twenty times faster: every write
    stores a body and a tree), or the standard library for what orjson refuses (integers beyond
    64 bits, lone surrogates, keys that are not strings). Not-a-number and infinite floats never
    reach here from a client (``parse_json`` refuses them, as CouchDB does)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def check_doc_id(doc_id: object) -> str:
    """Return the id if CouchDB would accept it for a normal or design document.

    :raises InvalidDocId: for non-strings, empty ids and reserved ``_`` prefixes.
    """
    if not isinstance(doc_id, str):
        raise InvalidDocId("Document id must be a string")
    if not doc_id:
        raise InvalidDocId("Document id must not be empty")
    if doc_id.startswith("_") and not (doc_id.startswith("_design/") and len(doc_id) > 8):
        raise InvalidDocId("Only reserved document ids may start with underscore.")
    if "\x00" in doc_id or len(doc_id.encode()) > MAX_DOC_ID_BYTES:
        raise InvalidDocId("Document id is too long or holds a NUL character")
    return doc_id


def check_attachment_name(name: object) -> str:
    """Return the name if it is safe; refuse path tricks and control characters.

    :raises BadRequest: with CouchDB's reason for a leading underscore.
    """
    if not isinstance(name, str) or not name:
        raise BadRequest("Attachment name must be a non-empty string")
    if name.startswith("_"):
        raise BadRequest("Attachment name '_' cannot start with underscore")
    if any(c in _CONTROL for c in name) or "\\" in name or name.startswith("/"):
        raise BadRequest(f"Attachment name {name!r} holds a control character, a backslash or a leading slash")
    if any(part in (".", "..") for part in name.split("/")):
        raise BadRequest(f"Attachment name {name!r} holds a '.' or '..' path segment")
    return name


def check_members(doc: dict) -> None:
    """Refuse unknown special members and over-deep nesting.

    :raises BadRequest: error ``doc_validation`` as CouchDB names it.
    """
    for key in doc:
        if key.startswith("_") and key not in SPECIAL_MEMBERS and key not in BODY_MEMBERS:
            raise BadRequest(f"Bad special document member: {key}", error="doc_validation")
    if _depth(doc) > MAX_DEPTH:
        raise BadRequest(f"Document nests deeper than {MAX_DEPTH} levels", error="doc_validation")


def check_incoming(doc: object, new_edits: bool = True) -> dict:
    """Return the document if CouchDB would parse it; its own checks, with its messages.

    These are the checks CouchDB makes on every document of a request before it
    writes any (couch_doc:from_json_obj_validate/2, chttpd_db:validate_revs/2 and
    validate_attachment_names/1), so one failure there refuses a whole
    ``_bulk_docs`` request.

    :raises BadRequest: ``bad_request`` or ``doc_validation``; InvalidDocId.
    """
    if not isinstance(doc, dict):
        raise BadRequest("Document must be a JSON object")
    if "_id" in doc and not str(doc["_id"]).startswith("_local/"):
        check_doc_id(doc["_id"])
    if "_deleted" in doc and not isinstance(doc["_deleted"], bool):
        raise BadRequest("Bad special document member: _deleted", error="doc_validation")
    check_members(doc)
    revisions = doc.get("_revisions")
    if revisions is not None:
        _check_revisions(revisions)
    elif "_rev" in doc:
        parse_rev(doc["_rev"])
    elif not new_edits:
        raise BadRequest("When `new_edits: false`, the document needs `_rev` or `_revisions` specified")
    for name in doc.get("_attachments") or {} if isinstance(doc.get("_attachments"), dict) else {}:
        if name.startswith("_"):
            raise BadRequest(f"Attachment name '{name}' starts with prohibited character '_'")
    return doc


def _check_revisions(revisions: object) -> None:
    if not isinstance(revisions, dict) or not isinstance(revisions.get("start"), int) \
            or isinstance(revisions.get("start"), bool):
        raise BadRequest("_revisions.start isn't an integer.", error="doc_validation")
    if not isinstance(revisions.get("ids"), list):
        raise BadRequest("_revisions.ids isn't a array.", error="doc_validation")
    if not all(isinstance(i, str) for i in revisions["ids"]):
        raise BadRequest("RevId isn't a string", error="doc_validation")


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def body_of(doc: dict) -> dict:
    """The body of a document: everything not starting with ``_``, and the special members CouchDB keeps."""
    return {k: v for k, v in doc.items() if not k.startswith("_") or k in BODY_MEMBERS}


class RawJSON(str):
    """The JSON text of a value, sent as it is (the HTTP layer embeds it without parsing it again)."""

    __slots__ = ()


def splice(doc_id: str, rev: str, deleted: bool, body_json: str) -> str:
    """The JSON text of a document from its stored body, without parsing it."""
    head = '{"_id":' + json.dumps(doc_id, ensure_ascii=False) + ',"_rev":"' + rev + '"'
    if deleted:
        head += ',"_deleted":true'
    return head + "}" if body_json == "{}" else head + "," + body_json[1:]


def assemble(doc_id: str, rev: str, deleted: bool, body: dict) -> dict:
    """A document dict in CouchDB's member order: _id, _rev, fields, _attachments, _deleted."""
    doc: dict[str, Any] = {"_id": doc_id, "_rev": rev}
    doc.update(body)
    if "_attachments" in doc:
        doc["_attachments"] = doc.pop("_attachments")
    if deleted:
        doc["_deleted"] = True
    return doc
