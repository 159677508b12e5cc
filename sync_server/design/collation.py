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
import threading
from collections.abc import Callable
from typing import Any

import icu

_local = threading.local()
NULL, FALSE, TRUE, NUMBER, STRING, ARRAY, OBJECT = (bytes([b]) for b in range(1, 8))
END = b"\x00"
# Above every encoded value: an open end of a range (``endkey`` of ``{}`` in CouchDB idiom is an object).
HIGHEST = b"\xff"


def _collator() -> Any:
    coll = getattr(_local, "collator", None)
    if coll is None:  # ICU collators are not thread-safe: one per thread
        coll = _local.collator = icu.Collator.createInstance(icu.Locale.getRoot())
    return coll


def string_key(text: str) -> bytes:
    """The ICU root-collation sort key of a string (ends with 0x00)."""
    key = _collator().getSortKey(text)
    return key if key.endswith(END) else key + END


def _number(value: float) -> bytes:
    bits = struct.unpack(">Q", struct.pack(">d", float(value)))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return struct.pack(">Q", bits)


def encode(value: Any) -> bytes:
    """Sortable bytes of a JSON value in CouchDB's collation."""
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out += NULL
    elif value is False:
        out += FALSE
    elif value is True:
        out += TRUE
    elif isinstance(value, (int, float)):
        out += NUMBER + _number(value)
    elif isinstance(value, str):
        out += STRING + string_key(value)
    elif isinstance(value, list):
        out += ARRAY
        for item in value:
            _encode(item, out)
        out += END
    elif isinstance(value, dict):
        out += OBJECT
        for key, item in value.items():
            out += STRING + string_key(key)
            _encode(item, out)
        out += END
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


# Raw collation (a view's ``"options": {"collation": "raw"}``): Erlang's term order of the decoded JSON,
# numbers < false < null < true (atoms, alphabetically) < objects < arrays < strings (bytes), as CouchDB's
# couch_ejson_compare falls back to ``<`` on terms.
_RAW_NUMBER, _RAW_FALSE, _RAW_NULL, _RAW_TRUE, _RAW_OBJECT, _RAW_ARRAY, _RAW_STRING = (bytes([b]) for b in range(1, 8))
_MEMBER = b"\x01"  # before each object member, so a shorter member list (END) sorts first


def _raw_text(text: str) -> bytes:
    """UTF-8 bytes in byte order, self-delimiting: 0x00 escaped as 00 FF, ended by 00 00."""
    return text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def encode_raw(value: Any) -> bytes:
    """Sortable bytes of a JSON value in CouchDB's raw collation."""
    out = bytearray()
    _encode_raw(value, out)
    return bytes(out)


def _encode_raw(value: Any, out: bytearray) -> None:
    if value is None:
        out += _RAW_NULL
    elif value is False:
        out += _RAW_FALSE
    elif value is True:
        out += _RAW_TRUE
    elif isinstance(value, (int, float)):
        out += _RAW_NUMBER + _number(value)
    elif isinstance(value, str):
        out += _RAW_STRING + _raw_text(value)
    elif isinstance(value, list):
        out += _RAW_ARRAY
        for item in value:
            _encode_raw(item, out)
        out += END
    elif isinstance(value, dict):
        out += _RAW_OBJECT
        for key, item in value.items():
            out += _MEMBER + _raw_text(key)
            _encode_raw(item, out)
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
