"""What CouchDB 3.4.3's own Elixir HTTP tests of views and design documents ask, answered as it does.

Each test is a case where the kiosk once answered differently from CouchDB in those files
(test/elixir/test/{design_docs_query,view_*,design_*}_test.exs); both servers get the same
requests (differential, see twin.py).
"""

from __future__ import annotations

import pytest
from twin import Twin, twin  # noqa: F401 (the fixture)

DDOC = {"views": {"v": {"map": "function (doc) { emit(doc.n, doc.n); }", "reduce": "_sum"}}}


def _docs(twin: Twin, n: int = 5) -> None:
    docs = [{"_id": f"d{i}", "n": i} for i in range(n)]
    docs += [{"_id": f"_design/dd{i}", "views": {"v": {"map": "function (doc) { emit(1, 1); }"}}} for i in range(1, 6)]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)


@pytest.mark.parametrize("query", [
    {}, {"key": '"_design/dd3"'}, {"keys": '["_design/dd2", "_design/dd3"]'}, {"descending": "true"},
    {"end_key": '"_design/dd3"'}, {"endkey": '"_design/dd3"', "inclusive_end": "false"},
    {"end_key": '"_design/dd3"', "inclusive_end": "false", "descending": "true"}, {"start_key": '"_design/dd3"'},
    {"end_key": '"_design/dd5"', "limit": "2", "skip": "1"}, {"startkey": '"a"'}, {"endkey": '"a"', "descending": "true"},
    {"startkey": '"_"', "endkey": '"zz"'}, {"include_docs": "true", "limit": "1"},
])
def test_design_docs_lists_design_documents_alone(twin: Twin, query: dict) -> None:
    _docs(twin)
    twin.same("GET", "/{db}/_design_docs", params=query, status=200)


@pytest.mark.parametrize(("path", "query", "body"), [
    ("_design_docs", {}, {}), ("_design_docs", {}, {"keys": ["_design/dd2", "_design/dd3"], "limit": 1}),
    ("_design_docs", {"limit": "0"}, {"keys": ["_design/dd2", "_design/dd3"], "limit": 2}),
    ("_all_docs", {}, {"limit": 1, "skip": 1}), ("_all_docs", {"descending": "false"}, {"descending": True}),
])
def test_a_post_body_carries_parameters_and_the_query_string_wins(twin: Twin, path: str, query: dict,
                                                                    body: dict) -> None:
    _docs(twin)
    twin.same("POST", f"/{{db}}/{path}", params=query, json=body, status=200)


MULTI = {"views": {
    "multi": {"map": "function (doc) { if (doc.n !== undefined) { emit(doc.n % 3, doc.n); emit('x', doc.n); } }"},
    "sum": {"map": "function (doc) { if (doc.n !== undefined) { emit(doc.n % 3, doc.n); } }", "reduce": "_sum"},
    "big": {"map": "function (doc) { if (doc.n !== undefined) { emit(doc.n, doc.n); } }",
            "reduce": "function (keys, values) { var c = []; for (var i = 0; i < 1000; i++) { c.push('wazzap'); } "
                      "return c; }"},
}}


def _multi(twin: Twin) -> None:
    twin.same("PUT", "/{db}/_design/m", json=MULTI, status=201)
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": [{"_id": str(n), "n": n} for n in range(30)]}, status=201)


