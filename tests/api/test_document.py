"""Single documents, as CouchDB 3 documents them: /{db}/{docid}, _local docs, _security,
_revs_limit with compaction, /_session and the server identity."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from api_helpers import DB, body, bulk, create_db, get, info, multipart_parts, post, put, seq_number
from test_error_shape import assert_couch_error

EMPTY_REV = "1-967a00dff5e02add41819138abb3284d"  # {"_id": "x"} in CouchDB
FOO_BAR_REV = "1-4c6114c65e295552ab1019e2b046b10e"  # {"_id": "x", "foo": "bar"} in CouchDB
EMPTY_DELETED_REV = "2-eec205a9d413992850a6e32678485900"  # EMPTY_REV deleted, in CouchDB
H = {c: c * 32 for c in "0123456789abcdef"}  # 32-hex-digit hashes, ordered as their digit


@pytest.fixture
def db(client: Any) -> Any:
    """The admin client with database ``db`` created."""
    create_db(client)
    return client


def history(db: Any, doc_id: str, *revs_newest_first: str, deleted: bool = False, **fields: Any) -> None:
    """Store one branch with new_edits=false: revs given as 'N-hash', newest first, consecutive."""
    start = int(revs_newest_first[0].split("-")[0])
    doc = {"_id": doc_id, "_rev": revs_newest_first[0], **fields,
           "_revisions": {"start": start, "ids": [r.split("-", 1)[1] for r in revs_newest_first]}}
    if deleted:
        doc["_deleted"] = True
    assert bulk(db, [doc], new_edits=False) == []


# -- deterministic revisions ---------------------------------------------------------


def test_first_revisions_match_couchdb(db: Any) -> None:
    assert put(db, "x") == EMPTY_REV
    assert put(db, "y", {"foo": "bar"}) == FOO_BAR_REV
    assert post(db, f"/{DB}", {"_id": "z"}, status=201)["rev"] == EMPTY_REV
    assert bulk(db, [{"_id": "w", "foo": "bar"}])[0]["rev"] == FOO_BAR_REV


def test_delete_revision_matches_couchdb(db: Any) -> None:
    put(db, "x")
    response = db.delete(f"/{DB}/x?rev={EMPTY_REV}")
    assert response.status_code == 200
    assert body(response) == {"ok": True, "id": "x", "rev": EMPTY_DELETED_REV}


def test_same_edit_on_two_servers_gives_same_revision(db: Any, make_app: Callable[..., Any],
                                                      make_client: Callable[..., Any], tmp_path: Any) -> None:
    """Revisions depend only on content and parent, so an independent server computes the same ones."""
    other_app = make_app(settings=db.application.config["SETTINGS"].replace("server", data_dir=str(tmp_path / "b")))
    other = make_client(other_app)
    create_db(other)
    for client in (db, other):
        rev1 = put(client, "doc", {"a": [1, 2.5, "three", None, True], "b": {"c": "đảng"}})
        put(client, "doc", {"_rev": rev1, "a": 2})
    assert get(db, f"/{DB}/doc?revs=true") == get(other, f"/{DB}/doc?revs=true")


# -- PUT / GET / DELETE ---------------------------------------------------------------


def test_put_get_update_delete(db: Any) -> None:
    response = db.put(f"/{DB}/doc", json={"title": "one"})
    assert response.status_code == 201
    created = body(response)
    assert created == {"ok": True, "id": "doc", "rev": created["rev"]}
    assert response.headers["ETag"] == f'"{created["rev"]}"'
    rev1 = created["rev"]
    assert rev1.startswith("1-")

    response = db.get(f"/{DB}/doc")
    assert response.status_code == 200
    assert body(response) == {"_id": "doc", "_rev": rev1, "title": "one"}
    assert response.headers["ETag"] == f'"{rev1}"'

    rev2 = put(db, "doc", {"_rev": rev1, "title": "two"})
    assert rev2.startswith("2-")
    assert get(db, f"/{DB}/doc") == {"_id": "doc", "_rev": rev2, "title": "two"}
    assert get(db, f"/{DB}/doc?rev={rev1}") == {"_id": "doc", "_rev": rev1, "title": "one"}

    deleted = db.delete(f"/{DB}/doc?rev={rev2}")
    assert deleted.status_code == 200
    rev3 = body(deleted)["rev"]
    assert body(deleted) == {"ok": True, "id": "doc", "rev": rev3} and rev3.startswith("3-")
    assert assert_couch_error(db.get(f"/{DB}/doc"), 404, "not_found")["reason"] == "deleted"
    assert get(db, f"/{DB}/doc?rev={rev3}") == {"_id": "doc", "_rev": rev3, "_deleted": True}
    assert info(db)["doc_count"] == 0 and info(db)["doc_del_count"] == 1


def test_conflicts_are_409(db: Any) -> None:
    rev1 = put(db, "doc", {"v": 1})
    put(db, "doc", {"_rev": rev1, "v": 2})
    assert_couch_error(db.put(f"/{DB}/doc", json={"v": 3}), 409, "conflict")
    assert_couch_error(db.put(f"/{DB}/doc", json={"_rev": rev1, "v": 3}), 409, "conflict")
    assert_couch_error(db.put(f"/{DB}/doc?rev={rev1}", json={"v": 3}), 409, "conflict")
    assert_couch_error(db.delete(f"/{DB}/doc?rev={rev1}"), 409, "conflict")
    assert_couch_error(db.delete(f"/{DB}/doc"), 409, "conflict")
    assert_couch_error(db.put(f"/{DB}/doc", json={"_rev": "9-" + H["a"], "v": 3}), 409, "conflict")
    assert get(db, f"/{DB}/doc")["v"] == 2


def test_rev_in_query_and_if_match(db: Any) -> None:
    rev1 = put(db, "doc", {"v": 1})
    rev2 = put(db, "doc", {"v": 2}, rev=rev1)
    response = db.delete(f"/{DB}/doc", headers={"If-Match": f'"{rev2}"'})
    assert response.status_code == 200 and body(response)["rev"].startswith("3-")


def test_recreate_after_delete_extends_the_tombstone(db: Any) -> None:
    put(db, "x")
    db.delete(f"/{DB}/x?rev={EMPTY_REV}")
    rev = put(db, "x", {"back": True})
    assert rev.startswith("3-")
    doc = get(db, f"/{DB}/x?revs=true")
    assert doc["_revisions"]["ids"][1:] == [EMPTY_DELETED_REV[2:], EMPTY_REV[2:]]
    assert info(db)["doc_count"] == 1 and info(db)["doc_del_count"] == 0


def test_head_gives_etag(db: Any) -> None:
    rev = put(db, "doc")
    response = db.head(f"/{DB}/doc")
    assert response.status_code == 200 and response.headers["ETag"] == f'"{rev}"'
    assert db.head(f"/{DB}/missing").status_code == 404


def test_if_none_match_gives_304(db: Any) -> None:
    """CouchDB: GET with If-None-Match of the current revision answers 304 Not Modified, no body."""
    rev = put(db, "doc", {"v": 1})
    response = db.get(f"/{DB}/doc", headers={"If-None-Match": f'"{rev}"'})
    assert response.status_code == 304
    assert response.get_data() == b""
    assert db.get(f"/{DB}/doc", headers={"If-None-Match": '"1-00000000000000000000000000000000"'}).status_code == 200


def test_database_info(db: Any) -> None:
    put(db, "a")
    result = info(db)
    assert result["db_name"] == DB and result["doc_count"] == 1 and result["doc_del_count"] == 0
    assert isinstance(result["update_seq"], str) and seq_number(result["update_seq"]) == 1
    assert isinstance(result["purge_seq"], str) and result["compact_running"] is False
    assert all(isinstance(result["sizes"][k], int) for k in ("file", "external", "active"))


def test_database_sizes_active_and_on_disk(db: Any) -> None:
    """``active`` counts the pages in use, ``file`` the bytes on disk: deleted documents freed by
    compaction leave ``active`` smaller, never above ``file`` (CouchDB's compact_test checks this)."""
    made = body(db.post(f"/{DB}/_bulk_docs", json={"docs": [{"_id": f"d{i}", "pad": "x" * 4000} for i in range(40)]}))
    full = info(db)["sizes"]
    assert 0 < full["active"] <= full["file"]
    body(db.post(f"/{DB}/_bulk_docs", json={"docs": [{"_id": r["id"], "_rev": r["rev"], "_deleted": True}
                                                   for r in made]}))
    assert db.post(f"/{DB}/_compact", json={}).status_code == 202
    compacted = info(db)["sizes"]
    assert compacted["active"] < full["active"] and compacted["active"] <= compacted["file"]


def test_post_generates_an_id(db: Any) -> None:
    result = post(db, f"/{DB}", {"a": 1}, status=201)
    assert result["ok"] is True and isinstance(result["id"], str) and len(result["id"]) >= 16
    assert get(db, f"/{DB}/{result['id']}")["a"] == 1


@pytest.mark.parametrize("doc_id", ["a/b", "with space", "đảng viên", "a+b", "a?b", "a#b", "a%b", "q\"uote",
                                    "line\nbreak", "tab\tin", "_design/ddoc"])
def test_unusual_ids_round_trip(db: Any, doc_id: str) -> None:
    """Any UTF-8 id CouchDB accepts is reachable at its percent-encoded URL."""
    path = f"/{DB}/{quote(doc_id, safe='')}" if not doc_id.startswith("_design/") else f"/{DB}/{doc_id}"
    response = db.put(path, json={"v": 1})
    assert response.status_code == 201, response.get_data()
    assert body(response)["id"] == doc_id
    assert get(db, path) == {"_id": doc_id, "_rev": body(response)["rev"], "v": 1}
    assert [r["id"] for r in get(db, f"/{DB}/_all_docs")["rows"]] == [doc_id]


def test_special_members_refused(db: Any) -> None:
    assert_couch_error(db.put(f"/{DB}/doc", json={"_foo": 1}), 400, "doc_validation")


# -- revision information ---------------------------------------------------------------


def test_revs_and_revs_info(db: Any) -> None:
    rev1 = put(db, "doc", {"v": 1})
    rev2 = put(db, "doc", {"_rev": rev1, "v": 2})
    rev3 = put(db, "doc", {"_rev": rev2, "v": 3})
    doc = get(db, f"/{DB}/doc?revs=true")
    assert doc["_revisions"] == {"start": 3, "ids": [r.split("-", 1)[1] for r in (rev3, rev2, rev1)]}
    doc = get(db, f"/{DB}/doc?revs_info=true")
    assert doc["_revs_info"] == [{"rev": r, "status": "available"} for r in (rev3, rev2, rev1)]
    old = get(db, f"/{DB}/doc?rev={rev2}&revs=true")
    assert old["v"] == 2 and old["_revisions"] == {"start": 2, "ids": [rev2[2:], rev1[2:]]}


def test_revs_info_reports_deleted_and_compacted(db: Any) -> None:
    rev1 = put(db, "doc", {"v": 1})
    rev2 = body(db.delete(f"/{DB}/doc?rev={rev1}"))["rev"]
    rev3 = put(db, "doc", {"_rev": rev2, "v": 3})
    assert db.post(f"/{DB}/_compact", json={}).status_code == 202
    doc = get(db, f"/{DB}/doc?revs_info=true")
    assert doc["_revs_info"] == [{"rev": rev3, "status": "available"}, {"rev": rev2, "status": "missing"},
                                 {"rev": rev1, "status": "missing"}]
    assert "_revs_info" not in get(db, f"/{DB}/doc?rev={rev3}&revs_info=true")  # as CouchDB: current only
    assert_couch_error(db.get(f"/{DB}/doc?rev={rev1}"), 404, "not_found")


def test_conflicts_and_deleted_conflicts(db: Any) -> None:
    history(db, "doc", "2-" + H["a"], "1-" + H["1"], v="a")
    history(db, "doc", "2-" + H["c"], "1-" + H["1"], v="c")
    history(db, "doc", "2-" + H["b"], "1-" + H["1"], v="b")
    history(db, "doc", "3-" + H["0"], "2-" + H["9"], "1-" + H["1"], deleted=True)
    doc = get(db, f"/{DB}/doc?conflicts=true&deleted_conflicts=true")
    assert doc["_rev"] == "2-" + H["c"] and doc["v"] == "c"
    assert doc["_conflicts"] == ["2-" + H["b"], "2-" + H["a"]]
    assert doc["_deleted_conflicts"] == ["3-" + H["0"]]
    assert "_conflicts" not in get(db, f"/{DB}/doc")
    assert "_deleted_conflicts" not in get(db, f"/{DB}/doc?conflicts=true")


def test_winner_prefers_live_then_generation_then_hash(db: Any) -> None:
    history(db, "gen", "2-" + H["0"], "1-" + H["1"], v="long")
    history(db, "gen", "1-" + H["f"], v="short")
    assert get(db, f"/{DB}/gen")["_rev"] == "2-" + H["0"]
    history(db, "live", "1-" + H["2"], v="live")
    history(db, "live", "3-" + H["f"], "2-" + H["f"], "1-" + H["f"], deleted=True)
    assert get(db, f"/{DB}/live") == {"_id": "live", "_rev": "1-" + H["2"], "v": "live"}
    history(db, "dead", "2-" + H["3"], "1-" + H["1"], deleted=True)
    history(db, "dead", "2-" + H["4"], "1-" + H["1"], deleted=True)
    assert assert_couch_error(db.get(f"/{DB}/dead"), 404, "not_found")["reason"] == "deleted"
    assert get(db, f"/{DB}/_all_docs?keys=[\"dead\"]")["rows"][0]["value"] == {"rev": "2-" + H["4"], "deleted": True}


def test_edit_of_losing_branch_and_resolution(db: Any) -> None:
    history(db, "doc", "2-" + H["a"], "1-" + H["1"], v="a")
    history(db, "doc", "2-" + H["b"], "1-" + H["1"], v="b")
    loser_edit = put(db, "doc", {"_rev": "2-" + H["a"], "v": "a2"})
    assert loser_edit.startswith("3-")
    assert get(db, f"/{DB}/doc?conflicts=true") == {"_id": "doc", "_rev": loser_edit, "v": "a2",
                                                   "_conflicts": ["2-" + H["b"]]}
    gone = db.delete(f"/{DB}/doc?rev=2-{H['b']}")
    assert gone.status_code == 200
    doc = get(db, f"/{DB}/doc?conflicts=true&deleted_conflicts=true")
    assert "_conflicts" not in doc and doc["_deleted_conflicts"] == [body(gone)["rev"]]


# -- open_revs and latest -------------------------------------------------------------


def test_open_revs_all(db: Any) -> None:
    history(db, "doc", "2-" + H["a"], "1-" + H["1"], v="a")
    history(db, "doc", "2-" + H["b"], "1-" + H["1"], deleted=True)
    results = get(db, f"/{DB}/doc?open_revs=all", headers={"Accept": "application/json"})
    by_rev = {r["ok"]["_rev"]: r["ok"] for r in results}
    assert set(by_rev) == {"2-" + H["a"], "2-" + H["b"]}
    assert by_rev["2-" + H["a"]] == {"_id": "doc", "_rev": "2-" + H["a"], "v": "a"}
    assert by_rev["2-" + H["b"]] == {"_id": "doc", "_rev": "2-" + H["b"], "_deleted": True}
    with_revs = get(db, f"/{DB}/doc?open_revs=all&revs=true", headers={"Accept": "application/json"})
    assert all(r["ok"]["_revisions"]["ids"][-1] == H["1"] for r in with_revs)


def test_open_revs_list_with_missing(db: Any) -> None:
    rev1 = put(db, "doc", {"v": 1})
    missing = "1-" + H["e"]
    results = get(db, f"/{DB}/doc?open_revs={quote(json.dumps([rev1, missing]))}",
                  headers={"Accept": "application/json"})
    assert results == [{"ok": {"_id": "doc", "_rev": rev1, "v": 1}}, {"missing": missing}]
    results = get(db, f"/{DB}/nodoc?open_revs={quote(json.dumps([missing]))}", headers={"Accept": "application/json"})
    assert results == [{"missing": missing}]


def test_open_revs_all_of_missing_document_is_404(db: Any) -> None:
    assert_couch_error(db.get(f"/{DB}/nodoc?open_revs=all", headers={"Accept": "application/json"}), 404, "not_found")


def test_latest_gives_the_leaf(db: Any) -> None:
    """CouchDB: open_revs=[old]&latest=true answers the leaf descending from old, even a tombstone."""
    put(db, "x")
    db.delete(f"/{DB}/x?rev={EMPTY_REV}")
    results = get(db, f'/{DB}/x?latest=true&open_revs=["{EMPTY_REV}"]', headers={"Accept": "application/json"})
    assert results == [{"ok": {"_id": "x", "_rev": EMPTY_DELETED_REV, "_deleted": True}}]
    rev1 = put(db, "y", {"v": 1})
    rev2 = put(db, "y", {"_rev": rev1, "v": 2})
    assert get(db, f"/{DB}/y?rev={rev1}&latest=true") == {"_id": "y", "_rev": rev2, "v": 2}
    assert get(db, f"/{DB}/y?rev={rev1}")["v"] == 1


def test_open_revs_multipart(db: Any) -> None:
    rev1 = put(db, "doc", {"v": 1})
    missing = "1-" + H["e"]
    response = db.get(f"/{DB}/doc?revs=true&open_revs={quote(json.dumps([rev1, missing]))}",
                      headers={"Accept": "multipart/mixed"})
    assert response.status_code == 200
    parts = multipart_parts(response)
    assert len(parts) == 2
    assert parts[0][0].startswith("application/json")
    assert json.loads(parts[0][1]) == {"_id": "doc", "_rev": rev1, "v": 1,
                                       "_revisions": {"start": 1, "ids": [rev1[2:]]}}
    assert parts[1][0].startswith("application/json") and 'error="true"' in parts[1][0]
    assert json.loads(parts[1][1]) == {"missing": missing}


def test_open_revs_multipart_carries_attachment_data_unasked(db: Any) -> None:
    """As CouchDB: its replicator asks open_revs multipart without attachments=true and writes what comes."""
    data = base64.b64encode(b"minutes").decode()
    rev1 = put(db, "doc", {"_attachments": {"m.txt": {"content_type": "text/plain", "data": data}}})
    rev2 = put(db, "doc", {"_rev": rev1, "v": 2, "_attachments": {"m.txt": {"stub": True}}})
    asked = f"/{DB}/doc?revs=true&latest=true&open_revs={quote(json.dumps([rev2]))}"
    whole = json.loads(multipart_parts(db.get(asked, headers={"Accept": "multipart/mixed"}))[0][1])
    assert whole["_attachments"]["m.txt"]["data"] == data
    since = json.loads(multipart_parts(db.get(asked + f"&atts_since={quote(json.dumps([rev1]))}",
                                              headers={"Accept": "multipart/mixed"}))[0][1])
    assert since["_attachments"]["m.txt"].get("stub") is True  # the target has it since rev1
    plain = get(db, asked, headers={"Accept": "application/json"})
    assert plain[0]["ok"]["_attachments"]["m.txt"].get("stub") is True  # JSON: only when asked


def test_gzip_encoded_attachment_data_is_stored_decoded(db: Any) -> None:
    """CouchDB's replicator pushes gzip-stored text attachments with "encoding": "gzip"."""
    encoded = base64.b64encode(gzip.compress(b"minutes of the meeting")).decode()
    rev = put(db, "doc", {"_attachments": {"m.txt": {"content_type": "text/plain", "data": encoded,
                                                     "encoding": "gzip"}}})
    assert db.get(f"/{DB}/doc/m.txt?rev={rev}").get_data() == b"minutes of the meeting"
    not_gzip = base64.b64encode(b"plain text").decode()
    bad = db.put(f"/{DB}/other", json={"_attachments": {"m.txt": {"content_type": "text/plain", "data": not_gzip,
                                                                  "encoding": "gzip"}}})
    assert bad.status_code == 400 and "does not decode" in bad.get_json()["reason"]


# -- _local documents -------------------------------------------------------------------


def test_local_documents(db: Any) -> None:
    seq_before = info(db)["update_seq"]
    response = db.put(f"/{DB}/_local/cp", json={"last": 1})
    assert response.status_code == 201
    assert body(response) == {"ok": True, "id": "_local/cp", "rev": "0-1"}
    assert get(db, f"/{DB}/_local/cp") == {"_id": "_local/cp", "_rev": "0-1", "last": 1}
    assert_couch_error(db.put(f"/{DB}/_local/cp", json={"last": 2}), 409, "conflict")
    assert body(db.put(f"/{DB}/_local/cp", json={"_rev": "0-1", "last": 2}))["rev"] == "0-2"
    assert_couch_error(db.put(f"/{DB}/_local/cp", json={"_rev": "0-1", "last": 3}), 409, "conflict")
    assert get(db, f"/{DB}/_local/cp") == {"_id": "_local/cp", "_rev": "0-2", "last": 2}
    # no sequence: not in _changes, _all_docs, or the database counts
    assert info(db)["update_seq"] == seq_before and info(db)["doc_count"] == 0
    assert get(db, f"/{DB}/_changes")["results"] == []
    assert get(db, f"/{DB}/_all_docs")["rows"] == []
    assert_couch_error(db.delete(f"/{DB}/_local/cp?rev=0-1"), 409, "conflict")
    assert db.delete(f"/{DB}/_local/cp?rev=0-2").status_code == 200
    assert_couch_error(db.get(f"/{DB}/_local/cp"), 404, "not_found")


def test_local_document_with_slash_in_id(db: Any) -> None:
    assert body(db.put(f"/{DB}/_local/a%2Fb", json={"x": 1}))["id"] == "_local/a/b"
    assert get(db, f"/{DB}/_local/a%2Fb")["x"] == 1


# -- _security and _revs_limit -------------------------------------------------------------


def test_security_object(db: Any, anon: Any) -> None:
    assert get(db, f"/{DB}/_security") == {}
    security = {"admins": {"names": ["boss"], "roles": []}, "members": {"names": [], "roles": ["cell"]}}
    assert body(db.put(f"/{DB}/_security", json=security)) == {"ok": True}
    assert get(db, f"/{DB}/_security") == security
    assert_couch_error(anon.put(f"/{DB}/_security", json={}), 401, "unauthorized")
    # members are now restricted to the role "cell": the anonymous are shut out
    assert_couch_error(anon.get(f"/{DB}"), 401, "unauthorized")
    assert_couch_error(db.put(f"/{DB}/_security", json={"members": {"names": "boss"}}), 400, "bad_request")


def test_revs_limit_then_compaction_keeps_last_n(db: Any) -> None:
    assert get(db, f"/{DB}/_revs_limit") == 1000
    assert body(db.put(f"/{DB}/_revs_limit", data="3", content_type="application/json")) == {"ok": True}
    assert get(db, f"/{DB}/_revs_limit") == 3
    revs = [put(db, "doc", {"v": 0})]
    for i in range(1, 7):
        revs.append(put(db, "doc", {"_rev": revs[-1], "v": i}))
    assert db.post(f"/{DB}/_compact", json={}).status_code == 202
    doc = get(db, f"/{DB}/doc?revs=true&revs_info=true")
    assert doc["_rev"] == revs[-1] and doc["v"] == 6
    assert doc["_revisions"] == {"start": 7, "ids": [r.split("-", 1)[1] for r in revs[-1:-4:-1]]}
    assert [r["rev"] for r in doc["_revs_info"]] == revs[-1:-4:-1]
    for old in revs[:4]:
        assert_couch_error(db.get(f"/{DB}/doc?rev={old}"), 404, "not_found")
    # the stemmed document can still be edited, and replication of the old history adds nothing
    assert put(db, "doc", {"_rev": revs[-1], "v": 7}).startswith("8-")
    assert_couch_error(db.put(f"/{DB}/_revs_limit", data="0", content_type="application/json"), 400)


# -- server identity and sessions ------------------------------------------------------------


def test_root_uuid_is_stable_across_restarts(make_app: Callable[..., Any], make_client: Callable[..., Any]) -> None:
    first = get(make_client(make_app()), "/")
    assert first["couchdb"] == "Welcome" and isinstance(first["uuid"], str) and len(first["uuid"]) == 32
    assert first["version"].startswith("3.")
    second = get(make_client(make_app(), auth=False), "/")
    assert second["uuid"] == first["uuid"]


def test_uuid_differs_between_data_dirs(make_app: Callable[..., Any], make_client: Callable[..., Any],
                                        app_settings: Any, tmp_path: Any) -> None:
    other = app_settings.replace("server", data_dir=str(tmp_path / "other"))
    assert get(make_client(make_app()), "/")["uuid"] != get(make_client(make_app(settings=other)), "/")["uuid"]


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_session_cookie_authenticates(anon: Any, form: bool) -> None:
    assert_couch_error(anon.put("/cookiedb"), 401, "unauthorized")
    if form:
        response = anon.post("/_session", data="name=admin&password=secret",
                             content_type="application/x-www-form-urlencoded")
    else:
        response = anon.post("/_session", json={"name": "admin", "password": "secret"})
    assert response.status_code == 200
    assert body(response) == {"ok": True, "name": "admin", "roles": ["_admin"]}
    cookies = response.headers.getlist("Set-Cookie")
    assert any(c.startswith("AuthSession=") and "HttpOnly" in c for c in cookies), cookies
    session = get(anon, "/_session")
    assert session["ok"] is True and session["userCtx"] == {"name": "admin", "roles": ["_admin"]}
    assert session["info"]["authenticated"] == "cookie"
    assert anon.put("/cookiedb").status_code == 201
    assert anon.delete("/_session").status_code == 200
    assert_couch_error(anon.put("/cookiedb2"), 401, "unauthorized")


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_session_wrong_password(anon: Any, form: bool) -> None:
    if form:
        response = anon.post("/_session", data="name=admin&password=nope",
                             content_type="application/x-www-form-urlencoded")
    else:
        response = anon.post("/_session", json={"name": "admin", "password": "nope"})
    assert_couch_error(response, 401, "unauthorized")
    assert not any(c.startswith("AuthSession=") and "AuthSession=;" not in c
                   for c in response.headers.getlist("Set-Cookie"))
    assert get(anon, "/_session")["userCtx"] == {"name": None, "roles": []}


def test_forged_cookie_is_ignored(anon: Any) -> None:
    anon.set_cookie("AuthSession", "YWRtaW46NjVBMDAwMDA6ZGVhZGJlZWY")
    assert get(anon, "/_session")["userCtx"]["name"] is None
    assert_couch_error(anon.put("/forged"), 401, "unauthorized")


def test_seq_numbers_grow_per_write(db: Any) -> None:
    before = seq_number(info(db)["update_seq"])
    rev = put(db, "a")
    put(db, "a", {"_rev": rev, "v": 2})
    assert seq_number(info(db)["update_seq"]) == before + 2
