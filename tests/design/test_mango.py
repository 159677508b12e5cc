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


def _rows(twin: Twin) -> None:
    docs = [{"_id": f"r{i:03d}", "kind": ["meeting", "minutes", "attendance"][i % 3], "n": i % 17, "who": f"m{i % 5}",
             "at": {"day": i % 7}} for i in range(120)]
    docs += [{"_id": "nokind", "n": 3}, {"_id": "str", "kind": "meeting", "n": "3"}, {"_id": "nul", "kind": "meeting", "n": None}]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)
    for body in ({"index": {"fields": ["kind", "n"]}, "ddoc": "kn", "name": "kn"},
                 {"index": {"fields": ["at.day"]}, "ddoc": "day", "name": "day"},
                 {"index": {"fields": [{"who": "desc"}, {"n": "desc"}]}, "ddoc": "who", "name": "who"},
                 {"index": {"fields": ["n"], "partial_filter_selector": {"kind": "minutes"}}, "ddoc": "pm", "name": "pm"}):
        _same(twin, "/{db}/_index", body)


INDEXED: list[dict] = [
    {"selector": {"kind": "meeting", "n": 4}},
    {"selector": {"kind": "meeting", "n": {"$gt": 10}}},
    {"selector": {"kind": "minutes", "n": {"$gte": 3, "$lt": 6}}, "limit": 4},
    {"selector": {"kind": "meeting", "n": {"$gt": 2}}, "skip": 5, "limit": 3},
    {"selector": {"kind": {"$gt": "m"}, "n": {"$lte": 2}}},
    {"selector": {"kind": {"$in": ["meeting"]}, "n": {"$gt": 14}}},
    {"selector": {"kind": "meeting", "n": {"$gt": 12}}, "sort": [{"kind": "desc"}, {"n": "desc"}]},
    {"selector": {"kind": "meeting", "n": {"$exists": True}}, "sort": ["kind", "n"], "limit": 5},
    {"selector": {"$and": [{"kind": "attendance"}, {"n": {"$gt": 5}}, {"n": {"$gt": 14}}]}},
    {"selector": {"at.day": {"$lt": 2}}, "fields": ["_id", "at"], "limit": 6},
    {"selector": {"at": {"day": 6}}, "fields": ["_id"]},
    {"selector": {"who": "m2", "n": {"$lt": 5}}, "sort": [{"who": "desc"}]},
    {"selector": {"who": {"$gt": "m3"}, "n": {"$gt": 15}}},
    {"selector": {"n": {"$gt": 14}}, "use_index": "pm"},
    {"selector": {"kind": "minutes", "n": {"$gt": 14}}, "use_index": ["kn", "kn"], "limit": 1},
    {"selector": {"kind": "meeting", "n": {"$gt": 100}}},
    {"selector": {"kind": "meeting", "n": {"$lt": 1}}, "limit": 1},
]


def test_index_rows_answer_as_couchdb_and_read_the_same_range(twin: Twin) -> None:
    _rows(twin)
    for body in INDEXED:
        body = {**body, "execution_stats": True}
        couch, ours = twin.both("POST", "/{db}/_find", json=body)
        assert ours.status_code == couch.status_code == 200, (body, couch.text, ours.text)
        cb, ob = couch.json(), ours.json()
        assert _clean(ob) == _clean(cb), (body, cb, ob)
        # The index range is CouchDB's: a query that reads it to the end examines the same rows. One that
        # stops at its limit examines no more (CouchDB's shards each read ahead before they are stopped).
        counts = [(a["execution_stats"]["total_keys_examined"], a["execution_stats"]["total_docs_examined"]) for a in (cb, ob)]
        if len(cb["docs"]) < body.get("limit", 25):
            assert counts[1] == counts[0], (body, counts)
        else:
            assert counts[1] <= counts[0] and counts[1][0] < 120, (body, counts)
        couch, ours = twin.both("POST", "/{db}/_explain", json=body)
        plans = [{k: a.json()[k] for k in ("limit", "skip", "covering")} | {
            k: a.json()["index"][k] for k in ("ddoc", "name", "type", "def")} | {
            k: a.json()["mrargs"][k] for k in ("start_key", "end_key", "direction", "include_docs")} for a in (couch, ours)]
        assert plans[1] == plans[0], (body, plans)


