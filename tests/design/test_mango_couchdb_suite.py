"""Mango requests of CouchDB 3.4.3's own Mango tests (src/mango/test), answered as real CouchDB does.

Each case was found by running that suite against both servers; here the same requests go to
CouchDB and to this server (twin) and the answers are compared. Where CouchDB's reason quotes an
Erlang term (``<<"bing">>``) only the status and error name are compared.
"""

from __future__ import annotations

import base64
from typing import Any

from twin import ADMIN, Twin, twin  # noqa: F401 (the fixture)


def _error(twin: Twin, method: str, path: str, body: Any = None) -> tuple[int, str]:
    couch, ours = twin.both(method, path, json=body) if body is not None else twin.both(method, path)
    assert ours.status_code == couch.status_code, (path, body, couch.text, ours.text)
    assert ours.json().get("error") == couch.json().get("error"), (path, body, couch.text, ours.text)
    return couch.status_code, couch.json().get("error")


def _docs(answer: Any) -> Any:
    if isinstance(answer, dict) and "docs" in answer:
        return [{k: v for k, v in d.items() if k != "_rev"} for d in answer["docs"]], answer.get("warning")
    return answer


def _users(twin: Twin) -> None:
    names = ["Ann", "bob", "Bob", "carl", "Éve", "dave", "Zed", "amy"]
    docs = [{"_id": f"u{i}", "user_id": i, "name": {"first": n, "last": names[-1 - i]}, "age": 20 + 3 * i,
             "company": "co" + "ab"[i % 2], "ordered": n.lower() if i % 3 else n,
             "favorites": ["C", "Erlang", "Python", "Go"][: 1 + i % 4], **({"manager": i % 2 == 0} if i != 3 else {}),
             **({"twitter": f"@{n}"} if i % 3 else {})} for i, n in enumerate(names)]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)
    for fields, name in [(["user_id"], "user_id"), (["name.last", "name.first"], "name"), (["age"], "age"),
                         (["company", "manager"], "company_and_manager"), (["manager"], "manager"),
                         (["favorites.3"], "favorites_3"), (["twitter"], "twitter"), (["ordered"], "ordered")]:
        twin.same("POST", "/{db}/_index", json={"index": {"fields": fields}, "name": name, "ddoc": name}, status=200)


def test_index_definitions_are_refused_as_couchdb_refuses_them(twin: Twin) -> None:
    bad = [{"fields": f} for f in (None, "bing", {"foo": "bar"}, [{"foo": 2}], [{"foo": "asc", "bar": "desc"}], [""])]
    for index in bad:
        assert _error(twin, "POST", "/{db}/_index", {"index": index})[0] == 400
    for key, values in (("name", ["", True, 1.5, [None]]), ("ddoc", ["", "_design/", False, {"a": 1}]),
                        ("type", [None, "foo", {"a": 1}])):
        for value in values:
            assert _error(twin, "POST", "/{db}/_index", {"index": {"fields": ["foo"]}, key: value})[0] == 400
    assert _error(twin, "POST", "/{db}/_index", {"index": {"fields": ["a"], "selector": {"a": 1}}}) == (400, "invalid_key")
    assert _error(twin, "POST", "/{db}/_index", {"index": []}) == (400, "invalid_index")
    assert _error(twin, "POST", "/{db}/_index", {"index": {"fields": ["a"], "partial_filter_selector": 5}}) == \
        (400, "invalid_selector_json")
    assert _error(twin, "POST", "/{db}/_find", {"selector": []}) == (400, "invalid_selector_json")


def test_an_index_without_a_name_gets_the_name_couchdb_gives_it(twin: Twin) -> None:
    # CouchDB names it by the SHA-1 of an Erlang term of the request: the same request makes the
    # same design document on the hub and on a kiosk, so replicating them makes no duplicates
    bodies: list[dict] = [
        {"index": {"fields": ["a"]}}, {"index": {"fields": ["a", "b"]}, "type": "json"},
        {"index": {"fields": ["a"]}, "w": 3}, {"index": {"fields": ["a"]}, "ddoc": "x"},
        {"index": {"fields": ["a"]}, "ddoc": "_design/y"}, {"index": {"fields": ["a"]}, "name": "n1"},
        {"index": {"fields": [{"a": "desc"}], "partial_filter_selector": {
            "b": {"$in": [1, 2, 300, -5, -3000000000, 1.5, "s", None, True, 12345678901234567890, -(10 ** 40)]},
            "c": {"$all": [1, 2, 3]}, "d": {"$elemMatch": {"e": {"$gt": 0.25}}}}}, "partitioned": False},
        {"index": {"fields": ["é", "名前.姓"]}}, {"index": {"fields": ["a"], "partial_filter_selector": {}}},
    ]
    for body in bodies:
        couch, ours = twin.both("POST", "/{db}/_index", json=body)
        assert ours.status_code == couch.status_code == 200, (body, couch.text, ours.text)
        assert ours.json() == couch.json(), body
        again = twin.both("POST", "/{db}/_index", json=body)
        assert [r.json()["result"] for r in again] == ["exists", "exists"], body


