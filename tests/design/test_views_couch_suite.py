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
