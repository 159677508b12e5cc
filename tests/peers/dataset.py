"""Revision trees written with ``new_edits: false`` on two sides, so that a sync merges them.

``SIDE_A`` and ``SIDE_B`` share some document ids with different branches: after
replicating both ways each side holds conflicts, deleted conflicts, a deleted winner,
and attachments (text and binary). ``expected_winners()`` names the winner CouchDB's
rule gives each merged document.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

Doc = dict[str, Any]

# Bytes that survive no text encoding: every byte value, then UTF-8 non-ASCII.
BINARY = bytes(range(256)) + "ünïcødé ид 日本".encode()
OCTETS = "application/octet-stream"
TEXT = b"Hello, kiosk!\nCell minutes attached.\n"


def rev_hash(label: str) -> str:
    """Return a stable 32-hex-digit revision id for a label."""
    return hashlib.md5(label.encode()).hexdigest()


def rev(path: list[str]) -> str:
    """Return the rev string of the leaf at the end of a path of labels."""
    return f"{len(path)}-{rev_hash(path[-1])}"


def leaf(doc_id: str, path: list[str], body: Doc | None = None, deleted: bool = False) -> Doc:
    """Return a document for ``new_edits: false``: a leaf with its whole ancestry.

    :param path: labels of the revisions from the root to the leaf.
    """
    doc: Doc = {"_id": doc_id, "_rev": rev(path), **(body or {})}
    doc["_revisions"] = {"start": len(path), "ids": [rev_hash(p) for p in reversed(path)]}
    if deleted:
        doc["_deleted"] = True
    return doc


def attachment(data: bytes, content_type: str, revpos: int) -> Doc:
    """Return an inline (base64) attachment."""
    return {"content_type": content_type, "data": base64.b64encode(data).decode(), "revpos": revpos}


SIDE_A: list[Doc] = [
    leaf("plain-a", ["pa1"], {"type": "note", "text": "only on A"}),
    leaf("history", ["h1", "h2", "h3"], {"type": "note", "version": 3}),
    leaf("conflict", ["c1", "ca2", "ca3"], {"who": "A", "n": 3}),
    leaf("deleted", ["d1", "d2"], deleted=True),
    leaf("deleted-conflict", ["x1", "xa2"], {"who": "A"}),
    leaf("all-deleted", ["z1", "za2"], deleted=True),
    leaf("att-text", ["t1"], {"_attachments": {"minutes.txt": attachment(TEXT, "text/plain", 1)}}),
    leaf("att-conflict", ["k1", "ka2"], {"_attachments": {"a.txt": attachment(b"side A", "text/plain", 2)}}),
]

SIDE_B: list[Doc] = [
    leaf("plain-b", ["pb1"], {"type": "note", "text": "only on B", "nested": {"list": [1, 2.5, None]}}),
    leaf("conflict", ["c1", "cb2"], {"who": "B", "n": 2}),
    leaf("conflict", ["c1", "cb2x"], {"who": "B'", "n": 2}),
    leaf("deleted-conflict", ["x1", "xb2", "xb3"], deleted=True),
    leaf("all-deleted", ["z1", "zb2"], deleted=True),
    leaf("att-binary", ["b1", "b2"], {"_attachments": {"photo.bin": attachment(BINARY, OCTETS, 2)}}),
    leaf("att-conflict", ["k1", "kb2"], {"_attachments": {"b.bin": attachment(BINARY, "image/png", 2)}}),
    leaf("unicode", ["u1"], {"text": "ünïcødé ид 日本語 \u2028 \"quoted\""}),
]

ALL_IDS = sorted({d["_id"] for d in SIDE_A + SIDE_B})


def expected_winners() -> dict[str, str]:
    """Return the winning rev of every document once both sides are merged."""
    leaves: dict[str, list[tuple[int, int, str]]] = {}
    for doc in SIDE_A + SIDE_B:
        generation = int(doc["_rev"].split("-")[0])
        key = (0 if doc.get("_deleted") else 1, generation, doc["_rev"])
        leaves.setdefault(doc["_id"], []).append(key)
    return {doc_id: max(keys)[2] for doc_id, keys in leaves.items()}
