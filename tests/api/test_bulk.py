"""_bulk_docs, _bulk_get, _revs_diff and _all_docs as CouchDB 3 answers them, and gzip in both directions."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import quote

import pytest
from api_helpers import DB, body, bulk, create_db, get, info, post, put
from test_error_shape import assert_couch_error

H = {c: c * 32 for c in "0123456789abcdef"}


@pytest.fixture
def db(client: Any) -> Any:
    create_db(client)
    return client


def revs_of(doc_id: str, start: int, *hashes: str, deleted: bool = False, **fields: Any) -> dict:
    doc = {"_id": doc_id, "_rev": f"{start}-{hashes[0]}", "_revisions": {"start": start, "ids": list(hashes)},
           **fields}
    if deleted:
        doc["_deleted"] = True
    return doc


# -- _bulk_docs --------------------------------------------------------------------------


def test_bulk_docs_creates_updates_and_deletes(db: Any) -> None:
    rows = bulk(db, [{"_id": "a", "v": 1}, {"_id": "b", "v": 2}, {"v": 3}])
    assert [r["ok"] for r in rows] == [True, True, True]
    assert [r["id"] for r in rows[:2]] == ["a", "b"] and isinstance(rows[2]["id"], str)
    assert all(set(r) == {"ok", "id", "rev"} and r["rev"].startswith("1-") for r in rows)
    rows2 = bulk(db, [{"_id": "a", "_rev": rows[0]["rev"], "v": 10},
                      {"_id": "b", "_rev": rows[1]["rev"], "_deleted": True}])
    assert rows2[0]["rev"].startswith("2-") and rows2[1]["rev"].startswith("2-")
    assert get(db, f"/{DB}/a")["v"] == 10
    assert_couch_error(db.get(f"/{DB}/b"), 404, "not_found")
    assert info(db)["doc_count"] == 2 and info(db)["doc_del_count"] == 1


def test_bulk_docs_conflict_rows(db: Any) -> None:
    rev = put(db, "a", {"v": 1})
    rows = bulk(db, [{"_id": "a", "v": 2}, {"_id": "a", "_rev": rev, "v": 3}])
    assert rows[0] == {"id": "a", "error": "conflict", "reason": "Document update conflict."}
    assert rows[1]["ok"] is True
    assert get(db, f"/{DB}/a")["v"] == 3


def test_same_id_twice_in_one_batch(db: Any) -> None:
    """CouchDB applies the first and reports a conflict for the second."""
    rows = bulk(db, [{"_id": "twice", "v": 1}, {"_id": "twice", "v": 2}])
    assert rows[0]["ok"] is True
    assert rows[1]["error"] == "conflict"
    assert get(db, f"/{DB}/twice")["v"] == 1


def test_new_edits_false_returns_empty_list_and_creates_conflicts(db: Any) -> None:
    result = db.post(f"/{DB}/_bulk_docs", json={"new_edits": False, "docs": [
        revs_of("doc", 2, H["a"], H["1"], v="a"),
        revs_of("doc", 2, H["b"], H["1"], v="b"),
        revs_of("other", 1, H["5"], v="o"),
    ]})
    assert result.status_code == 201
    assert body(result) == []
    doc = get(db, f"/{DB}/doc?conflicts=true")
    assert doc == {"_id": "doc", "_rev": "2-" + H["b"], "v": "b", "_conflicts": ["2-" + H["a"]]}
    assert get(db, f"/{DB}/other") == {"_id": "other", "_rev": "1-" + H["5"], "v": "o"}


def test_new_edits_false_is_idempotent(db: Any) -> None:
    docs = [revs_of("doc", 3, H["c"], H["b"], H["a"], v=3)]
    assert bulk(db, docs, new_edits=False) == []
    seq = info(db)["update_seq"]
    assert bulk(db, docs, new_edits=False) == []
    assert info(db)["update_seq"] == seq
    assert get(db, f"/{DB}/doc?revs=true")["_revisions"] == {"start": 3, "ids": [H["c"], H["b"], H["a"]]}


def test_new_edits_false_winner_rule(db: Any) -> None:
    """CouchDB's winner: not deleted first, then the highest generation, then the highest hash."""
    assert bulk(db, [revs_of("w", 3, H["1"], H["1"], H["1"], v="long"),
                     revs_of("w", 2, H["f"], H["1"], v="short"),
                     revs_of("w", 4, H["e"], H["2"], H["2"], H["1"], deleted=True)], new_edits=False) == []
    assert get(db, f"/{DB}/w?conflicts=true&deleted_conflicts=true") == {
        "_id": "w", "_rev": "3-" + H["1"], "v": "long", "_conflicts": ["2-" + H["f"]],
        "_deleted_conflicts": ["4-" + H["e"]]}
    rows = get(db, f"/{DB}/_changes?style=all_docs")["results"]
    assert [c["rev"] for c in rows[0]["changes"]] == ["3-" + H["1"], "2-" + H["f"], "4-" + H["e"]]