def test_an_index_follows_writes_and_bookmarks_walk_its_pages(twin: Twin) -> None:
    _rows(twin)
    body: dict[str, Any] = {"selector": {"kind": "meeting", "n": {"$gt": 8}}, "limit": 7}
    _same(twin, "/{db}/_find", body)
    for client in twin.clients:  # change, delete and add documents: the index follows
        auth = ("admin", "secret")
        rows = client.post(f"/{twin.db}/_all_docs", json={"keys": ["r000", "r003", "r012"]}, params={"include_docs": "true"},
                           auth=auth).json()["rows"]
        a, b, c = (r["doc"] for r in rows)
        writes = [{**a, "n": 16}, {**b, "_deleted": True}, {**c, "kind": "minutes"}, {"_id": "late", "kind": "meeting", "n": 9}]
        assert client.post(f"/{twin.db}/_bulk_docs", json={"docs": writes}, auth=auth).status_code == 201
    pages: list[list[list[str]]] = []
    for client in twin.clients:
        walked, bookmark = [], None
        while True:
            answer = client.post(f"/{twin.db}/_find", json={**body, **({"bookmark": bookmark} if bookmark else {})},
                                 auth=("admin", "secret")).json()
            if not answer["docs"]:
                break
            walked.append([d["_id"] for d in answer["docs"]])
            bookmark = answer["bookmark"]
        pages.append(walked)
    assert pages[1] == pages[0] and len(pages[0]) == 3 and "late" in pages[0][0], pages


ID_DOCS = [{"_id": i, "n": k} for k, i in enumerate(["a", "B", "b", "é", "1", "Z", "aa"])] + \
    [{"_id": "sub", "n": 9, "sub": {"_id": "B"}}, {"_id": "arr", "n": 10, "list": [{"_id": "B"}, {"_id": 3}]}]
ID_VALUES: list[Any] = [{}, {"a": 1}, [], ["a"], None, False, True, 0, "B", "a"]


def test_id_compares_in_raw_order_as_couchdb(twin: Twin) -> None:
    """``_id`` is compared as ``_all_docs`` orders it (Erlang's term order): every id is above any
    value that is not a string, and ``"B" < "a"``; a field named ``_id`` elsewhere collates as usual,
    except directly under ``$elemMatch``. The same in ``_changes?filter=_selector``."""
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": ID_DOCS}, status=201)
    selectors: list[dict] = [{"_id": {op: value}} for op in ("$lt", "$lte", "$gt", "$gte", "$eq", "$ne")
                             for value in ID_VALUES]
    selectors += [{"_id": {"$in": ["B", 1, {}]}}, {"_id": {"$nin": ["B", 1, {}]}}, {"_id": {"$gt": "a", "$lt": {}}},
                  {"$and": [{"_id": {"$gt": "B"}}, {"_id": {"$gt": "a"}}]}, {"$and": [{"_id": {"$lt": "B"}}, {"_id": {"$lt": "a"}}]},
                  {"$and": [{"_id": {"$gt": "a"}}, {"_id": {"$gt": {}}}]}, {"$not": {"_id": {"$lt": {}}}},
                  {"_id": {"$not": {"$gt": "a"}}}, {"$or": [{"_id": {"$lte": None}}, {"n": 6}]},
                  {"sub._id": {"$gt": "a"}}, {"sub": {"_id": {"$lt": "a"}}},
                  {"list": {"$elemMatch": {"_id": {"$gt": "a"}}}}, {"list": {"$elemMatch": {"_id": {"$lt": "a"}}}},
                  {"list": {"$elemMatch": {"_id": {"$lt": {}}}}}]
    checked = 0
    for selector in selectors:
        body = {"selector": selector, "fields": ["_id"], "execution_stats": True}
        couch, ours = twin.both("POST", "/{db}/_find", json=body)
        assert ours.status_code == couch.status_code == 200, (selector, couch.text, ours.text)
        cb, ob = couch.json(), ours.json()
        assert ob["docs"] == cb["docs"], (selector, cb["docs"], ob["docs"])
        # The same _all_docs range is read: CouchDB's bounds, in raw order.
        assert ob["execution_stats"]["total_docs_examined"] == cb["execution_stats"]["total_docs_examined"], \
            (selector, cb["execution_stats"], ob["execution_stats"])
        couch, ours = twin.both("POST", "/{db}/_explain", json=body)
        assert [a.json()["mrargs"][k] for a in (ours,) for k in ("start_key", "end_key")] == \
            [couch.json()["mrargs"][k] for k in ("start_key", "end_key")], selector
        couch, ours = twin.both("POST", "/{db}/_changes", params={"filter": "_selector"}, json={"selector": selector})
        assert ours.status_code == couch.status_code == 200, (selector, couch.text, ours.text)
        assert sorted(r["id"] for r in ours.json()["results"]) == sorted(r["id"] for r in couch.json()["results"]), selector
        checked += bool(cb["docs"])
    assert 0 < checked < len(selectors)


