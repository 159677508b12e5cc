"""Attachments of a revision being written, and of a revision being read.

Binary data is stored once per digest (``md5-`` + base64 of the MD5, as CouchDB
reports it) in the ``atts`` table; revision bodies hold only stubs.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import sqlite3
import zlib
from typing import Any

from ..errors import BadRequest, PreconditionFailed
from .crypto import Cipher
from .document import check_attachment_name


def digest_of(data: bytes) -> str:
    """CouchDB's digest string for attachment data."""
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


def md5_of_digest(digest: str) -> bytes:
    """The raw MD5 bytes inside a ``md5-`` digest (for revision ids)."""
    return base64.b64decode(digest[4:]) if digest.startswith("md5-") else b""


def _aad(digest: str) -> bytes:
    return b"att\0" + digest.encode()


def store_blob(conn: sqlite3.Connection, data: bytes, cipher: Cipher | None = None) -> str:
    """Keep data once per digest (encrypted when there is a cipher) and return the digest."""
    digest = digest_of(data)
    if cipher is None:
        conn.execute("INSERT OR IGNORE INTO atts (digest, length, data) VALUES (?, ?, ?)", (digest, len(data), data))
    elif conn.execute("SELECT 1 FROM atts WHERE digest = ?", (digest,)).fetchone() is None:  # seal only new data
        conn.execute("INSERT INTO atts (digest, length, data) VALUES (?, ?, ?)",
                     (digest, len(data), cipher.seal(data, _aad(digest))))
    return digest


def prepare(conn: sqlite3.Connection, doc_id: str, atts: object, known: list[dict], revpos: int | None,
            follows: dict[str, bytes] | None = None, cipher: Cipher | None = None) -> dict[str, dict]:
    """Turn a document's ``_attachments`` into stored stubs.

    :param known: ``_attachments`` of earlier revisions to resolve stubs against, nearest first.
    :param revpos: the revpos given to new data (None: keep the one the peer sent).
    :raises BadRequest: for malformed attachments; PreconditionFailed ``missing_stub``.
    """
    if not isinstance(atts, dict):
        raise BadRequest("_attachments must be an object")
    stubs: dict[str, dict] = {}
    for name, att in atts.items():
        check_attachment_name(name)
        if not isinstance(att, dict):
            raise BadRequest(f"Attachment {name} must be an object")
        if att.get("stub"):
            stubs[name] = _resolve_stub(doc_id, name, att, known)
            continue
        data = _data_of(name, att, follows)
        stubs[name] = {
            "content_type": att.get("content_type") or "application/octet-stream",
            "digest": store_blob(conn, data, cipher),
            "length": len(data),
            "revpos": revpos if revpos is not None else _int(att.get("revpos"), 1),
            "stub": True,
        }
    return stubs


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _data_of(name: str, att: dict, follows: dict[str, bytes] | None) -> bytes:
    """Decode inline base64 data, or take the body part that follows a multipart document.

    Data sent ``"encoding": "gzip"`` is stored decoded: CouchDB's replicator pushes the text
    attachments CouchDB keeps gzip-encoded that way (``att_encoding_info``), in a multipart PUT.
    """
    if att.get("follows"):
        if follows is None or name not in follows:
            raise BadRequest(f"Attachment {name} follows but its part is missing")
        data = follows[name]
    else:
        text = att.get("data")
        if not isinstance(text, str):
            raise BadRequest(f"Attachment {name} has neither data nor stub")
        text = "".join(text.split())  # Erlang's base64 skips white space and wants the padding
        try:
            if len(text) % 4:
                raise ValueError(text)
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"Invalid attachment data for {name}") from None
    encoding = att.get("encoding")
    if encoding in (None, "identity"):
        return data
    if encoding != "gzip":
        raise BadRequest(f"Attachment {name}: unknown encoding {encoding!r}")
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        raise BadRequest(f"Attachment {name} says gzip but does not decode") from None


def _resolve_stub(doc_id: str, name: str, att: dict, known: list[dict]) -> dict:
    """Find a stub's attachment in an earlier revision as CouchDB does (couch_att:merge_stubs):
    by name, with the same ``revpos`` when the stub gives one.

    Digests are not compared: CouchDB stores compressible types (text, JSON, XML) gzip-encoded
    and its digest is the MD5 of the encoded bytes, ours the MD5 of the content, so the same
    attachment has a different digest on each side. A stub whose name is unknown but whose
    digest matches (a peer that renamed it) is still taken.
    """
    digest, revpos = att.get("digest"), att.get("revpos")
    for atts in known:
        found = atts.get(name)
        if found and (revpos is None or found.get("revpos") == revpos or digest == found["digest"]):
            return dict(found)
    for atts in known:  # a renamed peer stub: match by digest alone
        for found in atts.values():
            if digest is not None and found["digest"] == digest:
                return dict(found)
    raise PreconditionFailed(f"Invalid attachment stub in {doc_id} for {name}", error="missing_stub")


def for_revid(stubs: dict[str, dict]) -> list[tuple[str, str, bytes]]:
    """(name, type, raw md5) per attachment, the input CouchDB hashes into a revision id."""
    return [(n, s["content_type"], md5_of_digest(s["digest"])) for n, s in stubs.items()]


def expand(conn: sqlite3.Connection, stubs: dict[str, dict], since_pos: int | None,
           cipher: Cipher | None = None) -> dict[str, dict]:
    """Inline the data of attachments newer than ``since_pos`` (all when 0), stubs for the rest."""
    out: dict[str, Any] = {}
    for name, stub in stubs.items():
        if since_pos is not None and stub["revpos"] > since_pos:
            out[name] = {
                "content_type": stub["content_type"], "revpos": stub["revpos"],
                "digest": stub["digest"], "data": base64.b64encode(blob(conn, stub["digest"], cipher)).decode(),
            }
        else:
            out[name] = dict(stub)
    return out


def blob(conn: sqlite3.Connection, digest: str, cipher: Cipher | None = None) -> bytes:
    """The stored data of one digest (decrypted when there is a cipher)."""
    row = conn.execute("SELECT data FROM atts WHERE digest = ?", (digest,)).fetchone()
    if row is None:
        raise PreconditionFailed(f"attachment data {digest} is missing", error="missing_stub")
    return cipher.open(bytes(row[0]), _aad(digest)) if cipher is not None else bytes(row[0])


def seal_all(conn: sqlite3.Connection, cipher: Cipher) -> int:
    """Encrypt every attachment of a database that was stored in clear; returns how many."""
    digests = [d for (d,) in conn.execute("SELECT digest FROM atts")]
    for digest in digests:
        (data,) = conn.execute("SELECT data FROM atts WHERE digest = ?", (digest,)).fetchone()
        conn.execute("UPDATE atts SET data = ? WHERE digest = ?", (cipher.seal(bytes(data), _aad(digest)), digest))
    return len(digests)