@pytest.mark.parametrize(("view", "query", "body"), [
    ("multi", {"limit": "0"}, {"keys": [0, 1], "limit": 2}), ("multi", {"descending": "false"}, {"descending": True}),
    ("multi", {"startkey_docid": "21", "endkey_docid": "23"}, {"keys": [0, 2]}),
    ("multi", {"startkey_docid": "23", "endkey_docid": "21", "descending": "true"}, {"keys": [2, 0]}),
    ("multi", {"startkey_docid": "21", "endkey_docid": "24", "inclusive_end": "false"}, {"keys": [0, 2]}),
    ("multi", {"startkey_docid": "13", "skip": "0", "limit": "1"}, {"keys": [0]}),
    ("multi", {"startkey_docid": "13", "skip": "2", "limit": "3"}, {"keys": [0]}),
    ("multi", {"keys": "[0]", "startkey": "1"}, None), ("multi", {"keys": "[0, 1]", "startkey": "1"}, None),
    ("multi", {"startkey": "0"}, {"keys": [0, 2]}), ("multi", {"key": "0"}, {"keys": [0, 2]}),
    ("multi", {"group_level": "2"}, {"keys": [0, 2]}), ("sum", {}, {"keys": [0, 2]}),
    ("sum", {"group_level": "1"}, {"keys": [0, 2]}), ("sum", {"group": "true"}, {"keys": [0, 2]}),
    ("sum", {"keys": "[1]"}, None), ("sum", {"group": "true", "descending": "true"}, {"keys": [0, 2, 1]}),
    ("multi", {"descending": "true"}, {"keys": [0, "x", 2]}),
    ("multi", {"start_key": "null", "start_key_doc_id": "1", "end_key": "\"x\"", "end_key_doc_id": "14"}, None),
    ("multi", {"startkey": "foo"}, None), ("multi", {}, {"keys": 1}), ("multi", {"keys": "1"}, None),
    ("multi", {}, {"startkey_docid": 5}),
])
def test_view_parameters_as_couchdb_reads_them(twin: Twin, view: str, query: dict, body: dict | None) -> None:
    _multi(twin)
    method = "GET" if body is None else "POST"
    twin.same(method, f"/{{db}}/_design/m/_view/{view}", params=query, json=body)


def test_a_reduce_that_does_not_shrink_is_an_error_row(twin: Twin) -> None:
    _multi(twin)
    for query in ({}, {"group": "true", "limit": "2"}):
        couch, ours = (r.json() for r in twin.both("GET", "/{db}/_design/m/_view/big", params=query))
        assert [sorted(row) for row in ours["rows"]] == [sorted(row) for row in couch["rows"]]
        assert {row["error"] for row in ours["rows"]} == {"reduce_overflow_error"}
        assert ours["rows"][0]["reason"].startswith("Reduce output must shrink more rapidly: input size: ")


def test_temporary_views_are_gone(twin: Twin) -> None:
    twin.same("POST", "/{db}/_temp_view", json={"map": "function (doc) { emit(null); }"}, status=410)
    twin.same("GET", "/{db}/_all_docs", params={"startkey": "foo"}, status=400)


def test_map_functions_see_a_frozen_document_and_local_seq_when_asked(twin: Twin) -> None:
    ddoc = {"options": {"local_seq": True}, "views": {
        "alters": {"map": "function (doc) { if (doc.values) { doc.values = [666]; } if (doc.tags) { "
                          "doc.tags.push('q'); } if (doc.tokens) { doc.tokens.c = 3; } }"},
        "emits": {"map": "function (doc) { emit(doc._id, [doc.values, doc.tags, doc.tokens]); }"},
        # CouchDB's shards number their own sequences: compare that there is one, not its value
        "seq": {"map": "function (doc) { emit(typeof doc._local_seq, doc._local_seq > 0); }"},
    }}
    twin.same("PUT", "/{db}/_design/f", json=ddoc, status=201)
    docs = [{"_id": "doc1", "values": [1, 2, 3]}, {"_id": "doc2", "tags": ["a", "b"], "tokens": {"a": 1}}]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)
    for view in ("alters", "emits", "seq"):
        twin.same("GET", f"/{{db}}/_design/f/_view/{view}", status=200)


def test_an_emitted_rev_alone_links_that_revision_of_the_row_document(twin: Twin) -> None:
    ddoc = {"views": {"prev": {"map": "function (doc) { emit(doc._id, {_rev: doc.prev || doc._rev}); }"}}}
    twin.same("PUT", "/{db}/_design/p", json=ddoc, status=201)
    first = twin.same("PUT", "/{db}/a", json={"n": 0}, status=201)
    twin.same("PUT", "/{db}/a", json={"_rev": first["rev"], "n": 1, "prev": first["rev"]}, status=201)
    twin.same("GET", "/{db}/_design/p/_view/prev", params={"include_docs": "true"}, status=200)


RAW_VALUES = [1, 2.5, -3, False, None, True, {"a": 1}, {"a": 2}, {"b": 1}, {"b": 2, "a": 1}, {"b": 2, "c": 2}, {},
              ["a"], ["b"], ["b", "c"], ["b", "c", "a"], [], "A", "B", "a", "aa", "b", "ba", "é", "e", "", "a\u0000"]