def test_new_edits_false_extends_existing_history(db: Any) -> None:
    rev1 = put(db, "doc", {"v": 1})
    h1 = rev1.split("-", 1)[1]
    assert bulk(db, [revs_of("doc", 3, H["c"], H["b"], h1, v=3)], new_edits=False) == []
    doc = get(db, f"/{DB}/doc?conflicts=true&revs=true")
    assert doc["_rev"] == "3-" + H["c"] and "_conflicts" not in doc
    assert doc["_revisions"]["ids"] == [H["c"], H["b"], h1]


def test_new_edits_false_without_revisions(db: Any) -> None:
    assert bulk(db, [{"_id": "bare", "_rev": "1-" + H["d"], "x": 1}], new_edits=False) == []
    assert get(db, f"/{DB}/bare") == {"_id": "bare", "_rev": "1-" + H["d"], "x": 1}


def test_put_with_new_edits_false(db: Any) -> None:
    response = db.put(f"/{DB}/doc?new_edits=false", json=revs_of("doc", 2, H["b"], H["a"], v=2))
    assert response.status_code == 201
    assert body(response)["rev"] == "2-" + H["b"]
    assert get(db, f"/{DB}/doc")["v"] == 2


# -- _bulk_get ---------------------------------------------------------------------------


def test_bulk_get_with_revs(db: Any) -> None:
    rev1 = put(db, "a", {"v": 1})
    rev2 = put(db, "a", {"_rev": rev1, "v": 2})
    put(db, "b", {"w": 1})
    missing_rev = "1-" + H["e"]
    result = post(db, f"/{DB}/_bulk_get?revs=true", {"docs": [
        {"id": "a", "rev": rev1}, {"id": "a"}, {"id": "b"}, {"id": "a", "rev": missing_rev}, {"id": "nope"}]})
    results = result["results"]
    assert [r["id"] for r in results] == ["a", "a", "b", "a", "nope"]
    assert results[0]["docs"] == [{"ok": {"_id": "a", "_rev": rev1, "v": 1,
                                          "_revisions": {"start": 1, "ids": [rev1[2:]]}}}]
    assert results[1]["docs"] == [{"ok": {"_id": "a", "_rev": rev2, "v": 2,
                                          "_revisions": {"start": 2, "ids": [rev2[2:], rev1[2:]]}}}]
    assert results[2]["docs"][0]["ok"]["w"] == 1
    assert results[3]["docs"] == [{"error": {"id": "a", "rev": missing_rev, "error": "not_found",
                                             "reason": "missing"}}]
    error = results[4]["docs"][0]["error"]
    assert error["id"] == "nope" and error["error"] == "not_found"


def test_bulk_get_without_revs_has_no_revisions(db: Any) -> None:
    rev = put(db, "a", {"v": 1})
    result = post(db, f"/{DB}/_bulk_get", {"docs": [{"id": "a", "rev": rev}]})
    assert result == {"results": [{"id": "a", "docs": [{"ok": {"_id": "a", "_rev": rev, "v": 1}}]}]}


def test_bulk_get_of_a_conflicted_document_by_rev(db: Any) -> None:
    assert bulk(db, [revs_of("c", 2, H["a"], H["1"], v="a"), revs_of("c", 2, H["b"], H["1"], v="b")],
                new_edits=False) == []
    result = post(db, f"/{DB}/_bulk_get?revs=true",
                  {"docs": [{"id": "c", "rev": "2-" + H["a"]}, {"id": "c", "rev": "2-" + H["b"]}]})
    docs = [r["docs"][0]["ok"] for r in result["results"]]
    assert [(d["_rev"], d["v"]) for d in docs] == [("2-" + H["a"], "a"), ("2-" + H["b"], "b")]
    assert all(d["_revisions"] == {"start": 2, "ids": [d["_rev"][2:], H["1"]]} for d in docs)


def test_bulk_get_deleted_revision(db: Any) -> None:
    rev = put(db, "d")
    gone = body(db.delete(f"/{DB}/d?rev={rev}"))["rev"]
    result = post(db, f"/{DB}/_bulk_get", {"docs": [{"id": "d", "rev": gone}]})
    assert result["results"][0]["docs"] == [{"ok": {"_id": "d", "_rev": gone, "_deleted": True}}]


# -- _revs_diff --------------------------------------------------------------------------


