"""``_changes`` filter functions and ``filter=_view`` answer as real CouchDB 3.4.3 does (differential)."""

from __future__ import annotations

import json

from twin import USER, Twin, twin  # noqa: F401 (the fixture)

DDOC = {
    "filters": {
        "even": "function (doc, req) { return doc.n % 2 === 0; }",
        "by_query": "function (doc, req) { return doc.type === req.query.type; }",
        "mine": "function (doc, req) { return doc.owner === req.userCtx.name; }",
        "deleted": "function (doc) { return !!doc._deleted; }",
        "uses_lib": "function (doc) { return require('lib/pick').pick(doc); }",
        "req_shape": "function (doc, req) { if (doc._id === 'a') { log(req); } return ['method', 'query', 'userCtx', 'secObj', 'info', 'headers', 'path', 'uuid'].every(function (k) { return k in req; }) && req.method === 'GET' && typeof req.info === 'object' && req.secObj.members.names[0] === 'bob'; }",
    },
    "views": {"typed": {"map": "function (doc) { if (doc.type) { emit(doc.type, null); } }"}},
    "lib": {"pick": "exports.pick = function (doc) { return doc.n > 2; };"},
}


def _ids(answer: dict) -> list[str]:
    return sorted(row["id"] for row in answer["results"])


def _fill(twin: Twin) -> None:
    twin.same("PUT", "/{db}/_design/app", json=DDOC, status=201)
    docs = [{"_id": f"d{n}", "n": n, "type": "even" if n % 2 == 0 else "odd", "owner": "bob" if n < 3 else "eve"}
            for n in range(6)] + [{"_id": "plain"}, {"_id": "a", "n": 0}]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": docs}, status=201)
    rev = [r.json()["_rev"] for r in twin.both("GET", "/{db}/d4")]
    for client, r in zip(twin.clients, rev):
        assert client.delete(f"/{twin.db}/d4", params={"rev": r}, auth=("admin", "secret")).status_code == 200


def _compare(twin: Twin, params: dict, auth: tuple[str, str] | None = ("admin", "secret")) -> list[str]:
    couch, ours = (r for r in twin.both("GET", "/{db}/_changes", auth=auth, params=params))
    assert ours.status_code == couch.status_code, (couch.text, ours.text)
    if couch.status_code != 200:
        assert ours.json() == couch.json()
        return []
    assert _ids(ours.json()) == _ids(couch.json()), (couch.text, ours.text)
    return _ids(couch.json())


def test_filter_functions(twin: Twin) -> None:
    _fill(twin)
    assert _compare(twin, {"filter": "app/even"}) == ["a", "d0", "d2"]
    assert _compare(twin, {"filter": "app/by_query", "type": "odd"}) == ["d1", "d3", "d5"]
    assert _compare(twin, {"filter": "app/mine"}, auth=USER) == ["d0", "d1", "d2"]
    assert _compare(twin, {"filter": "app/deleted"}) == ["d4"]
    assert _compare(twin, {"filter": "app/uses_lib"}) == ["d3", "d5"]
    assert _compare(twin, {"filter": "app/req_shape"}, auth=USER)
    assert _compare(twin, {"filter": "app/even", "include_docs": "true", "limit": "1"})


def test_filter_view(twin: Twin) -> None:
    _fill(twin)
    assert _compare(twin, {"filter": "_view", "view": "app/typed"}) == ["d0", "d1", "d2", "d3", "d5"]
    _compare(twin, {"filter": "_view"})
    _compare(twin, {"filter": "_view", "view": "app/nope"})


def test_missing_design_documents_and_functions(twin: Twin) -> None:
    _fill(twin)
    for name in ("nope/even", "app/nope", "app"):
        _compare(twin, {"filter": name})


def test_post_changes_and_longpoll_with_a_filter(twin: Twin) -> None:
    _fill(twin)
    couch, ours = twin.both("POST", "/{db}/_changes", params={"filter": "app/even"}, json={})
    assert _ids(ours.json()) == _ids(couch.json())
    since = [r.json()["last_seq"] for r in twin.both("GET", "/{db}/_changes")]
    for client, seq in zip(twin.clients, since):
        client.put(f"/{twin.db}/late-odd", json={"n": 7}, auth=("admin", "secret"))
        client.put(f"/{twin.db}/late-even", json={"n": 8}, auth=("admin", "secret"))
        answer = client.get(f"/{twin.db}/_changes", params={"filter": "app/even", "feed": "longpoll", "since": json.dumps(seq) if False else seq, "timeout": "5000"},
                            auth=("admin", "secret"))
        assert _ids(answer.json()) == ["late-even"], answer.text
