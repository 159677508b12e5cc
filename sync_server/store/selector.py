"""CouchDB Mango selectors, as used by ``_changes?filter=_selector``.

Pure module: no I/O, no database access, no global mutable state. A selector is
validated once by ``compile_selector`` (raising ``BadRequest`` on any mistake)
and turned into a plain predicate over documents.

Semantics follow CouchDB 3 (``mango_selector.erl``), including its quirks:

* A condition on a missing field fails, whatever the operator (``$ne`` and
  ``$nin`` included); the one exception is ``$exists: false``. A path that runs
  through a scalar or a bad array index fails every condition, even that one.
* ``$not``/``$nor`` are pushed down to the leaves (De Morgan), as CouchDB's
  normaliser does, so a negated condition on a missing field also fails.
* An empty ``$and``/``$or``/``$nor`` array matches everything.
* ``$in``/``$nin`` on an array field test its elements, not the array itself;
  ``$eq`` compares the whole value.
* Values are compared with ``collate`` (view collation), so booleans never
  equal numbers and objects compare key/value pairs in order.
* Strings compare by ICU's root collation, as CouchDB's do (``a`` < ``A`` < ``b``); PouchDB's by
  code point.
* ``_id`` (the field itself, not ``a._id``) is compared as CouchDB's ``_all_docs`` orders ids: by
  raw Erlang term order (``mango_json:cmp_raw``), where strings compare by code point and sort after
  every number, boolean, null, object and array. So ``{"_id": {"$gt": {}}}`` matches every document,
  ``{"_id": {"$lt": {}}}`` none, and ``"B" < "a"``.
* ``$regex`` uses RE2 (``search`` semantics; linear time, so no backreferences or lookaround), not PCRE.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import re2

from ..errors import BadRequest
from ..icu_collation import compare as _compare_strings

Predicate = Callable[[Any], bool]
Path = tuple[str, ...]

_MISSING = object()  # the path ends at a key the object does not have
_BAD_PATH = object()  # the path runs through a scalar or a bad array index

_COMBINATIONS = frozenset({"$and", "$or", "$nor", "$not"})
_UNSUPPORTED = frozenset({"$text", "$where", "$geoWithin", "$geoIntersects", "$near", "$nearSphere"})
_RELATIONS: dict[str, Callable[[int], bool]] = {
    "$eq": lambda order: order == 0,
    "$ne": lambda order: order != 0,
    "$lt": lambda order: order < 0,
    "$lte": lambda order: order <= 0,
    "$gt": lambda order: order > 0,
    "$gte": lambda order: order >= 0,
}
_ID: Path = ("_id",)
# _rank's null, false, true, number, string, array, object, placed in Erlang's term order.
_RAW_RANKS = (2, 1, 3, 0, 6, 5, 4)
_TYPE_NAMES = ("null", "boolean", "boolean", "number", "string", "array", "object")
# The longest $regex pattern taken, and the memory RE2 may use to compile one.
MAX_REGEX = 1000
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20
_ARRAY_INDEX = re.compile(r"\+?[0-9]+")
_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


def compile_selector(selector: dict) -> Callable[[dict], bool]:
    """Validate a selector once and return a predicate over a document (a dict with _id, _rev, fields)."""
    if not isinstance(selector, dict):
        raise BadRequest(f"Selector must be a JSON object, not: {_show(selector)}", error="invalid_selector_json")
    return _compile_object(selector, None, False)


def collate(a: Any, b: Any) -> int:
    """Compare two JSON values in CouchDB view order; return -1, 0 or 1."""
    rank_a, rank_b = _rank(a), _rank(b)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if rank_a == 3:
        return (a > b) - (a < b)
    if rank_a == 4:
        return _compare_strings(a, b)
    if rank_a == 5:
        return _collate_arrays(a, b)
    if rank_a == 6:
        return _collate_objects(a, b)
    return 0


# -- collation ---------------------------------------------------------------


def _rank(value: Any) -> int:
    """Position of a JSON value's type: null, false, true, number, string, array, object."""
    if value is None or value is False or value is True:
        return {None: 0, False: 1, True: 2}[value]
    if isinstance(value, (int, float)):
        return 3
    if isinstance(value, str):
        return 4
    if isinstance(value, list):
        return 5
    if isinstance(value, dict):
        return 6
    raise TypeError(f"not a JSON value: {value!r}")