def test_revs_diff(db: Any) -> None:
    rev1 = put(db, "a", {"v": 1})
    rev2 = put(db, "a", {"_rev": rev1, "v": 2})
    put(db, "b")
    result = post(db, f"/{DB}/_revs_diff", {
        "a": [rev1, rev2, "3-" + H["c"], "1-" + H["f"]],
        "b": [get(db, f"/{DB}/b")["_rev"]],
        "c": ["1-" + H["1"], "2-" + H["2"]],
    })
    assert set(result) == {"a", "c"}
    assert sorted(result["a"]["missing"]) == sorted(["3-" + H["c"], "1-" + H["f"]])
    assert result["a"]["possible_ancestors"] == [rev2]
    assert result["c"] == {"missing": ["1-" + H["1"], "2-" + H["2"]]}


def test_revs_diff_nothing_missing(db: Any) -> None:
    rev = put(db, "a")
    assert post(db, f"/{DB}/_revs_diff", {"a": [rev]}) == {}
    assert post(db, f"/{DB}/_revs_diff", {}) == {}


def test_revs_diff_possible_ancestors_are_lower_leaves(db: Any) -> None:
    assert bulk(db, [revs_of("d", 2, H["a"], H["1"]), revs_of("d", 3, H["b"], H["b"], H["1"])],
                new_edits=False) == []
    result = post(db, f"/{DB}/_revs_diff", {"d": ["3-" + H["c"]]})
    assert result == {"d": {"missing": ["3-" + H["c"]], "possible_ancestors": ["2-" + H["a"]]}}


# -- _all_docs ---------------------------------------------------------------------------


@pytest.fixture
def abc(db: Any) -> dict[str, str]:
    revs = {r["id"]: r["rev"] for r in bulk(db, [{"_id": i, "n": n} for n, i in enumerate("abcdef")])}
    gone = body(db.delete(f"/{DB}/c?rev={revs['c']}"))["rev"]
    revs["c"] = gone
    return revs


def test_all_docs_basic(db: Any, abc: dict[str, str]) -> None:
    result = get(db, f"/{DB}/_all_docs")
    assert result["total_rows"] == 5 and result["offset"] == 0
    assert result["rows"] == [{"id": i, "key": i, "value": {"rev": abc[i]}} for i in "abdef"]


def test_all_docs_include_docs(db: Any, abc: dict[str, str]) -> None:
    rows = get(db, f"/{DB}/_all_docs?include_docs=true&limit=2")["rows"]
    assert rows == [{"id": i, "key": i, "value": {"rev": abc[i]}, "doc": {"_id": i, "_rev": abc[i], "n": n}}
                    for i, n in (("a", 0), ("b", 1))]


def test_all_docs_ranges(db: Any, abc: dict[str, str]) -> None:
    def ids(query: str) -> list[str]:
        return [r["id"] for r in get(db, f"/{DB}/_all_docs?{query}")["rows"]]

    assert ids('startkey="b"&endkey="e"') == ["b", "d", "e"]
    assert ids('start_key="b"&end_key="e"') == ["b", "d", "e"]
    assert ids('startkey="b"&endkey="e"&inclusive_end=false') == ["b", "d"]
    assert ids('key="d"') == ["d"]
    assert ids("limit=2") == ["a", "b"]
    assert ids("skip=2") == ["d", "e", "f"]
    assert ids("skip=1&limit=2") == ["b", "d"]
    assert ids("descending=true") == ["f", "e", "d", "b", "a"]
    assert ids('descending=true&startkey="e"&endkey="b"') == ["e", "d", "b"]
    assert ids('descending=true&startkey="e"&limit=1&skip=1') == ["d"]
    assert ids('startkey="bb"') == ["d", "e", "f"]
    assert ids('startkey="z"') == []
    assert ids("limit=0") == []


def test_all_docs_offset(db: Any, abc: dict[str, str]) -> None:
    assert get(db, f'/{DB}/_all_docs?startkey="d"')["offset"] == 2
    assert get(db, f'/{DB}/_all_docs?startkey="d"&skip=1')["offset"] == 3
    assert get(db, f'/{DB}/_all_docs?descending=true&startkey="d"')["offset"] == 2


