"""Mango _find, _index and _explain answer as real CouchDB 3.4.3 does (differential).

Bookmarks are opaque and differ; index names made from a hash of the definition differ too
(CouchDB hashes its Erlang term); execution_stats counts and times are the servers' own.
"""

from __future__ import annotations

from typing import Any

from twin import Twin, twin  # noqa: F401 (the fixture)


def _clean(answer: Any) -> Any:
    if isinstance(answer, dict):
        answer = {k: v for k, v in answer.items() if k != "bookmark" or v == "nil"}
        if "execution_stats" in answer:
            answer["execution_stats"] = {"results_returned": answer["execution_stats"]["results_returned"]}
        for doc in answer.get("docs", []):
            doc.pop("_rev", None)
    return answer


def _same(twin: Twin, path: str, body: Any, method: str = "POST") -> Any:
    couch, ours = twin.both(method, path, json=body)
    assert ours.status_code == couch.status_code, (couch.text, ours.text)
    assert _clean(ours.json()) == _clean(couch.json()), (couch.text, ours.text)
    return couch.json()


def _fill(twin: Twin) -> None:
    docs = [{"_id": f"d{i}", "n": i, "t": "xy"[i % 2], "o": {"a": i, "b": [i, "s"]}, "s": "abcAB"[i % 5]} for i in range(12)]
    docs += [{"_id": "z"}, {"_id": "_design/notfound", "views": {}}]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)


QUERIES: list[dict] = [
    {"selector": {"n": {"$gt": 2}}},
    {"selector": {"n": {"$gt": 2}}, "fields": ["n", "o.a"], "limit": 2, "execution_stats": True},
    {"selector": {"n": {"$gt": 2}}, "skip": 3, "limit": 4},
    {"selector": {}},
    {"selector": {"t": "x", "n": {"$lt": 6}}},
    {"selector": {"$or": [{"n": 1}, {"s": "B"}]}},
    {"selector": {"o.b": {"$elemMatch": {"$eq": 3}}}},
    {"selector": {"n": {"$in": [1, 3, 99]}}, "fields": ["_id"]},
    {"selector": {"n": {"$exists": False}}},
    {"selector": {"_id": {"$gt": "d3"}}, "sort": ["_id"]},
    {"selector": {"_id": {"$gt": "d3"}}, "sort": [{"_id": "desc"}]},
    {"selector": {"n": {"$gt": 2}}, "sort": ["n"]},
    {"selector": {"n": {"$gt": 100}}},
    {},
    {"selector": {"n": {"$gt": 2}}, "limit": -1},
    {"selector": {"n": {"$gt": 2}}, "bookmark": "x"},
]


def test_find_without_indexes(twin: Twin) -> None:
    _fill(twin)
    for body in QUERIES:
        _same(twin, "/{db}/_find", body)


def test_indexes_decide_sort_order_and_warnings(twin: Twin) -> None:
    _fill(twin)
    for client in twin.clients:
        for body in ({"index": {"fields": ["n"]}, "ddoc": "by-n", "name": "n"},
                     {"index": {"fields": ["t", "n"]}, "name": "tn", "ddoc": "mine"},
                     {"index": {"fields": [{"s": "desc"}]}, "ddoc": "by-s", "name": "s"}):
            assert client.post(f"/{twin.db}/_index", json=body, auth=("admin", "secret")).json()["result"] == "created"
    _same(twin, "/{db}/_index", {"index": {"fields": ["n"]}, "ddoc": "by-n", "name": "n"})
    _same(twin, "/{db}/_index", None, method="GET")
    for body in [
        {"selector": {"n": {"$gt": 2}}, "sort": [{"n": "desc"}], "limit": 3},
        {"selector": {"n": {"$gt": 2}}},
        {"selector": {"n": {"$gt": 2}}, "use_index": "nope"},
        {"selector": {"n": {"$gt": 2}}, "use_index": ["nope", "x"]},
        {"selector": {"t": "x", "n": {"$gt": 0}}, "use_index": "mine"},
        {"selector": {"t": "x", "n": {"$gt": 0}}, "sort": ["t", "n"]},
        {"selector": {"o.a": {"$gt": 0}}, "sort": ["o.a"]},
        {"selector": {"n": {"$gt": 2}}, "sort": [{"n": "asc"}, {"t": "desc"}]},
    ]:
        _same(twin, "/{db}/_find", body)
    _same(twin, "/{db}/_index/_design/mine/json/tn", None, method="DELETE")
    _same(twin, "/{db}/_index/_design/mine/json/tn", None, method="DELETE")
    _same(twin, "/{db}/_find", {"selector": {"t": "x"}, "use_index": "mine"})