def _collate_arrays(a: list, b: list) -> int:
    """Compare arrays element by element, then by length."""
    for item_a, item_b in zip(a, b):
        order = collate(item_a, item_b)
        if order:
            return order
    return (len(a) > len(b)) - (len(a) < len(b))


def _collate_objects(a: dict, b: dict) -> int:
    """Compare objects pair by pair in key order (key, then value), then by size."""
    for (key_a, value_a), (key_b, value_b) in zip(a.items(), b.items()):
        order = collate(key_a, key_b) or collate(value_a, value_b)
        if order:
            return order
    return (len(a) > len(b)) - (len(a) < len(b))


def raw_order(a: Any, b: Any) -> int:
    """Compare two JSON values in Erlang's term order, as CouchDB compares ``_id`` (``cmp_raw``):
    numbers < false < null < true < objects < arrays < strings; strings by code point (their
    UTF-8 bytes), objects pair by pair (key, then value) and arrays item by item, then by length."""
    if type(a) is str and type(b) is str:
        return (a > b) - (a < b)
    rank_a, rank_b = _raw_rank(a), _raw_rank(b)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if rank_a == 0 or rank_a == 6:
        return (a > b) - (a < b)
    if rank_a == 4:  # an object is the list of its [key, value] pairs
        a, b = [list(pair) for pair in a.items()], [list(pair) for pair in b.items()]
    if rank_a in (4, 5):
        for item_a, item_b in zip(a, b):
            order = raw_order(item_a, item_b)
            if order:
                return order
        return (len(a) > len(b)) - (len(a) < len(b))
    return 0


def _raw_rank(value: Any) -> int:
    """Position of a JSON value's type in Erlang's term order (atoms alphabetically: false, null, true)."""
    return _RAW_RANKS[_rank(value)]


def _equal(a: Any, b: Any) -> bool:
    """Deep, type-strict JSON equality (True is not 1; strings ICU finds equal are)."""
    if type(a) is str and type(b) is str and _plain(a) and _plain(b):
        return a == b  # printable ASCII is never ignorable nor equivalent to other text: no ICU call
    return collate(a, b) == 0


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _type_name(value: Any) -> str:
    """The Mango ``$type`` name of a JSON value."""
    return _TYPE_NAMES[_rank(value)]


# -- field paths ---------------------------------------------------------------


def _parse_field(name: str) -> Path:
    """Split a field name on unescaped dots and drop the escaping backslashes."""
    if name == "":
        raise BadRequest("One or more conditions is missing a field name.")
    parts = _UNESCAPED_DOT.split(name)
    if "" in parts:
        raise BadRequest(f"Invalid field name: {name}")
    return tuple(part.replace("\\", "") for part in parts)


def _resolve(value: Any, path: Path) -> Any:
    """Follow a parsed path into a JSON value; _MISSING or _BAD_PATH if it leads nowhere."""
    for name in path:
        if isinstance(value, dict):
            if name not in value:
                return _MISSING
            value = value[name]
        elif isinstance(value, list) and _is_index(name, value):
            value = value[int(name)]
        else:
            return _BAD_PATH
    return value


def _is_index(name: str, array: list) -> bool:
    """True if name is a decimal index inside array (negative indexes are not)."""
    return _ARRAY_INDEX.fullmatch(name) is not None and int(name) < len(array)


# -- compiling selectors -------------------------------------------------------
# ``path`` is None at the document root (no field named yet) and () inside
# $elemMatch/$allMatch/$keyMapMatch, where conditions apply to the item itself.


def _compile_object(selector: dict, path: Path | None, negated: bool) -> Predicate:
    """Compile one selector object: an implicit $and over its entries."""
    if not selector:
        return _always if path is None else _leaf("$eq", {}, path, negated)
    predicates = [_compile_entry(key, arg, path, negated) for key, arg in selector.items()]
    return _any_of(predicates) if negated else _all_of(predicates)


def _compile_entry(key: str, arg: Any, path: Path | None, negated: bool) -> Predicate:
    """Compile one key of a selector object: an operator or a (dotted) field name."""
    if not key.startswith("$"):
        return _compile_value(arg, (path or ()) + _parse_field(key), negated)
    if key in _COMBINATIONS:
        return _compile_combination(key, arg, path, negated)
    if key in _BUILDERS:
        return _leaf(key, arg, path, negated)
    if key in _UNSUPPORTED:
        raise BadRequest(f"Unsupported operator: {key}")
    raise _invalid_operator(key)


