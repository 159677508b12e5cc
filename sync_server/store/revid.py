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
import hmac
import struct
from typing import Any

_VERSION = b"\x83"
_SMALL_INTEGER, _INTEGER, _SMALL_BIG, _LARGE_BIG = 97, 98, 110, 111
_NEW_FLOAT, _ATOM, _SMALL_TUPLE, _NIL, _LIST, _BINARY = 70, 100, 104, 106, 108, 109


def new_revid(deleted: bool, old_pos: int, old_hash: str | None, body: dict[str, Any],
              atts: list[tuple[str, str, bytes]], key: bytes | None = None) -> str:
    """The hex hash part of a new revision, as CouchDB computes it.

    :param old_hash: the parent's hash part (hex), or None for a first revision.
    :param atts: (name, content_type, raw md5) of each attachment, in document order.
    :param key: with encryption at rest, a secret of the data key: the id is then HMAC-MD5 of
        the same bytes (same length and form), because a plain MD5 of the body lets anyone
        holding a copy of the data try each value a field may have (an attendance status, a
        birth year) until one gives the revision id kept in clear (issue #15).
    """
    old_rev: Any = 0 if old_hash is None else _rev_term(old_hash)
    term = [deleted, old_pos, old_rev, _Obj(body), [(_Bin(n), _Bin(t), m) for n, t, m in reversed(atts)]]
    if key is not None:
        return hmac.new(key, _VERSION + _encode(term), hashlib.md5).hexdigest()
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


_ATOMS = {True: b"d\x00\x04true", False: b"d\x00\x05false", None: b"d\x00\x04null"}
_NIL_BYTE = b"j"
_PAIR = b"h\x02"


def _encode(term: Any) -> bytes:
    """Encode one term (no version byte)."""
    out: list[bytes] = []
    _write(term, out)
    return b"".join(out)


def _binary(raw: bytes, out: list[bytes]) -> None:
    out.append(b"m" + len(raw).to_bytes(4, "big"))
    out.append(raw)


def _write(term: Any, out: list[bytes]) -> None:
    """Append the encoding of ``term``; dispatch on exact types, this runs for every field written."""
    kind = type(term)
    if kind is str:
        _binary(term.encode(), out)
    elif kind is dict or kind is _Obj:
        items = term.items() if kind is dict else term.value.items()
        out.append(b"h\x01")
        if not items:
            out.append(_NIL_BYTE)
            return
        out.append(b"l" + len(items).to_bytes(4, "big"))
        for key, value in items:
            out.append(_PAIR)
            _binary(key.encode(), out)
            _write(value, out)
        out.append(_NIL_BYTE)
    elif kind is list:
        if not term:
            out.append(_NIL_BYTE)
            return
        out.append(b"l" + len(term).to_bytes(4, "big"))
        for item in term:
            _write(item, out)
        out.append(_NIL_BYTE)
    elif term is True or term is False or term is None:
        out.append(_ATOMS[term])
    elif kind is int:
        out.append(_encode_int(term))
    elif kind is float:
        out.append(struct.pack(">Bd", _NEW_FLOAT, term))
    elif kind is bytes:
        _binary(term, out)
    elif kind is _Bin:
        _binary(term.value.encode(), out)
    elif kind is tuple:
        out.append(struct.pack(">BB", _SMALL_TUPLE, len(term)))
        for item in term:
            _write(item, out)
    elif isinstance(term, int):  # an int subclass other than bool
        out.append(_encode_int(int(term)))
    else:
        raise TypeError(f"cannot encode {kind.__name__} as an Erlang term")


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
