"""Signed handbook content: Ed25519 over the RFC 8785 canonical JSON of an article.

Why RFC 8785 (JSON Canonicalization Scheme): the article travels as JSON through
CouchDB, PouchDB and this server, each of which may reorder members or re-print
numbers; JCS defines one byte string per JSON value (sorted members, no
whitespace, ECMAScript number printing), so the signature survives every hop
and another implementation (a JavaScript kiosk client, say) can check it.

What is signed: the article without CouchDB's ``_`` members except ``_id``
(so a signature cannot be moved to another article), with ``signature``
minus its ``sig`` (so the algorithm, key id and attachment hashes are covered
too). Attachments are covered by SHA-256 of their data, listed in
``signature.attachments``: CouchDB's own ``md5-`` digests are not collision
resistant. No I/O here except reading and writing key files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import Forbidden, StartupError
from ..private_file import write_atomic

ALG = "Ed25519"


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a value, as UTF-8 bytes."""
    return _jcs(value).encode("utf-8")


def _jcs(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        # members sorted by their UTF-16 code units (RFC 8785 section 3.2.3)
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _jcs(v) for k, v in items) + "}"
    raise TypeError(f"cannot canonicalize {type(value).__name__}")


def _number(value: float) -> str:
    """ECMAScript Number.prototype.toString, which RFC 8785 prescribes."""
    if not math.isfinite(value):
        raise ValueError("NaN and Infinity have no JSON form")
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    if -7 < exponent < 0:  # ECMAScript prints 1e-6 .. 1e-1 in decimal, Python from 1e-5 in exponent form
        sign, digits = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
        return f"{sign}0.{'0' * (-exponent - 1)}{digits.replace('.', '')}"
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent)}"


def attachment_hash(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def payload(doc: dict) -> bytes:
    """The bytes that are signed for an article."""
    body = {k: v for k, v in doc.items() if not k.startswith("_") or k == "_id"}
    signature = dict(body.get("signature") or {})
    signature.pop("sig", None)
    body["signature"] = signature
    return canonical(body)


def sign(doc: dict, key: Ed25519PrivateKey, key_id: str, attachments: dict[str, bytes]) -> dict:
    """A copy of the article with its ``signature`` filled in.

    :param attachments: the data of every attachment the article carries, by name.
    """
    signed = dict(doc)
    signed["signature"] = {"alg": ALG, "key_id": key_id,
                           "attachments": {name: attachment_hash(data) for name, data in sorted(attachments.items())}}
    sig = key.sign(payload(signed))
    signed["signature"]["sig"] = base64.urlsafe_b64encode(sig).decode().rstrip("=")
    return signed


def verify(doc: dict, public_keys: dict[str, str], attachments: dict[str, bytes] | None = None) -> None:
    """Check an article's signature and, when given, its attachments' data.

    :param public_keys: key id -> base64 of the raw 32-byte Ed25519 public key.
    :raises Forbidden: naming what does not verify.
    """
    signature = doc.get("signature")
    if not isinstance(signature, dict) or not signature.get("sig"):
        raise Forbidden(f"article {doc.get('_id')}: not signed")
    if signature.get("alg") != ALG:
        raise Forbidden(f"article {doc.get('_id')}: unsupported signature algorithm {signature.get('alg')!r}")
    encoded = public_keys.get(str(signature.get("key_id")))
    if encoded is None:
        raise Forbidden(f"article {doc.get('_id')}: signed with unknown key {signature.get('key_id')!r}")
    try:
        sig = base64.urlsafe_b64decode(signature["sig"] + "=" * (-len(signature["sig"]) % 4))
        public_key(encoded).verify(sig, payload(doc))
    except (InvalidSignature, ValueError):
        raise Forbidden(f"article {doc.get('_id')}: signature does not verify") from None
    if attachments is not None:
        _check_attachments(doc, signature.get("attachments") or {}, attachments)


def _check_attachments(doc: dict, listed: dict[str, str], attachments: dict[str, bytes]) -> None:
    if set(listed) != set(attachments):
        raise Forbidden(f"article {doc.get('_id')}: attachments differ from the signed list")
    for name, data in attachments.items():
        if attachment_hash(data) != listed[name]:
            raise Forbidden(f"article {doc.get('_id')}: attachment {name} does not match its signed hash")


def public_key(encoded: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes."""
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded))


def public_text(key: Ed25519PrivateKey) -> str:
    """Base64 of the raw public key, as config.yaml lists it."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def create_key(directory: str | Path, key_id: str) -> tuple[Path, str]:
    """Write a new private key (PEM, mode 0600) as ``<key_id>.pem``; return its path and public text."""
    path = Path(directory) / f"{key_id}.pem"
    if path.exists():
        raise StartupError(f"{path} exists already: choose another key id")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, pem, private=True, exclusive=True)  # whole or absent, even after a crash
    except FileExistsError:
        raise StartupError(f"{path} exists already: choose another key id") from None
    return path, public_text(key)


def load_key(path: str | Path) -> Ed25519PrivateKey:
    """Read a private key written by ``create_key``."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise StartupError(f"{path}: cannot read the signing key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise StartupError(f"{path}: not an Ed25519 key")
    return key