def _compile_value(arg: Any, path: Path | None, negated: bool) -> Predicate:
    """Compile what a field maps to: nested conditions if an object, else equality."""
    if isinstance(arg, dict):
        return _compile_object(arg, path, negated)
    return _leaf("$eq", arg, path, negated)


def _compile_combination(op: str, arg: Any, path: Path | None, negated: bool) -> Predicate:
    """Compile $and/$or/$nor/$not, pushing negation down to the leaves (De Morgan)."""
    if op == "$not":
        return _compile_object(_require(op, arg, dict, "a selector object"), path, not negated)
    selectors = _require(op, arg, list, "an array of selectors")
    if not selectors:
        return _always
    parts = [_compile_value(sub, path, negated != (op == "$nor")) for sub in selectors]
    conjunctive = (op != "$or") != negated
    return _all_of(parts) if conjunctive else _any_of(parts)


def _leaf(op: str, arg: Any, path: Path | None, negated: bool) -> Predicate:
    """Compile one condition operator applied to the value found at path."""
    if path is None:
        raise BadRequest("One or more conditions is missing a field name.")
    test = (_RAW_BUILDERS if path == _ID and op in _RAW_BUILDERS else _BUILDERS)[op](op, arg)
    sees_missing = op == "$exists"

    def predicate(base: Any) -> bool:
        value = _resolve(base, path)
        if value is _BAD_PATH or (value is _MISSING and not sees_missing):
            return False
        return test(value) != negated

    return predicate


def _always(_value: Any) -> bool:
    """The predicate of an empty selector: everything matches."""
    return True


def _all_of(predicates: list[Predicate]) -> Predicate:
    """A predicate true when every one of predicates is."""
    if len(predicates) == 1:
        return predicates[0]
    return lambda value: all(predicate(value) for predicate in predicates)


def _any_of(predicates: list[Predicate]) -> Predicate:
    """A predicate true when at least one of predicates is."""
    if len(predicates) == 1:
        return predicates[0]
    return lambda value: any(predicate(value) for predicate in predicates)


# -- argument validation -------------------------------------------------------


def _require(op: str, arg: Any, kind: type, expected: str) -> Any:
    """Return arg if it is a kind (a bool only counts as a bool), else raise BadRequest."""
    if isinstance(arg, kind) and (kind is bool or not isinstance(arg, bool)):
        return arg
    raise _bad_arg(op, arg, expected)


def _bad_arg(op: str, arg: Any, expected: str) -> BadRequest:
    """The error for an operator given the wrong kind of argument (CouchDB's ``bad_arg``)."""
    return BadRequest(f"Bad argument for operator {op}: {_show(arg)} (expected {expected})", error="bad_arg")


def _invalid_operator(op: str) -> BadRequest:
    """An unknown operator, or ``$regex``/``$beginsWith`` on a non-string (CouchDB's ``invalid_operator``)."""
    return BadRequest(f"Invalid operator: {op}", error="invalid_operator")


def _show(value: Any) -> str:
    """Render a value for an error message, as JSON when possible."""
    return json.dumps(value, default=repr)


def _is_integer(value: Any) -> bool:
    """True for JSON integers (not booleans, not floats)."""
    return isinstance(value, int) and not isinstance(value, bool)


# -- condition operators: each validates its argument and returns a value test --


def _build_comparison(op: str, arg: Any) -> Predicate:
    """$eq $ne $lt $lte $gt $gte: collate the value against the argument."""
    relation = _RELATIONS[op]
    if op in ("$eq", "$ne"):
        return lambda value: _equal(value, arg) == (op == "$eq")
    return lambda value: relation(collate(value, arg))


def _build_raw_comparison(op: str, arg: Any) -> Predicate:
    """$eq $ne $lt $lte $gt $gte on ``_id``: the value against the argument in raw term order."""
    relation = _RELATIONS[op]
    return lambda value: relation(raw_order(value, arg))


def _build_in(op: str, arg: Any, equal: Callable[[Any, Any], bool] = _equal) -> Predicate:
    """$in: the value, or any element of an array value, equals one of the arguments."""
    choices = _require(op, arg, list, "an array")

    def test(value: Any) -> bool:
        candidates = value if isinstance(value, list) else [value]
        return any(equal(candidate, choice) for candidate in candidates for choice in choices)

    return test


