"""The QuickJS sandbox: CouchDB's helpers, CommonJS require, limits, nothing of the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_server.design.engine import CompilationError, Engine, JSRuntimeError, Limits
from sync_server.store import Server, StoreOptions

DDOC = {
    "_id": "_design/t", "_rev": "1-a",
    "views": {"v": {"map": "function (doc) { var m = require('lib/math'); emit([doc._id, isArray(doc.xs)], m.twice(sum(doc.xs || []))); log(toJSON(doc)); }"}},
    "lib": {"math": "var k = require('./k').k; exports.twice = function (x) { return k * x; };", "k": "exports.k = 2;"},
    "loop": "function () { while (true) {} }",
    "hog": "function () { var a = []; while (true) { a.push(new Array(100000).fill(1)); } }",
    "host": "function (doc) { return [typeof require, typeof std, typeof os, typeof fetch, typeof XMLHttpRequest].join(','); }",
    "bad": "function ( {",
}


@pytest.fixture
def engine() -> Engine:
    return Engine(Limits(time_limit_ms=500, memory_limit_mb=16))


def test_map_uses_emit_sum_is_array_and_require(engine: Engine) -> None:
    rows = engine.call(DDOC, {"op": "map", "fns": ["views.v.map"], "docs": [{"_id": "a", "xs": [1, 2]}, {"_id": "b"}]})
    assert rows == [[[[["a", True], 6]]], [[[["b", False], 0]]]]


def test_runaway_and_hungry_functions_are_stopped_and_the_sandbox_recovers(engine: Engine) -> None:
    with pytest.raises(JSRuntimeError, match="js_time_limit_ms"):
        engine.call(DDOC, {"op": "filter", "fn": "loop", "docs": [{}], "req": {}})
    with pytest.raises(JSRuntimeError, match="js_memory_limit_mb"):
        engine.call(DDOC, {"op": "filter", "fn": "hog", "docs": [{}], "req": {}})
    assert engine.call(DDOC, {"op": "map", "fns": ["views.v.map"], "docs": [{"_id": "c"}]}) == [[[[["c", False], 0]]]]


def test_the_sandbox_has_no_host_objects(engine: Engine) -> None:
    host = {**DDOC, "filters": {"f": "function (doc, req) { if (typeof std !== 'undefined' || typeof os !== 'undefined' || typeof fetch !== 'undefined') { throw new Error('host'); } return true; }"}}
    assert engine.call(host, {"op": "filter", "fn": "filters.f", "docs": [{}], "req": {}}) == [True]


def test_a_function_that_does_not_compile(engine: Engine) -> None:
    with pytest.raises(CompilationError):
        engine.call(DDOC, {"op": "filter", "fn": "bad", "docs": [{}], "req": {}})
    with pytest.raises(CompilationError):
        engine.call(DDOC, {"op": "filter", "fn": "missing", "docs": [{}], "req": {}})


def test_a_database_without_design_documents_never_calls_the_validator(tmp_path: Path) -> None:
    calls = []
    server = Server(tmp_path, StoreOptions(validate_design=lambda *args: calls.append(args)))
    db = server.create("plain")
    db.bulk_docs([{"_id": "a"}, {"_id": "b"}])
    db.bulk_docs([{"_id": "c", "_rev": "1-" + "a" * 32}], new_edits=False)
    assert calls == []
    db.bulk_docs([{"_id": "_design/x", "views": {}}])
    assert calls == []  # design documents themselves are not validated
    db.bulk_docs([{"_id": "d"}])
    assert [c[1] for c in calls] == [[("_design/x", db.get("_design/x")["_rev"])]]


def test_error_rows_map_back_to_their_classes() -> None:
    """A refusal that travels as a _bulk_docs row comes back with its own status (not a subclass's)."""
    import sync_server.design.mango  # noqa: F401 (its error classes are loaded)
    from sync_server.design.validate import refusal
    from sync_server.errors import error_for

    for thrown, status in (("a bare string", 500), ({"forbidden": "no"}, 403), ({"unauthorized": "who"}, 401)):
        err = refusal(thrown)
        assert error_for(err.error, err.reason).status == status