def test_all_docs_keys(db: Any, abc: dict[str, str]) -> None:
    expected = [
        {"id": "d", "key": "d", "value": {"rev": abc["d"]}, "doc": {"_id": "d", "_rev": abc["d"], "n": 3}},
        {"key": "zzz", "error": "not_found"},
        {"id": "c", "key": "c", "value": {"rev": abc["c"], "deleted": True}, "doc": None},
        {"id": "a", "key": "a", "value": {"rev": abc["a"]}, "doc": {"_id": "a", "_rev": abc["a"], "n": 0}},
    ]
    keys = ["d", "zzz", "c", "a"]
    by_post = post(db, f"/{DB}/_all_docs?include_docs=true", {"keys": keys})
    assert by_post["rows"] == expected and by_post["total_rows"] == 5
    by_get = get(db, f"/{DB}/_all_docs?include_docs=true&keys={quote(json.dumps(keys))}")
    assert by_get["rows"] == expected
    plain = post(db, f"/{DB}/_all_docs", {"keys": ["c"]})["rows"]
    assert plain == [{"id": "c", "key": "c", "value": {"rev": abc["c"], "deleted": True}}]


def test_all_docs_update_seq(db: Any, abc: dict[str, str]) -> None:
    result = get(db, f"/{DB}/_all_docs?update_seq=true")
    assert result["update_seq"] == info(db)["update_seq"]


def test_all_docs_many_pages(db: Any) -> None:
    """More rows than the store reads per page: none lost or repeated, limit and skip across pages."""
    ids = [f"doc{i:05d}" for i in range(1234)]
    for start in range(0, len(ids), 400):
        bulk(db, [{"_id": i} for i in ids[start:start + 400]])
    assert [r["id"] for r in get(db, f"/{DB}/_all_docs")["rows"]] == ids
    assert [r["id"] for r in get(db, f"/{DB}/_all_docs?skip=499&limit=3")["rows"]] == ids[499:502]
    assert [r["id"] for r in get(db, f"/{DB}/_all_docs?descending=true&skip=600")["rows"]] == ids[::-1][600:]


# -- gzip ----------------------------------------------------------------------------------


def test_gzip_response_for_big_all_docs(db: Any) -> None:
    bulk(db, [{"_id": f"doc{i:04d}", "text": "lorem ipsum " * 5} for i in range(300)])
    response = db.get(f"/{DB}/_all_docs?include_docs=true", headers={"Accept-Encoding": "gzip, deflate"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    raw = response.get_data()
    assert raw[:2] == b"\x1f\x8b"
    decoded = json.loads(gzip.decompress(raw))
    assert decoded["total_rows"] == 300 and len(decoded["rows"]) == 300
    assert len(raw) < len(gzip.decompress(raw)) / 3
    plain = db.get(f"/{DB}/_all_docs?include_docs=true")
    assert "Content-Encoding" not in plain.headers and json.loads(plain.get_data()) == decoded


def test_gzip_response_for_big_document(db: Any) -> None:
    put(db, "big", {"text": "x" * 5000})
    response = db.get(f"/{DB}/big", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(response.get_data()))["text"] == "x" * 5000


def test_gzip_request_body_is_accepted(db: Any) -> None:
    payload = {"docs": [{"_id": f"z{i}", "text": "đảng " * 50} for i in range(50)]}
    response = db.post(f"/{DB}/_bulk_docs", data=gzip.compress(json.dumps(payload).encode()),
                       content_type="application/json", headers={"Content-Encoding": "gzip"})
    assert response.status_code == 201, response.get_data()
    assert all(row["ok"] for row in body(response))
    assert get(db, f"/{DB}/z7")["text"] == "đảng " * 50
    put_response = db.put(f"/{DB}/single", data=gzip.compress(b'{"a": 1}'), content_type="application/json",
                          headers={"Content-Encoding": "gzip"})
    assert put_response.status_code == 201
    assert get(db, f"/{DB}/single")["a"] == 1


def test_chunked_request_bodies_on_the_live_server(kiosk: Any) -> None:
    """Clients that stream a body (Transfer-Encoding: chunked, no Content-Length) are read in full."""
    import httpx

    with httpx.Client(base_url=kiosk.base, auth=("admin", "secret"), trust_env=False, timeout=30) as http:
        assert http.put(f"/{DB}").status_code == 201
        parts = [b'{"docs": [{"_id": "c1", "v": 1},', b' {"_id": "c2", "v": 2}]}']
        response = http.post(f"/{DB}/_bulk_docs", content=iter(parts), headers={"Content-Type": "application/json"})
        assert response.status_code == 201, response.text
        assert [row["id"] for row in response.json()] == ["c1", "c2"]
        packed = gzip.compress(json.dumps({"docs": [{"_id": "c3", "v": 3}]}).encode())
        response = http.post(f"/{DB}/_bulk_docs", content=iter([packed[:7], packed[7:]]),
                             headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert response.status_code == 201, response.text
        assert http.get(f"/{DB}/c3").json()["v"] == 3
        response = http.put(f"/{DB}/c4/blob.bin", content=iter([b"abc", b"def"]),
                            headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 201, response.text
        assert http.get(f"/{DB}/c4/blob.bin").content == b"abcdef"