def _build_nin(op: str, arg: Any, equal: Callable[[Any, Any], bool] = _equal) -> Predicate:
    """$nin: the complement of $in (on a field that exists)."""
    in_test = _build_in(op, arg, equal)
    return lambda value: not in_test(value)


def _raw_equal(a: Any, b: Any) -> bool:
    return raw_order(a, b) == 0


def _build_exists(op: str, arg: Any) -> Predicate:
    """$exists: whether the field is present, whatever its value."""
    should_exist = _require(op, arg, bool, "true or false")
    return lambda value: (value is not _MISSING) == should_exist


def _build_type(op: str, arg: Any) -> Predicate:
    """$type: the value's JSON type name; like CouchDB, an unknown name just never matches."""
    name = _require(op, arg, str, 'a type name such as "string"')
    return lambda value: _type_name(value) == name


def _build_size(op: str, arg: Any) -> Predicate:
    """$size: the value is an array of exactly this length."""
    size = _require(op, arg, int, "a non-negative integer")
    if size < 0:
        raise _bad_arg(op, arg, "a non-negative integer")
    return lambda value: isinstance(value, list) and len(value) == size


def _build_mod(op: str, arg: Any) -> Predicate:
    """$mod [divisor, remainder]: an integer value whose truncated remainder matches."""
    if not (isinstance(arg, list) and len(arg) == 2 and all(map(_is_integer, arg)) and arg[0] != 0):
        raise _bad_arg(op, arg, "[divisor, remainder], integers with a non-zero divisor")
    divisor, remainder = arg
    return lambda value: _is_integer(value) and _truncated_remainder(value, divisor) == remainder


def _truncated_remainder(value: int, divisor: int) -> int:
    """value rem divisor with the sign of value, like Erlang's rem and JavaScript's %."""
    magnitude = abs(value) % abs(divisor)
    return -magnitude if value < 0 else magnitude


def _build_regex(op: str, arg: Any) -> Predicate:
    """$regex: a string value in which the pattern is found (unanchored search).

    RE2 (``google-re2``) runs in time linear in the text whatever the pattern, where a
    backtracking engine takes exponential time on ``(a+)+$`` and its kind: a selector comes
    from anyone who may read a database (issue #15). RE2 has no backreferences or lookaround,
    which such a pattern is refused for, as an invalid one is.
    """
    if not isinstance(arg, str):
        raise _invalid_operator(op)
    source = arg
    if len(source) > MAX_REGEX:
        raise _bad_arg(op, arg, f"a regular expression of at most {MAX_REGEX} characters")
    try:
        pattern = re2.compile(source, _RE2_OPTIONS)
    except (re2.error, ValueError, TypeError) as exc:
        raise _bad_arg(op, arg, f"a valid regular expression (RE2 syntax); {exc}") from None
    return lambda value: isinstance(value, str) and pattern.search(value) is not None


def _build_begins_with(op: str, arg: Any) -> Predicate:
    """$beginsWith: a string value starting with the (case-sensitive) prefix."""
    if not isinstance(arg, str):
        raise _invalid_operator(op)
    prefix = arg
    return lambda value: isinstance(value, str) and value.startswith(prefix)


def _build_all(op: str, arg: Any) -> Predicate:
    """$all: an array value holding every argument (or equal to the sole array argument)."""
    wanted = _require(op, arg, list, "an array")

    def test(value: Any) -> bool:
        if not wanted:
            return False
        if len(wanted) == 1 and isinstance(wanted[0], list) and _equal(wanted[0], value):
            return True
        return isinstance(value, list) and all(any(_equal(w, item) for item in value) for w in wanted)

    return test


def _build_elem_match(op: str, arg: Any) -> Predicate:
    """$elemMatch: an array value with at least one element matching the sub-selector."""
    matches = _compile_object(_require(op, arg, dict, "a selector object"), (), False)
    return lambda value: isinstance(value, list) and any(matches(item) for item in value)


def _build_all_match(op: str, arg: Any) -> Predicate:
    """$allMatch: a non-empty array value whose every element matches the sub-selector."""
    matches = _compile_object(_require(op, arg, dict, "a selector object"), (), False)
    return lambda value: isinstance(value, list) and bool(value) and all(map(matches, value))