def test_unknown_keys_are_refused_after_the_known_ones_are_checked(twin: Twin) -> None:
    index = {"fields": ["a"]}
    for body in ({"index": index, "bogus": 1}, {"index": {**index, "bogus": 1}}, {"index": index, "w": 1, "x": None}):
        assert _error(twin, "POST", "/{db}/_index", body) == (400, "invalid_key")
    assert _error(twin, "POST", "/{db}/_index", {"bogus": 1, "index": index, "type": 5}) == (400, "invalid_string")
    assert _error(twin, "POST", "/{db}/_index", {"index": index, "w": 0}) == (400, "invalid_pos_integer")
    assert _error(twin, "POST", "/{db}/_find", {"selector": {"a": 1}, "bogus": 2}) == (400, "invalid_key")
    assert _error(twin, "POST", "/{db}/_find", {"selector": {"a": 1}, "bogus": 2, "limit": -1}) == \
        (400, "invalid_non_neg_integer")
    assert _error(twin, "POST", "/{db}/_explain", {"selector": {"a": 1}, "fields ": []}) == (400, "invalid_key")
    assert _error(twin, "POST", "/{db}/_find", {"selector": {"a": 1}, "partition": "p1"}) == (400, "bad_request")
    assert _error(twin, "POST", "/{db}/_index/_bulk_delete", {"docids": [], "x": 1}) == (400, "invalid_key")
    twin.same("POST", "/{db}/_find", json={"selector": {"a": 1}, "stale": "ok", "partition": ""}, status=200)
    for bookmark in ("nil", "AAAA", "g2wAAAABaAJkAA5zdGFydGtleV9kb2NpZGQAA25pbGo"):
        assert _error(twin, "POST", "/{db}/_find", {"selector": {"a": 1}, "bookmark": bookmark}) == (400, "invalid_bookmark")
    forged = base64.urlsafe_b64encode(b'{"skip": -5}').decode()  # a JSON bookmark not of this server's form
    refused = twin.clients[1].post(f"/{twin.db}/_find", json={"selector": {"a": 1}, "bookmark": forged}, auth=ADMIN)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_bookmark"
    # CouchDB answers these with 500 (an Erlang term as the reason); here a plain 400 says why
    for path, body in (("/{db}/_find", {"selector": {"a": 1}, "stale": "bad"}),
                       ("/{db}/_index", {"index": index, "partitioned": True}),
                       ("/{db}/_index", {"index": index, "partitioned": "x"})):
        couch, ours = twin.both("POST", path, json=body)
        assert couch.status_code == 500 and ours.status_code == 400, (body, couch.text, ours.text)


def test_index_listing_deleting_and_info(twin: Twin) -> None:
    for n in range(3):
        twin.same("POST", "/{db}/_index", json={"index": {"fields": [f"f{n}"]}, "name": f"i{n}", "ddoc": f"d{n}"}, status=200)
    for query in ("limit=2", "limit=5;skip=2", "skip=3", "skip=9"):
        twin.same("GET", "/{db}/_index?" + query, status=200)
    for query in ("skip=-1", "limit=0", "limit=x"):
        assert _error(twin, "GET", "/{db}/_index?" + query) == (500, "invalid_list_index_params")
    for path in ("/{db}/_index/d0/json/nope", "/{db}/_index/nope/json/i0", "/{db}/_index/d0/text/i0",
                 "/{db}/_index/a/b/c/d/e"):
        assert _error(twin, "DELETE", path) == (404, "not_found")
    assert _error(twin, "GET", "/{db}/_index/_bulk_delete") == (405, "method_not_allowed")
    assert _error(twin, "POST", "/{db}/_index/_bulk_delete", {"docids": "d0"}) == (400, "invalid_bulk_docs")
    twin.same("POST", "/{db}/_index/_bulk_delete", json={"docids": ["_design/d1", "_design/none"]}, status=200)
    couch, ours = twin.both("GET", "/{db}/_design/d0/_info")
    assert ours.status_code == couch.status_code == 200
    assert ours.json()["name"] == couch.json()["name"] == "d0"
    assert ours.json()["view_index"]["language"] == couch.json()["view_index"]["language"] == "query"
    assert _error(twin, "GET", "/{db}/_design/none/_info") == (404, "not_found")
    # A query design document whose view is JavaScript is refused, in _bulk_docs as one row.
    docs = [{"_id": "_design/bad", "language": "query", "views": {"v": {"map": "function(d){}"}}}, {"_id": "fine"}]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)