@pytest.mark.parametrize("query", [
    {}, {"descending": "true"}, {"endkey": '"b"', "inclusive_end": "false"},
    {"endkey": '"b"', "inclusive_end": "false", "descending": "true"}, {"startkey": "true", "endkey": '["b"]'},
    {"key": '{"a": 2}'}, {"group": "true"}, {"startkey": '"a"', "endkey": "1"},
])
def test_a_view_with_raw_collation_orders_keys_as_erlang_terms(twin: Twin, query: dict) -> None:
    ddoc = {"views": {"raw": {"map": "function (doc) { emit(doc.v, 1); }", "reduce": "_count",
                              "options": {"collation": "raw"}}}}
    twin.same("PUT", "/{db}/_design/r", json=ddoc, status=201)
    docs = [{"_id": f"{i:02d}", "v": v} for i, v in enumerate(RAW_VALUES)]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)
    if "group" not in query:
        query = {**query, "reduce": "false"}
    twin.same("GET", "/{db}/_design/r/_view/raw", params=query)


def test_design_info_and_view_compaction(twin: Twin) -> None:
    twin.same("PUT", "/{db}/_design/i", json={**DDOC, "autoupdate": False}, status=201)  # no background build
    couch, ours = (r.json() for r in twin.both("GET", "/{db}/_design/i/_info"))
    assert set(ours) == set(couch) == {"name", "view_index"}
    assert set(ours["view_index"]) == set(couch["view_index"])
    assert set(ours["view_index"]["sizes"]) == set(couch["view_index"]["sizes"])
    # (updates_pending: CouchDB's shards count their _security updates too)
    same = ("waiting_clients", "purge_seq", "language", "compact_running")
    assert {k: ours["view_index"][k] for k in same} == {k: couch["view_index"][k] for k in same}
    # The index now exists: a stale query answers it as it is, before the documents below.
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": [{"_id": f"d{i:03d}", "n": i} for i in range(400)]}, status=201)
    twin.same("GET", "/{db}/_design/i/_view/v", params={"stale": "ok", "reduce": "false"}, status=200)
    twin.same("GET", "/{db}/_design/i/_view/v", status=200)
    couch, ours = (r.json()["view_index"] for r in twin.both("GET", "/{db}/_design/i/_info"))
    assert ours["updates_pending"] == couch["updates_pending"] and ours["update_seq"] == 401
    assert 0 < ours["sizes"]["external"] < ours["sizes"]["active"] <= ours["sizes"]["file"]
    kiosk = twin.clients[1]
    for _ in range(3):  # churn: every document rewritten, the index brought up to date each time
        rows = kiosk.get(f"/{twin.db}/_all_docs", params={"include_docs": "true", "startkey": '"d"'},
                         auth=("admin", "secret")).json()["rows"]
        docs = [{**row["doc"], "n": row["doc"]["n"] + 1, "pad": "x" * 200} for row in rows]
        assert kiosk.post(f"/{twin.db}/_bulk_docs", json={"docs": docs}, auth=("admin", "secret")).status_code == 201
        assert kiosk.get(f"/{twin.db}/_design/i/_view/v", auth=("admin", "secret")).status_code == 200
    before = kiosk.get(f"/{twin.db}/_design/i/_info", auth=("admin", "secret")).json()["view_index"]["sizes"]
    twin.same("POST", "/{db}/_compact/i", json={}, status=202)
    after = kiosk.get(f"/{twin.db}/_design/i/_info", auth=("admin", "secret")).json()["view_index"]["sizes"]
    assert after["active"] == before["active"] and after["file"] < before["file"]
    twin.same("POST", "/{db}/_compact/nope", json={})
    twin.same("GET", "/{db}/_design/nope/_info")


def test_node_versions_name_the_javascript_engine_and_a_sandbox_keeps_its_own_globals(twin: Twin) -> None:
    couch, ours = (r.json() for r in twin.both("GET", "/_node/_local/_versions"))
    assert ours["javascript_engine"] == couch["javascript_engine"] == {"name": "quickjs"}
    assert ours["collation_driver"]["name"] == couch["collation_driver"]["name"]
    twin.same("GET", "/_node/_local/_versions", auth=None, status=401)
    ddoc = {"views": {"glob": {"map": "function (doc) { var g = emit.constructor('return this')(); "
                                      "emit(doc._id, typeof g); }"}}}
    twin.same("PUT", "/{db}/_design/g", json=ddoc, status=201)
    twin.same("PUT", "/{db}/a", json={}, status=201)
    twin.same("GET", "/{db}/_design/g/_view/glob", status=200)
