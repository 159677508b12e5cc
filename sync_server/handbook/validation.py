"""Check a document against ``schemas/<type>.schema.json`` and the rules a schema cannot state.

:func:`validate` runs on every write of a live document (``policy.py`` calls it from the
store), so each schema is read, checked and compiled once, on first use. A rejection is
:class:`~sync_server.errors.Forbidden` (403 ``forbidden``): replicators count it as "denied"
and carry on. Its reason names the type, the field and the rule, e.g.
``meeting: 'status' must be one of scheduled, held, cancelled``.

What is checked:

* documents without a ``type`` member, design and ``_local`` documents, and deleted
  documents (``_deleted: true``) are not checked; an unknown ``type`` is refused;
* the schema, with ``date-time`` (RFC 3339, offset required) and ``date`` (``YYYY-MM-DD``)
  checked by this module (jsonschema only checks ``date-time`` when ``rfc3339-validator``
  is installed), and ``pattern`` anchored the ECMA-262 way (a final ``$`` does not match
  before a trailing newline, as Python's does);
* then the cross-field rules of MODEL.md: the ``cell`` field is the cell code inside
  ``_id``; a minutes ``_id`` is ``"minutes:" + meeting``; an attendance ``_id`` carries its
  ``meeting`` and its member's number; member references stay inside the cell; a unit's
  ``parent`` is its code without the last part.

No network: ``$ref`` resolves only among the schemas in ``SCHEMA_DIR``. Speed: each schema is
also compiled into a happy-path predicate (``fastcheck.py``) that is True only for certainly
valid documents (about 8 us per document); anything else goes through jsonschema, whose
errors give the reasons. Inside jsonschema a member whose subschema holds only simple
keywords is checked in place rather than through ``descend()``.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import referencing
import referencing.jsonschema
from jsonschema import FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend, validator_for

from schemas import DOCUMENT_TYPES, SCHEMA_DIR

from ..errors import Forbidden
from .fastcheck import compile_schema

__all__ = ["DOCUMENT_TYPES", "SCHEMA_DIR", "load_schema", "validate", "validate_hierarchy_row"]

SCHEMA_NAMES = (*DOCUMENT_TYPES, "hierarchy")
# Values quoted in a reason are cut to this many characters: a reason is one log line.
SHOWN_CHARS = 80

# -- formats ------------------------------------------------------------------------

FORMAT_CHECKER = FormatChecker(formats=())
# RFC 3339 section 5.6 date-time; T and Z may be lower case there. re.ASCII: \d is 0-9 only.
_DATE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d+)?"
                        r"(?:[Zz]|([+-])(\d\d):(\d\d))", re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)", re.ASCII)
_FORMAT_HINTS = {"date-time": "date-time (RFC 3339 with an offset, e.g. 2026-12-03T19:30:00+07:00)",
                 "date": "date (YYYY-MM-DD)"}


def _is_day(year: str, month: str, day: str) -> bool:
    try:
        datetime.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


@FORMAT_CHECKER.checks("date")
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings
    match = _DATE.fullmatch(value)
    return match is not None and _is_day(*match.groups())


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.fullmatch(value)
    if not match or not _is_day(*match.group(1, 2, 3)):
        return False
    hour, minute, second = (int(part) for part in match.group(4, 5, 6))
    sign, off_hour, off_minute = match.group(7, 8, 9)
    offset = 0
    if sign:
        if int(off_hour) > 23 or int(off_minute) > 59:
            return False
        offset = (int(off_hour) * 60 + int(off_minute)) * (1 if sign == "+" else -1)
    if hour > 23 or minute > 59 or second > 60:
        return False
    # A leap second exists only at 23:59:60 UTC (RFC 3339 section 5.7).
    return second < 60 or (hour * 60 + minute - offset) % 1440 == 23 * 60 + 59


# -- schemas --------------------------------------------------------------------------


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, its final ``$`` made to match only at the very end (ECMA-262)."""
    body = pattern[:-1]
    escaped = (len(body) - len(body.rstrip("\\"))) % 2 == 1  # an odd run of backslashes escapes the "$"
    if pattern.endswith("$") and not escaped:
        pattern = body + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Keywords whose checks read only their own value and the instance, never the validator's
