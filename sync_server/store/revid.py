"""Revision ids derived exactly as Apache CouchDB derives them. No I/O here.

CouchDB (src/couch/src/couch_doc.erl ``new_revid/1``) hashes
``term_to_binary([Deleted, OldStart, OldRev, Body, Atts], [{minor_version, 1}])``
with MD5, where Body is the document's EJSON without its ``_`` members and Atts
is the list of ``{Name, Type, Md5}`` of its attachments, in reverse order.
Encoding the same Erlang terms here gives the same 32 hex digits, so a document
written here and in CouchDB gets the same revision and the same winner.
The external term format: https://www.erlang.org/doc/apps/erts/erl_ext_dist.html
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

_VERSION = b"\x83"
_SMALL_INTEGER, _INTEGER, _SMALL_BIG, _LARGE_BIG = 97, 98, 110, 111
_NEW_FLOAT, _ATOM, _SMALL_TUPLE, _NIL, _LIST, _BINARY = 70, 100, 104, 106, 108, 109


def new_revid(deleted: bool, old_pos: int, old_hash: str | None, body: dict[str, Any],
              atts: list[tuple[str, str, bytes]]) -> str:
    """The hex hash part of a new revision, as CouchDB computes it.

    :param old_hash: the parent's hash part (hex), or None for a first revision.
    :param atts: (name, content_type, raw md5) of each attachment, in document order.
    """
    old_rev: Any = 0 if old_hash is None else _rev_term(old_hash)
    term = [deleted, old_pos, old_rev, _Obj(body), [(_Bin(n), _Bin(t), m) for n, t, m in reversed(atts)]]
    return hashlib.md5(_VERSION + _encode(term)).hexdigest()


class _Obj:
    """An EJSON object ``{[{Key, Value}]}``."""

    __slots__ = ("value",)

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value


class _Bin:
    """A string that must be encoded as an Erlang binary."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


def _rev_term(old_hash: str) -> Any:
    # couch_doc:parse_revid/1 turns a 32-hex-digit id into its 16 raw bytes, else keeps the text.
    if len(old_hash) == 32:
        try:
            return bytes.fromhex(old_hash)
        except ValueError:
            pass
    return old_hash.encode()


def _encode(term: Any) -> bytes:
    """Encode one term (no version byte)."""
    if term is True or term is False or term is None:
        name = {True: b"true", False: b"false", None: b"null"}[term]
        return struct.pack(">BH", _ATOM, len(name)) + name
    if isinstance(term, int):
        return _encode_int(term)
    if isinstance(term, float):
        return struct.pack(">Bd", _NEW_FLOAT, term)
    if isinstance(term, (bytes, str, _Bin)):
        raw = term.value.encode() if isinstance(term, _Bin) else term.encode() if isinstance(term, str) else term
        return struct.pack(">BI", _BINARY, len(raw)) + raw
    if isinstance(term, dict):
        term = _Obj(term)
    if isinstance(term, _Obj):
        pairs = [(_Bin(k), v) for k, v in term.value.items()]
        return struct.pack(">BB", _SMALL_TUPLE, 1) + _encode(pairs)
    if isinstance(term, tuple):
        return struct.pack(">BB", _SMALL_TUPLE, len(term)) + b"".join(_encode(t) for t in term)
    if isinstance(term, list):
        if not term:
            return bytes([_NIL])
        return struct.pack(">BI", _LIST, len(term)) + b"".join(_encode(t) for t in term) + bytes([_NIL])
    raise TypeError(f"cannot encode {type(term).__name__} as an Erlang term")


def _encode_int(value: int) -> bytes:
    """Integers as Erlang encodes them: small, 32-bit, or bignum."""
    if 0 <= value <= 255:
        return struct.pack(">BB", _SMALL_INTEGER, value)
    if -(2**31) <= value < 2**31:
        return struct.pack(">Bi", _INTEGER, value)
    magnitude = abs(value)
    digits = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
    sign = 1 if value < 0 else 0
    if len(digits) < 256:
        return struct.pack(">BBB", _SMALL_BIG, len(digits), sign) + digits
    return struct.pack(">BIB", _LARGE_BIG, len(digits), sign) + digits
