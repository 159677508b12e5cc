"""A compiled happy path for JSON Schema: True only when a document is certainly valid.

``validation.py`` asks this first on every write; when it answers False (a
document that may be invalid, or a schema keyword it does not know), the full
jsonschema validator runs and words the error. So this must be sound, never
complete: it returns True only where jsonschema would find no error, and
otherwise False. ``tests/schemas/test_fastcheck.py`` compares the two on every
example and on mutated documents. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({"description", "title", "$comment", "$schema", "$id", "examples", "default"})
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: type(v) is str,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "integer": lambda v: type(v) is int or (type(v) is float and v.is_integer()),
    "number": lambda v: type(v) in (int, float),
}


class Unsupported(Exception):
    """A keyword this compiler does not handle: the schema always takes the slow path."""


def compile_schema(schema: Any, regex: Callable[[str], re.Pattern[str]],
                   formats: dict[str, Callable[[Any], bool]]) -> Check:
    """A predicate that is True only for instances valid under ``schema``."""
    try:
        return _compile(schema, regex, formats)
    except Unsupported:
        return lambda instance: False


def _compile(schema: Any, regex: Any, formats: dict[str, Any]) -> Check:
    if schema is True:
        return lambda v: True
    if not isinstance(schema, dict):
        raise Unsupported(str(schema))
    found = [_keyword(k, v, schema, regex, formats) for k, v in schema.items() if k not in _ANNOTATIONS]
    checks = [c for c in found if c is not None]
    return lambda v: all(check(v) for check in checks)


def _keyword(key: str, value: Any, schema: dict, regex: Any, formats: dict[str, Any]) -> Check | None:
    simple = _simple(key, value, regex, formats)
    if simple is not None:
        return simple
    if key in ("properties", "patternProperties", "additionalProperties"):
        return _object_keyword(key, schema, regex, formats)
    if key == "items":
        item = _compile(value, regex, formats)
        return lambda v: type(v) is not list or all(item(x) for x in v)
    if key == "allOf":
        subs = [_compile(s, regex, formats) for s in value]
        return lambda v: all(s(v) for s in subs)
    if key == "if":
        condition = _compile(value, regex, formats)
        then = _compile(schema.get("then", True), regex, formats)
        otherwise = _compile(schema.get("else", True), regex, formats)
        return lambda v: then(v) if condition(v) else otherwise(v)
    if key in ("then", "else"):
        return None  # handled with "if"
    raise Unsupported(key)


def _simple(key: str, value: Any, regex: Any, formats: dict[str, Any]) -> Check | None:
    """Keywords that look at one value only."""
    if key == "type":
        kinds = [_TYPES[t] for t in ([value] if isinstance(value, str) else value)]
        return lambda v: any(k(v) for k in kinds)
    if key in ("const", "enum"):
        allowed = [value] if key == "const" else value
        if not all(type(a) in (str, bool) or a is None for a in allowed):
            raise Unsupported(key)
        pairs = {(type(a), a) for a in allowed}
        return lambda v: (type(v), v) in pairs if type(v) in (str, bool) or v is None else False
    if key == "pattern":
        compiled = regex(value)
        return lambda v: type(v) is not str or compiled.search(v) is not None
    if key == "format":
        conforms = formats.get(value)
        return (lambda v: conforms(v)) if conforms else None
    return _bounds(key, value)


def _bounds(key: str, value: Any) -> Check | None:
    if key == "minLength":
        return lambda v: type(v) is not str or len(v) >= value
    if key == "maxLength":
        return lambda v: type(v) is not str or len(v) <= value
    if key == "minItems":
        return lambda v: type(v) is not list or len(v) >= value
    if key == "maxItems":
        return lambda v: type(v) is not list or len(v) <= value
    if key == "maxProperties":
        return lambda v: type(v) is not dict or len(v) <= value
    if key == "minimum":
        return lambda v: type(v) not in (int, float) or v >= value
    if key == "maximum":
        return lambda v: type(v) not in (int, float) or v <= value
    if key == "required":
        return lambda v: type(v) is not dict or all(name in v for name in value)
    if key == "uniqueItems":
        # only lists of strings are decided here (jsonschema's equality of 1, 1.0 and True is subtler)
        return (lambda v: type(v) is not list or (all(type(x) is str for x in v) and len(set(v)) == len(v))) \
            if value else None
    return None


def _object_keyword(key: str, schema: dict, regex: Any, formats: dict[str, Any]) -> Check | None:
    """properties, patternProperties and additionalProperties, compiled together once."""
    if key != "properties" and "properties" in schema:
        return None
    if key == "additionalProperties" and "patternProperties" in schema:
        return None
    named = {n: _compile(s, regex, formats) for n, s in schema.get("properties", {}).items()}
    patterns = [(regex(p), _compile(s, regex, formats)) for p, s in schema.get("patternProperties", {}).items()]
    extra_schema = schema.get("additionalProperties", True)
    extra = _compile(extra_schema, regex, formats) if extra_schema is not False else None

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return True
        for name, item in v.items():
            matched = False
            if name in named:
                matched = True
                if not named[name](item):
                    return False
            for pattern, sub in patterns:
                if pattern.search(name):
                    matched = True
                    if not sub(item):
                        return False
            if not matched and (extra is None or not extra(item)):
                return False
        return True

    return check