def test_find_options_are_refused_as_couchdb_refuses_them(twin: Twin) -> None:
    base = {"selector": {"int": {"$gt": 2}}}
    for key, value in (("conflicts", [None]), ("conflicts", None), ("fields", [None, True]), ("fields", "x"),
                       ("r", [2]), ("r", 0), ("r", True), ("update", "x"), ("stable", 1),
                       ("execution_stats", "yes"), ("allow_fallback", None), ("use_index", 5),
                       ("use_index", "foo/bar/baz"), ("use_index", ["a", "b", "c"]), ("sort", "x"),
                       ("sort", [{"a": "up"}])):
        assert _error(twin, "POST", "/{db}/_find", {**base, key: value})[0] == 400, (key, value)
    for selector in ({"_id": {"$beginsWith": True}}, {"a": {"$regex": 5}}, {"a": {"$size": -1}},
                     {"a": {"$in": 5}}, {"a": {"$foo": 1}}, {"a": {"$exists": 1}}):
        assert _error(twin, "POST", "/{db}/_find", {"selector": selector})[0] == 400, selector


CHOICES: list[dict] = [
    {"selector": {"twitter": {"$exists": False}}},  # not an index of twitter: it would leave them out
    {"selector": {"company": "coa", "manager": {"$exists": False}}},
    {"selector": {"company": {"$gt": "a", "$lt": "z"}, "$or": [{"manager": True}, {"manager": False}]}},
    {"selector": {"company": "cob", "manager": {"$gt": None}}, "sort": ["manager"]},  # after a constant column
    {"selector": {"name.last": {"$lt": "M"}}, "sort": [{"name.first": "desc"}]},  # no_usable_index
    {"selector": {"company": {"$gt": "a"}, "manager": {"$gt": None}}, "sort": ["manager"]},  # no_usable_index
    {"selector": {"favorites.3": "Go"}},
    {"selector": {"ordered": {"$gte": "b"}}},  # ICU: "Bob" and "bob" both
    {"selector": {"ordered": {"$lte": "b"}}},
    {"selector": {"name.first": {"$gt": "a", "$lt": "c"}}},
    {"selector": {"$or": []}},
    {"selector": {"$or": [], "age": {"$gt": 30}}},
    {"selector": {"$or": [], "a": {"$in": []}}},
    {"selector": {"_id": "u3"}},
    {"selector": {"_id": {"$beginsWith": "u"}}, "fields": ["_id"]},
    {"selector": {"ordered": {"$beginsWith": "b"}}},
    {"selector": {"manager": True}, "use_index": "manager/manager"},
    {"selector": {"manager": True}, "use_index": "_design/manager/manager"},
    {"selector": {"manager": True}, "use_index": "foo/bar"},
    {"selector": {"manager": True}, "use_index": "nope", "allow_fallback": False},
    {"selector": {"foo": "bar"}, "allow_fallback": False},
    {"selector": {"company": {"$exists": True}, "manager": True}, "fields": ["company"]},
    {"selector": {"age": {"$lte": 35}}, "fields": ["age"], "r": 3, "conflicts": True, "update": False,
     "stable": True, "execution_stats": True, "use_index": "age"},
]


def test_index_choice_ranges_and_explain_as_couchdb(twin: Twin) -> None:
    _users(twin)
    for body in CHOICES:
        couch, ours = twin.both("POST", "/{db}/_explain", json=body)
        assert ours.status_code == couch.status_code, (body, couch.text, ours.text)
        if couch.status_code != 200:
            assert ours.json()["error"] == couch.json()["error"], (body, couch.text, ours.text)
            continue
        c, o = couch.json(), ours.json()
        for key in ("index", "mrargs", "covering", "opts", "limit", "skip", "fields", "index_candidates"):
            assert o.get(key) == c.get(key), (body, key, c.get(key), o.get(key))
        couch, ours = twin.both("POST", "/{db}/_find", json=body)
        assert ours.status_code == couch.status_code, (body, couch.text, ours.text)
        assert _docs(ours.json()) == _docs(couch.json()), (body, couch.text, ours.text)


def test_explain_without_a_usable_index(twin: Twin) -> None:
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": [{"_id": "a", "age": 1}]}, status=201)
    for body in ({"selector": {"age": 23}}, {"selector": {"age": 23}, "sort": ["company"]}):
        couch, ours = twin.both("POST", "/{db}/_explain", json=body)
        assert ours.status_code == couch.status_code == 200
        for key in ("index", "index_candidates", "selector_hints", "partitioned"):
            assert ours.json()[key] == couch.json()[key], (body, key, couch.text, ours.text)