RAW_ORDERED: list[Any] = [-1, 0, 2.5, 3, False, None, True, {}, {"a": 1}, {"a": 1, "b": 1}, {"a": 2}, {"b": 0},
                          [], [0], [0, 0], ["a"], "", "1", "B", "Z", "a", "aa", "é"]


def test_raw_order_of_every_kind_of_value_as_couchdb(twin: Twin) -> None:
    """Under ``$elemMatch`` an ``_id`` may hold any value: each compares with each as in CouchDB."""
    docs = [{"_id": f"d{i:02d}", "list": [{"_id": v}]} for i, v in enumerate(RAW_ORDERED)]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)
    for place, value in enumerate(RAW_ORDERED):
        for op in ("$lt", "$eq", "$gt"):
            body = {"selector": {"list": {"$elemMatch": {"_id": {op: value}}}}, "fields": ["_id"], "limit": 100}
            answer = _same(twin, "/{db}/_find", body)
            assert len(answer["docs"]) == {"$lt": place, "$eq": 1, "$gt": len(RAW_ORDERED) - 1 - place}[op], body


PARTIAL = {"a": {"b": 1}, "c": {"$gt": 2, "$lt": 5}, "$not": {"d": 1}, "$nor": [{"e": 1}],
           "$or": [{"f": {"g": 2}}, {"h": [1, 2]}], "i": {"$in": [1]}, "j": {"$elemMatch": {"k": 1, "l": {"$ne": 2}}},
           "m": {}, "n": {"$not": {"$regex": "^x"}}, "o": {"$not": {"$exists": True}},
           "$and": [{"$not": {"$or": [{"p": 1}, {"q": {"$in": [2]}}]}}]}


def test_partial_filter_selector_is_stored_normalised_and_fields_as_given(twin: Twin) -> None:
    """CouchDB writes a partial index's selector into the design document in its normal form (explicit
    ``$eq`` and ``$and``, dotted paths, negations pushed down) and keeps ``def`` as it was sent;
    ``_index`` and ``_explain`` show the fields as ``{name: direction}`` and the selector normalised."""
    for body in ({"index": {"fields": ["hello"], "partial_filter_selector": {"type": "x"}}, "ddoc": "p1", "name": "p1"},
                 {"index": {"fields": [{"hello": "asc"}, "x.y"], "partial_filter_selector": PARTIAL}, "ddoc": "p2", "name": "p2"},
                 {"index": {"fields": ["q"], "partial_filter_selector": {}}, "ddoc": "p3", "name": "p3"},
                 {"index": {"fields": ["hello"], "partial_filter_selector": {"type": "x"}}, "ddoc": "p1", "name": "p1"},
                 {"index": {"fields": [{"hello": "asc"}], "partial_filter_selector": {"type": "x"}}, "ddoc": "p1", "name": "p1"}):
        twin.same("POST", "/{db}/_index", json=body, status=200)
    for ddoc in ("p1", "p2", "p3"):
        stored = twin.same("GET", f"/{{db}}/_design/{ddoc}", status=200)
    assert stored["views"]["p3"]["options"]["def"] == {"fields": ["q"], "partial_filter_selector": {}}
    listed = twin.same("GET", "/{db}/_index", status=200)
    assert listed["indexes"][2]["def"]["partial_filter_selector"]["$and"][0] == {"a.b": {"$eq": 1}}
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": [{"_id": "a", "type": "x", "hello": "w"},
                                                          {"_id": "b", "type": "y", "hello": "w"}]}, status=201)
    for body in ({"selector": {"hello": "w"}, "use_index": ["p1", "p1"]}, {"selector": {"hello": "w"}}):
        couch, ours = twin.both("POST", "/{db}/_explain", json=body)
        assert ours.json()["index"] == couch.json()["index"], (couch.text, ours.text)
        _same(twin, "/{db}/_find", body)