def _build_key_map_match(op: str, arg: Any) -> Predicate:
    """$keyMapMatch: an object value with at least one key matching the sub-selector."""
    matches = _compile_object(_require(op, arg, dict, "a selector object"), (), False)
    return lambda value: isinstance(value, dict) and any(matches(key) for key in value)


_BUILDERS: dict[str, Callable[[str, Any], Predicate]] = {
    **{op: _build_comparison for op in _RELATIONS},
    "$in": _build_in,
    "$nin": _build_nin,
    "$exists": _build_exists,
    "$type": _build_type,
    "$size": _build_size,
    "$mod": _build_mod,
    "$regex": _build_regex,
    "$beginsWith": _build_begins_with,
    "$all": _build_all,
    "$elemMatch": _build_elem_match,
    "$allMatch": _build_all_match,
    "$keyMapMatch": _build_key_map_match,
}
# The operators that compare ``_id`` in raw order instead (mango_selector:match with cmp_raw).
_RAW_BUILDERS: dict[str, Callable[[str, Any], Predicate]] = {
    **{op: _build_raw_comparison for op in _RELATIONS},
    "$in": lambda op, arg: _build_in(op, arg, _raw_equal),
    "$nin": lambda op, arg: _build_nin(op, arg, _raw_equal),
}


# -- normal form ------------------------------------------------------------------
# CouchDB stores and shows a partial index's selector in the form its normaliser gives
# (mango_selector:normalize): explicit operators, one condition per object (an implicit $and made
# explicit), dotted field paths, and negations pushed down to the conditions.

_NESTED = ("$elemMatch", "$allMatch", "$keyMapMatch")
_NEGATED = {"$lt": "$gte", "$lte": "$gt", "$eq": "$ne", "$ne": "$eq", "$gte": "$lt", "$gt": "$lte",
            "$in": "$nin", "$nin": "$in"}


def normalize(selector: Any) -> Any:
    """A (valid) selector in CouchDB's normal form; an empty one stays empty."""
    if selector == {}:
        return {}
    return _norm_negations(_norm_fields(_norm_ops(selector), ""))


def _single(selector: Any) -> tuple[str, Any] | None:
    return next(iter(selector.items())) if isinstance(selector, dict) and len(selector) == 1 else None


def _norm_ops(selector: Any) -> Any:
    """Explicit operators: a bare value is ``$eq``, an object of several conditions an ``$and``."""
    if isinstance(selector, dict) and len(selector) > 1:
        return {"$and": [_norm_ops({key: value}) for key, value in selector.items()]}
    entry = _single(selector)
    if entry is None:
        return {"$eq": selector}
    key, value = entry
    if key in ("$and", "$or", "$nor") and isinstance(value, list):
        return {key: [_norm_ops(part) for part in value]}
    if key in ("$not", *_NESTED) or not key.startswith("$"):
        return {key: _norm_ops(value)}
    return selector


def _norm_fields(selector: Any, path: str) -> Any:
    """Field names moved down to the conditions, as dotted paths."""
    entry = _single(selector)
    if entry is None:
        return selector
    key, value = entry
    if key in ("$and", "$or", "$nor") and isinstance(value, list):
        return {key: [_norm_fields(part, path) for part in value]}
    if key == "$not":
        return {key: _norm_fields(value, path)}
    if key in _NESTED:
        return {path: {key: _norm_fields(value, "")}}
    if key.startswith("$"):
        return {path: selector}
    return _norm_fields(value, f"{path}.{key}" if path else key)


def _norm_negations(selector: Any, negated: bool = False) -> Any:
    """``$not`` and ``$nor`` pushed down (De Morgan) to the conditions; one that has no opposite
    keeps a ``$not``. ``negated``: the selector is under an odd number of negations."""
    entry = _single(selector)
    if entry is None:
        return selector
    key, value = entry
    if key == "$not":
        return _norm_negations(value, not negated)
    if key in ("$and", "$or", "$nor") and isinstance(value, list):
        inner = negated != (key == "$nor")
        return {"$and" if (key == "$or") == negated else "$or": [_norm_negations(part, inner) for part in value]}
    if not negated:
        return {key: _norm_negations(value)} if key in ("$elemMatch", "$allMatch") else selector
    if key in _NEGATED:
        return {_NEGATED[key]: value}
    if key == "$exists" and isinstance(value, bool):
        return {key: not value}
    if key.startswith("$"):
        return {"$not": selector}
    return {key: _norm_negations(value, True)}