# schema or resolver: a subschema made of these alone can be checked with the parent
# validator. descend() builds a new validator and resource per subschema, which costs two
# thirds of the time of a typical document; it now runs only to report an error.
_LEAF_KEYWORDS = frozenset({"type", "enum", "const", "pattern", "format", "minLength", "maxLength",
                            "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                            "title", "description", "$comment", "examples", "default"})
_leaf_cache: dict[int, tuple[dict, list[tuple[Any, Any]] | None]] = {}


def _leaf_checks(validator: Any, schema: Any) -> list[tuple[Any, Any]] | None:
    """The (keyword function, value) pairs of a leaf subschema, or None when it is not one."""
    cached = _leaf_cache.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    checks = None
    if isinstance(schema, dict) and schema.keys() <= _LEAF_KEYWORDS:
        checks = [(validator.VALIDATORS[k], v) for k, v in schema.items() if k in validator.VALIDATORS]
    _leaf_cache[id(schema)] = (schema, checks)  # keeps the schema alive, so its id stays its own
    return checks


def _passes(validator: Any, schema: Any, instance: Any) -> bool:
    """True when ``schema`` is a leaf subschema that ``instance`` satisfies."""
    checks = _leaf_checks(validator, schema)
    return checks is not None and not any(
        next(iter(check(validator, value, instance, schema) or ()), None) is not None for check, value in checks)


def _properties(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterator[ValidationError]:
    """``properties``, with valid leaf members checked in place instead of through descend()."""
    if not isinstance(instance, dict):
        return
    for name, subschema in properties.items():
        if name in instance and not _passes(validator, subschema, instance[name]):
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)


def _items_keyword(base: Any) -> Any:
    """``items``, short-cut when every item satisfies a leaf schema; otherwise ``base`` (jsonschema's own)."""

    def items(validator: Any, items: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
        if (isinstance(instance, list) and "prefixItems" not in schema
                and all(_passes(validator, items, item) for item in instance)):
            return
        yield from base(validator, items, instance, schema)

    return items


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of ``SCHEMA_DIR/<name>.schema.json``.

    :param name: a document type, or ``"hierarchy"``.
    :raises ValueError: for any other name.
    """
    if name not in SCHEMA_NAMES:
        raise ValueError(f"no schema named {name!r} (one of {', '.join(SCHEMA_NAMES)})")
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return schema


@functools.cache
def _registry() -> referencing.Registry[Any]:
    """Our schemas by ``$id``; with no ``retrieve`` function, any other ``$ref`` fails instead of fetching."""
    resources = [referencing.jsonschema.DRAFT202012.create_resource(load_schema(name)) for name in SCHEMA_NAMES]
    return referencing.Registry().with_resources((str(res.id()), res) for res in resources)


@functools.cache
def _validator(name: str) -> Any:
    """The compiled validator of one schema, built once (the schema is checked against its meta-schema)."""
    schema = load_schema(name)
    cls = validator_for(schema)
    cls.check_schema(schema)
    compiled = extend(cls, {"pattern": _pattern, "properties": _properties,
                            "items": _items_keyword(cls.VALIDATORS["items"])})
    return compiled(schema, registry=_registry(), format_checker=FORMAT_CHECKER)


# -- reasons ----------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
               "array": "an array", "object": "an object", "null": "null"}


def _describe(error: ValidationError) -> str:
    """One reason for one schema error: the field as a /-separated path, and the rule."""
    path = "/".join(str(part) for part in error.absolute_path)
    field, keyword, rule, value = f"'{path}'", error.validator, error.validator_value, error.instance
    if keyword == "required":
        missing = next(name for name in rule if name not in value)
        return f"missing required field '{path + '/' if path else ''}{missing}'"
    if keyword == "additionalProperties":
        known = error.schema.get("properties", {})
        patterns = [_regex(p) for p in error.schema.get("patternProperties", {})]
        extra = sorted(k for k in value if k not in known and not any(p.search(k) for p in patterns))
        return f"unknown field '{path + '/' if path else ''}{extra[0]}'"
    if keyword == "enum":
        return f"{field} must be one of {', '.join(_show(v) for v in rule)}"
    if keyword == "const":
        return f"{field} must be {_show(rule)}"
    if keyword == "type":
        kinds = [rule] if isinstance(rule, str) else rule
        return f"{field} must be {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}"
    if keyword == "pattern":
        return f"{field} ({_show(value)}) does not match {rule}"
    if keyword == "format":
        return f"{field} ({_show(value)}) is not a valid {_FORMAT_HINTS.get(rule, rule)}"
    if keyword in ("minLength", "minItems") and rule == 1:
        return f"{field} must not be empty"
    if keyword == "minLength":
        return f"{field} is shorter than {rule} characters"
    if keyword == "maxLength":
        return f"{field} is longer than {rule} characters"
    if keyword == "minItems":
        return f"{field} has fewer than {rule} items"
    if keyword == "maxItems":
        return f"{field} has more than {rule} items"
    if keyword == "uniqueItems":
        repeated = next(item for index, item in enumerate(value) if item in value[:index])
        return f"{field} must not repeat items ({_show(repeated)} appears twice)"
    if keyword == "minimum":
        return f"{field} ({_show(value)}) must be at least {rule}"
    if keyword == "maximum":
        return f"{field} ({_show(value)}) must be at most {rule}"
    return f"{field or 'the document'}: {error.message}"


# -- rules across fields (run only on schema-valid documents, so the ids parse) ----------


def _same_cell(doc: dict, id_cell: str) -> Iterator[str]:
    if doc["cell"] != id_cell:
        yield f"'cell' ({_show(doc['cell'])}) does not match the cell in _id ({id_cell})"


def _member_in_cell(doc: dict, field: str, id_cell: str) -> Iterator[str]:
    """A member reference (``member:<cell>:<member_no>``) must point inside the cell that owns the document."""
    if field in doc and doc[field].split(":")[1] != id_cell:
        yield f"'{field}' ({_show(doc[field])}) is not a member of cell {id_cell}"


def _unit_problems(doc: dict) -> Iterator[str]:
    id_code = doc["_id"].partition(":")[2]
    if doc["code"] != id_code:
        yield f"'code' ({doc['code']}) does not match the code in _id ({id_code})"
    yield from _parent_problems(doc)


def _parent_problems(row: dict) -> Iterator[str]:
    # The schema ties the number of parts to the level, so only the prefix can be wrong here.
    expected = row["code"].rpartition(".")[0] or None
    if row["parent"] != expected:
        yield f"'parent' ({_show(row['parent'])}) does not match the parent in 'code' ({expected})"


def _member_problems(doc: dict) -> Iterator[str]:
    _, id_cell, id_number = doc["_id"].split(":")
    yield from _same_cell(doc, id_cell)
    if doc["member_no"] != id_number:
        yield f"'member_no' ({doc['member_no']}) does not match the member_no in _id ({id_number})"


def _device_problems(doc: dict) -> Iterator[str]:
    id_cell = doc["_id"].split(":")[1]
    yield from _same_cell(doc, id_cell)
    yield from _member_in_cell(doc, "member", id_cell)


def _meeting_problems(doc: dict) -> Iterator[str]:
    yield from _same_cell(doc, doc["_id"].split(":")[1])


def _minutes_problems(doc: dict) -> Iterator[str]:
    id_meeting = doc["_id"].partition(":")[2]
    id_cell = id_meeting.split(":")[1]
    yield from _same_cell(doc, id_cell)
    if doc["meeting"] != id_meeting:
        yield f"'meeting' ({doc['meeting']}) does not match the meeting in _id ({id_meeting})"
    yield from _member_in_cell(doc, "secretary", id_cell)


def _attendance_problems(doc: dict) -> Iterator[str]:
    _, *meeting_parts, number = doc["_id"].split(":")
    id_meeting = ":".join(meeting_parts)
    id_cell = meeting_parts[1]
    yield from _same_cell(doc, id_cell)
    if doc["meeting"] != id_meeting:
        yield f"'meeting' ({doc['meeting']}) does not match the meeting in _id ({id_meeting})"
    if doc["member"] != f"member:{id_cell}:{number}":
        yield f"'member' ({doc['member']}) does not match the member in _id (member:{id_cell}:{number})"
    yield from _member_in_cell(doc, "marked_by", id_cell)


def _feedback_problems(doc: dict) -> Iterator[str]:
    id_cell = doc["_id"].split(":")[1]
    yield from _same_cell(doc, id_cell)
    yield from _member_in_cell(doc, "member", id_cell)


def _reading_problems(doc: dict) -> Iterator[str]:
    _, id_cell, id_date, _ = doc["_id"].split(":")
    yield from _same_cell(doc, id_cell)
    if doc["date"] != id_date:
        yield f"'date' ({doc['date']}) does not match the date in _id ({id_date})"


def _pem_names(doc: dict, field: str) -> list[str] | None:
    """The DNS names a PEM request (``csr``) or certificate chain's first certificate (``chain``) is for; None: unreadable."""
    from cryptography import x509

    try:
        if field == "csr":
            item: Any = x509.load_pem_x509_csr(doc[field].encode("ascii"))
        else:
            item = x509.load_pem_x509_certificate(doc[field].encode("ascii"))
        san = item.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    return [str(name) for name in san.get_values_for_type(x509.DNSName)]


def _tls_problems(field: str) -> Any:
    def problems(doc: dict) -> Iterator[str]:
        yield from _same_cell(doc, doc["_id"].split(":")[1])
        names = _pem_names(doc, field)
        if names is None:
            yield f"'{field}' is not a readable PEM {'request' if field == 'csr' else 'certificate'} with a DNS name"
        elif names != [doc["name"]]:
            yield f"'{field}' is for {', '.join(names) or 'no name'}, not for 'name' ({doc['name']})"
    return problems


def _no_problems(doc: dict) -> Iterator[str]:
    yield from ()


_CROSS_FIELD = {
    "unit": _unit_problems, "member": _member_problems, "device": _device_problems,
    "meeting": _meeting_problems, "minutes": _minutes_problems, "attendance": _attendance_problems,
    "feedback": _feedback_problems, "reading": _reading_problems, "article": _no_problems, "hierarchy": _parent_problems,
    "cert_request": _tls_problems("csr"), "certificate": _tls_problems("chain"),
}


@functools.cache
def _happy_path(name: str) -> Any:
    """The compiled check that answers True only for certainly valid documents (fastcheck.py)."""
    return compile_schema(load_schema(name), _regex, {"date": _is_date, "date-time": _is_date_time})


def _check(name: str, instance: dict) -> None:
    if not _happy_path(name)(instance):
        error = best_match(_validator(name).iter_errors(instance))
        if error is not None:
            raise Forbidden(f"{name}: {_describe(error)}")
    problem = next(_CROSS_FIELD[name](instance), None)
    if problem is not None:
        raise Forbidden(f"{name}: {problem}")


# -- public ---------------------------------------------------------------------------------


def validate(doc: dict) -> None:
    """Check a document about to be written against the schema of its ``type``.

    Documents without ``type``, design and ``_local`` documents and deleted ones pass unchecked.

    :raises Forbidden: for an unknown ``type`` or a broken rule; the reason names the type,
        the field and the rule.
    """
    if "type" not in doc or doc.get("_deleted") is True:
        return
    doc_id = doc.get("_id")
    if isinstance(doc_id, str) and doc_id.startswith(("_design/", "_local/")):
        return
    kind = doc["type"]
    if not isinstance(kind, str) or kind not in DOCUMENT_TYPES:
        raise Forbidden(f"unknown document type {_show(kind)!r}" if isinstance(kind, str)
                        else f"unknown document type {_show(kind)}")
    _check(kind, doc)


def validate_hierarchy_row(row: dict) -> None:
    """Check one row of the hierarchy file (code, name, level, parent) as a JSON object.

    :raises Forbidden: with a reason starting ``hierarchy:``.
    """
    _check("hierarchy", row)
