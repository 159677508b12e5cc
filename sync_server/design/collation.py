"""CouchDB's view collation as sortable bytes, so SQLite orders view rows as CouchDB does.

Order (docs.couchdb.org "Views Collation"; couch_ejson_compare.erl): null < false <
true < numbers < strings < arrays < objects. Strings compare by the Unicode
Collation Algorithm as ICU's root collator does (``a`` < ``A`` < ``b``), arrays
element by element, objects key, then value, pair by pair; a shorter array or
object sorts first. Each value becomes a type byte and a self-delimiting body:

* number: IEEE-754 double, sign-flipped so bytes order as numbers;
* string: ICU sort key (it ends with its only 0x00 byte);
* array / object: the members' encodings, then 0x00 (less than any type byte).

Two strings ICU finds equal (canonically equivalent) get equal keys, as CouchDB
finds them equal.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from ..icu_collation import collator, version  # noqa: F401  (version: re-exported for views' _info)

NULL, FALSE, TRUE, NUMBER, STRING, ARRAY, OBJECT = (bytes([b]) for b in range(1, 8))
END = b"\x00"
# Above every encoded value: an open end of a range (``endkey`` of ``{}`` in CouchDB idiom is an object).
HIGHEST = b"\xff"


def string_key(text: str) -> bytes:
    """The ICU root-collation sort key of a string (ends with 0x00)."""
    key = collator().getSortKey(text)
    return key if key.endswith(END) else key + END


def _number(value: float) -> bytes:
    bits = struct.unpack(">Q", struct.pack(">d", float(value)))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return struct.pack(">Q", bits)


class _Scheme(NamedTuple):
    """Type bytes and string encoding of one collation."""

    null: bytes
    false: bytes
    true: bytes
    number: bytes
    string: bytes
    array: bytes
    object: bytes
    member: bytes  # before each object member's key
    text: Callable[[str], bytes]


def _raw_text(text: str) -> bytes:
    """UTF-8 bytes in byte order, self-delimiting: 0x00 escaped as 00 FF, ended by 00 00."""
    return text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + b"\x00\x00"


_ICU = _Scheme(NULL, FALSE, TRUE, NUMBER, STRING, ARRAY, OBJECT, STRING, string_key)
# Raw collation (a view's ``"options": {"collation": "raw"}``): Erlang's term order of the decoded JSON,
# numbers < false < null < true (atoms, alphabetically) < objects < arrays < strings (bytes), as CouchDB's
# couch_ejson_compare falls back to ``<`` on terms. 0x01 before each member: fewer members sort first.
_RAW = _Scheme(b"\x03", b"\x02", b"\x04", b"\x01", b"\x07", b"\x06", b"\x05", b"\x01", _raw_text)


def encode(value: Any) -> bytes:
    """Sortable bytes of a JSON value in CouchDB's collation."""
    out = bytearray()
    _encode(value, out, _ICU)
    return bytes(out)


def encode_raw(value: Any) -> bytes:
    """Sortable bytes of a JSON value in CouchDB's raw collation."""
    out = bytearray()
    _encode(value, out, _RAW)
    return bytes(out)


def _encode(value: Any, out: bytearray, scheme: _Scheme) -> None:
    if value is None:
        out += scheme.null
    elif value is False:
        out += scheme.false
    elif value is True:
        out += scheme.true
    elif isinstance(value, (int, float)):
        out += scheme.number + _number(value)
    elif isinstance(value, str):
        out += scheme.string + scheme.text(value)
    elif isinstance(value, list):
        out += scheme.array
        for item in value:
            _encode(item, out, scheme)
        out += END
    elif isinstance(value, dict):
        out += scheme.object
        for key, item in value.items():
            out += scheme.member + scheme.text(key)
            _encode(item, out, scheme)
        out += END
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


def encoder(view: Any) -> Callable[[Any], bytes]:
    """The key encoding of a view definition: raw when its ``options`` ask, CouchDB's collation otherwise."""
    options = view.get("options") if isinstance(view, dict) else None
    return encode_raw if isinstance(options, dict) and options.get("collation") == "raw" else encode


def group_prefix(key: Any, level: int | None) -> Any:
    """The key a row groups under at ``group_level`` (arrays cut to ``level`` items; None: exact)."""
    if level is not None and isinstance(key, list):
        return key[:level]
    return key
