"""Reduce functions: CouchDB's built-ins (``_sum``, ``_count``, ``_stats``,
``_approx_count_distinct``) in Python, JavaScript ones in the sandbox.

Each takes the rows of one group, ``(key, doc id, value)``, and returns the group's
value. A JavaScript reduce sees the rows in chunks, then re-reduces the chunks'
results, as CouchDB feeds its B-tree nodes (a correct reduce function gives the
same answer either way).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import CouchError
from .engine import engine

BUILTINS = ("_sum", "_count", "_stats", "_approx_count_distinct")
# Rows handed to a JavaScript reduce at once before re-reducing.
CHUNK = 500

_SUM_ERROR = ("The _sum function requires that map values be numbers, arrays of numbers, or objects. Objects "
              "cannot be mixed with other data structures. Objects can be arbitrarily nested, provided that the "
              "values for all fields are themselves numbers, arrays of numbers, or objects.")
_STATS_ERROR = ("The _stats function requires that map values be numbers or arrays of numbers, not '{}'")


class BuiltinReduceError(CouchError):
    """A built-in reduce given values it cannot reduce: CouchDB puts the error in the row's value."""

    status, error, reason = 400, "builtin_reduce_error", _SUM_ERROR

    def __init__(self, reason: str | None = None, caused_by: Any = None) -> None:
        super().__init__(reason)
        self.caused_by = caused_by


class ReduceOverflow(CouchError):
    """A JavaScript reduce whose output does not shrink (CouchDB's ``reduce_limit``): the row becomes an error."""

    status, error, reason = 500, "reduce_overflow_error", "Reduce output must shrink more rapidly"


# CouchDB's share/server/views.js: an output over this many characters must be less than half its input.
REDUCE_LIMIT = 4096


def _js_reduce(ddoc: dict, path: str, source: str, keys: list | None, values: list, rereduce: bool) -> Any:
    result = engine().call(ddoc, {"op": "reduce", "fn": path, "keys": keys, "values": values, "rereduce": rereduce})
    out = len(_compact([result]))
    if out > REDUCE_LIMIT:
        # The input is the query server's command line less the function's source (as couchjs measures it).
        command = ["rereduce", [source], values] if rereduce else \
            ["reduce", [source], [[k, v] for k, v in zip(keys or [], values)]]
        size = len(_compact(command)) - len(source)
        if out * 2 > size:
            raise ReduceOverflow(f"Reduce output must shrink more rapidly: input size: {size} output size: {out}")
    return result


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sum(values: list[Any]) -> Any:
    total: Any = 0
    for value in values:
        total = _add(total, value)
    return total


def _add(a: Any, b: Any) -> Any:
    """CouchDB's _sum of two values: numbers, lists of numbers (a number counts as a list of one), objects."""
    if _is_number(a) and _is_number(b):
        return a + b
    if isinstance(a, (list, int, float)) and isinstance(b, (list, int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        a, b = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
        if not all(map(_is_number, a + b)):
            raise BuiltinReduceError(caused_by=b)
        longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
        return [x + (shorter[i] if i < len(shorter) else 0) for i, x in enumerate(longer)]
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _add(out[key], value) if key in out else _check(value)
        return out
    if _is_number(a) and a == 0 and isinstance(b, dict):
        return _check(b)
    raise BuiltinReduceError(caused_by=b)


def _check(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _check(v) for k, v in value.items()}
    if isinstance(value, list) and all(map(_is_number, value)):
        return value
    if _is_number(value):
        return value
    raise BuiltinReduceError(caused_by=value)


def _stats_of(value: Any) -> Any:
    if _is_number(value):
        return {"sum": value, "count": 1, "min": value, "max": value, "sumsqr": value * value}
    if isinstance(value, dict) and {"sum", "count", "min", "max", "sumsqr"} <= set(value):
        return {k: value[k] for k in ("sum", "count", "min", "max", "sumsqr")}
    if isinstance(value, list) and all(map(_is_number, value)):
        return [_stats_of(v) for v in value]
    raise BuiltinReduceError(_STATS_ERROR.format(_json(value)), caused_by=value)


def _merge_stats(a: Any, b: Any) -> Any:
    if isinstance(a, list) and isinstance(b, list):
        longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
        return [_merge_stats(x, shorter[i]) if i < len(shorter) else x for i, x in enumerate(longer)]
    if isinstance(a, list) or isinstance(b, list):
        raise BuiltinReduceError(_STATS_ERROR.format(_json(b)))
    return {"sum": a["sum"] + b["sum"], "count": a["count"] + b["count"], "min": min(a["min"], b["min"]),
            "max": max(a["max"], b["max"]), "sumsqr": a["sumsqr"] + b["sumsqr"]}


def _stats(values: list[Any]) -> Any:
    result = None
    for value in values:
        stats = _stats_of(value)
        result = stats if result is None else _merge_stats(result, stats)
    return result


def _json(value: Any) -> str:
    return json.dumps(value)


def reduce_rows(source: str, ddoc: dict, path: str, rows: list[tuple[Any, str, Any, bytes]]) -> Any:
    """The reduced value of one group of rows ``(key, doc id, value, key bytes)``.

    A built-in that cannot reduce the values answers, as CouchDB, with an error object as the value.
    """
    try:
        return _reduce(source, ddoc, path, rows)
    except BuiltinReduceError as exc:
        return {"error": exc.error, "reason": exc.reason, "caused_by": exc.caused_by}


def _reduce(source: str, ddoc: dict, path: str, rows: list[tuple[Any, str, Any, bytes]]) -> Any:
    name = source.strip()
    for builtin in BUILTINS:  # CouchDB reads a built-in by its prefix ("_sum\n garbage" is _sum)
        if name.startswith(builtin):
            name = builtin
    if name == "_count":
        return len(rows)
    if name == "_sum":
        return _sum([r[2] for r in rows])
    if name == "_stats":
        return _stats([r[2] for r in rows])
    if name == "_approx_count_distinct":
        return len({r[3] for r in rows})
    if name.startswith("_"):
        raise CouchError(f"Builtin reduce function {name[:40]} is not supported", error="invalid_design_doc")
    partials = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        partials.append(_js_reduce(ddoc, path, source, [[r[0], r[1]] for r in chunk], [r[2] for r in chunk], False))
    if len(partials) == 1:
        return partials[0]
    if not partials:
        return _js_reduce(ddoc, path, source, [], [], False)
    return _js_reduce(ddoc, path, source, None, partials, True)