def test_a_bookmark_holds_its_place_when_documents_are_written_between_pages(twin: Twin) -> None:
    # CouchDB's bookmark is the last row's key and document id: the next page begins after that row,
    # whatever was written before it in between (a bookmark counting rows repeated documents).
    _users(twin)
    queries = [{"selector": {"age": {"$gt": 0}}, "sort": [{"age": "asc"}], "limit": 3},
               {"selector": {"age": {"$gt": 0}}, "sort": [{"age": "desc"}], "limit": 3},
               {"selector": {"_id": {"$gt": None}}, "limit": 3},
               {"selector": {"_id": {"$gt": None}}, "sort": [{"_id": "desc"}], "limit": 3},
               {"selector": {"age": {"$gt": 0}}, "sort": [{"age": "asc"}], "limit": 2, "skip": 1}]
    firsts = [[c.post(f"/{twin.db}/_find", json=q, auth=ADMIN).json() for c in twin.clients] for q in queries]
    for (couch, ours), query in zip(firsts, queries):
        assert _docs(ours) == _docs(couch), (query, couch, ours)
    # Written between the pages: documents before every first page's end, in both orders.
    twin.same("POST", "/{db}/_bulk_docs", status=201, json={"docs": [
        {"_id": "u0a", "age": 1}, {"_id": "u0b", "age": 2}, {"_id": "u9", "age": 90}, {"_id": "u9b", "age": 91}]})
    for (couch, ours), query in zip(firsts, queries):
        pages = [c.post(f"/{twin.db}/_find", json={**query, "bookmark": first["bookmark"]}, auth=ADMIN).json()
                 for c, first in zip(twin.clients, (couch, ours))]
        assert _docs(pages[1]) == _docs(pages[0]) and pages[0]["docs"], (query, pages)
        seen = {d["_id"] for d in couch["docs"]}
        assert not seen & {d["_id"] for d in pages[1]["docs"]}, (query, pages)  # nothing shown twice


def test_reads_bookmarks_updates_and_conflicts_as_couchdb(twin: Twin) -> None:
    _users(twin)
    # Rows read: CouchDB reads the row after a full page too, and counts design documents in _all_docs.
    for body in ({"selector": {"age": {"$lte": 32}}, "limit": 3}, {"selector": {"age": {"$lte": 32}}, "limit": 9},
                 {"selector": {"age": {"$lte": 32}}, "limit": 3, "fields": ["age"]},
                 {"selector": {"foo": {"$exists": False}}, "limit": 2}, {"selector": {"foo": "bar"}},
                 {"selector": {"age": {"$lt": 30}}, "r": 3}):
        answers = [a.json()["execution_stats"] for a in twin.both("POST", "/{db}/_find", json={**body, "execution_stats": True})]
        assert [{k: v for k, v in a.items() if k != "execution_time_ms"} for a in answers][0] == \
            [{k: v for k, v in a.items() if k != "execution_time_ms"} for a in answers][1], (body, answers)
    # A page after the last one answers the bookmark it was given.
    for client in twin.clients:
        first = client.post(f"/{twin.db}/_find", json={"selector": {"_id": {"$gt": None}}, "limit": 50}, auth=ADMIN).json()
        empty = client.post(f"/{twin.db}/_find", json={"selector": {"_id": {"$gt": None}}, "limit": 50,
                                                         "bookmark": first["bookmark"]}, auth=ADMIN).json()
        again = client.post(f"/{twin.db}/_find", json={"selector": {"_id": {"$gt": None}}, "limit": 50,
                                                         "bookmark": empty["bookmark"]}, auth=ADMIN).json()
        assert len(first["docs"]) == 8 and empty["docs"] == again["docs"] == [] and again["bookmark"] == empty["bookmark"]
    # update=false reads the index as it was; a conflicting revision shows with conflicts=true.
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": [{"_id": "late", "age": 99}]}, status=201)
    for body in ({"selector": {"age": 99}, "update": False}, {"selector": {"age": 99}},
                 {"selector": {"age": 99}, "update": False}):
        couch, ours = twin.both("POST", "/{db}/_find", json=body)
        assert _docs(ours.json()) == _docs(couch.json()), (body, couch.text, ours.text)
    conflict = {"_id": "late", "_rev": "1-23202479633c2b380f79507a776743d5", "age": 98}
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": [conflict], "new_edits": False}, status=201)
    twin.same("POST", "/{db}/_index", json={"index": {"fields": ["_conflicts"]}, "ddoc": "c", "name": "c"}, status=200)
    couch, ours = twin.both("POST", "/{db}/_find", json={"selector": {"_conflicts": {"$exists": True}}, "conflicts": True})
    assert ours.json()["docs"] == couch.json()["docs"] and len(couch.json()["docs"]) == 1, (couch.text, ours.text)
