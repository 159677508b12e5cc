"""The store alone (no HTTP): writes, trees, feeds, attachments, compaction."""

import base64
import secrets
import sqlite3

import pytest

from sync_server.errors import BadRequest, Conflict, FileExists, NotFound
from sync_server.store import Server, StoreOptions, database
from sync_server.store.crypto import Cipher


@pytest.fixture(params=["clear", "encrypted"])
def server(tmp_path, request):
    """Every store test runs twice: bodies in clear, and encrypted at rest (crypto.py)."""
    cipher = Cipher(secrets.token_bytes(32)) if request.param == "encrypted" else None
    srv = Server(tmp_path, StoreOptions(cipher=cipher))
    yield srv
    srv.close()


@pytest.fixture
def db(server):
    return server.create("cell")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_put_update_and_conflict(db):
    first = db.bulk_docs([{"_id": "m", "n": 1}])[0]
    second = db.bulk_docs([{"_id": "m", "_rev": first["rev"], "n": 2}])[0]
    stale = db.bulk_docs([{"_id": "m", "_rev": first["rev"], "n": 3}])[0]
    assert second["rev"].startswith("2-")
    assert stale == {"id": "m", "error": "conflict", "reason": "Document update conflict."}
    assert db.get("m")["n"] == 2


def test_create_without_rev_on_existing_doc_conflicts(db):
    db.bulk_docs([{"_id": "m"}])
    assert db.bulk_docs([{"_id": "m", "x": 1}])[0]["error"] == "conflict"


def test_recreate_after_delete_extends_the_tombstone(db):
    rev1 = db.bulk_docs([{"_id": "m"}])[0]["rev"]
    rev2 = db.bulk_docs([{"_id": "m", "_rev": rev1, "_deleted": True}])[0]["rev"]
    rev3 = db.bulk_docs([{"_id": "m", "again": True}])[0]["rev"]
    assert rev3.startswith("3-")
    assert db.get("m", revs=True)["_revisions"]["ids"][1] == rev2.split("-")[1]


def test_same_edit_twice_returns_same_rev_without_new_seq(db):
    rev1 = db.bulk_docs([{"_id": "m"}])[0]["rev"]
    seq = db.update_seq
    again = db.bulk_docs([{"_id": "m", "_rev": rev1, "a": 1}])[0]["rev"]
    db.bulk_docs([{"_id": "m", "_rev": "2-" + "0" * 32, "_revisions": {"start": 2, "ids": ["0" * 32, rev1[2:]]}}],
                 new_edits=False)
    replay = db.bulk_docs([{"_id": "m", "_rev": again, "_revisions": {"start": 2, "ids": [again[2:], rev1[2:]]}, "a": 1}],
                          new_edits=False)
    assert replay == [] and db.update_seq == seq + 2


def test_counters_follow_deletes(db):
    revs = [r["rev"] for r in db.bulk_docs([{"_id": f"d{i}"} for i in range(3)])]
    db.bulk_docs([{"_id": "d0", "_rev": revs[0], "_deleted": True}])
    assert (db.doc_count, db.del_count, db.update_seq) == (2, 1, 4)
    info = db.info()
    assert info["doc_count"] == 2 and info["doc_del_count"] == 1 and info["update_seq"].startswith("4-")


def test_counters_survive_reopen(server, db):
    db.bulk_docs([{"_id": "a"}, {"_id": "b"}])
    server.close()
    reopened = Server(server.data_dir, server.options).get("cell")
    assert (reopened.doc_count, reopened.update_seq) == (2, 2)
    reopened.close()


def test_failed_doc_does_not_spend_a_sequence(db):
    results = db.bulk_docs([{"_id": "a"}, {"_id": "_bad"}, {"_id": "b"}])
    assert [r.get("error") for r in results] == [None, "illegal_docid", None]
    assert db.update_seq == 2
    assert [c.seq.split("-")[0] for c in db.changes()] == ["1", "2"]


def test_parse_since_tolerates_numbers_and_rejects_junk(db):
    db.bulk_docs([{"_id": "a"}, {"_id": "b"}])
    assert db.parse_since(1) == 1
    assert db.parse_since("1") == 1
    assert db.parse_since(db.seq_string(2)) == 2
    assert db.parse_since("now") == 2
    assert db.parse_since("2-someotherinstance") == 0  # a recreated database starts over
    for junk in ("abc", -1, [1], {"a": 1}, True):
        with pytest.raises(BadRequest):
            db.parse_since(junk)


def test_changes_pages_through_all_rows(db, monkeypatch):
    monkeypatch.setattr(database, "PAGE", 3)
    db.bulk_docs([{"_id": f"d{i:02}"} for i in range(10)])
    assert [c.id for c in db.changes()] == [f"d{i:02}" for i in range(10)]
    assert [c.id for c in db.changes(4, limit=3)] == ["d04", "d05", "d06"]
    assert [c.id for c in db.changes(descending=True, limit=4)] == ["d09", "d08", "d07", "d06"]


def test_changes_show_each_doc_once_at_latest_seq(db):
    rev = db.bulk_docs([{"_id": "a"}, {"_id": "b"}])[0]["rev"]
    db.bulk_docs([{"_id": "a", "_rev": rev, "v": 2}])
    assert [(c.id, c.seq.split("-")[0]) for c in db.changes()] == [("b", "2"), ("a", "3")]


def test_changes_filters(db):
    db.bulk_docs([{"_id": "a", "type": "meeting"}, {"_id": "b", "type": "article"}, {"_id": "c", "type": "meeting"}])
    assert [c.id for c in db.changes(doc_ids=["c", "a", "zz"])] == ["a", "c"]
    from sync_server.store.selector import compile_selector
    assert [c.id for c in db.changes(predicate=compile_selector({"type": "article"}))] == ["b"]


def test_all_docs_range_skip_limit_descending(db, monkeypatch):
    monkeypatch.setattr(database, "PAGE", 2)
    db.bulk_docs([{"_id": k} for k in "edcba"])
    ids = lambda **kw: [r["id"] for r in db.all_docs(**kw)]  # noqa: E731
    assert ids() == list("abcde")
    assert ids(start="b", end="d") == list("bcd")
    assert ids(start="b", end="d", inclusive_end=False) == list("bc")
    assert ids(skip=1, limit=3) == list("bcd")
    assert ids(descending=True, start="d", limit=2) == list("dc")


def test_all_docs_keys_reports_missing_and_deleted(db):
    rev = db.bulk_docs([{"_id": "a"}, {"_id": "b"}])[0]["rev"]
    db.bulk_docs([{"_id": "a", "_rev": rev, "_deleted": True}])
    rows = list(db.all_docs_keys(["b", "a", "zz"], include_docs=True))
    assert rows[0]["doc"]["_id"] == "b"
    assert rows[1]["value"]["deleted"] is True and rows[1]["doc"] is None
    assert rows[2] == {"key": "zz", "error": "not_found"}


def test_revs_limit_stems_old_revisions(db):
    db.set_revs_limit(3)
    rev = db.bulk_docs([{"_id": "a", "v": 0}])[0]["rev"]
    for v in range(1, 6):
        rev = db.bulk_docs([{"_id": "a", "_rev": rev, "v": v}])[0]["rev"]
    doc = db.get("a", revs=True)
    assert doc["_revisions"]["start"] == 6 and len(doc["_revisions"]["ids"]) == 3
    stored = sqlite3.connect(db.path).execute("SELECT count(*) FROM revs").fetchone()[0]
    assert stored == 3  # bodies of stemmed revisions are gone too


def test_compaction_keeps_leaves_and_frees_orphan_attachments(db):
    rev = db.bulk_docs([{"_id": "a", "_attachments": {"x": {"content_type": "text/plain", "data": b64(b"old")}}}])[0]["rev"]
    rev = db.bulk_docs([{"_id": "a", "_rev": rev, "_attachments": {"x": {"content_type": "text/plain", "data": b64(b"new")}}}])[0]["rev"]
    db.compact()
    conn = sqlite3.connect(db.path)
    assert conn.execute("SELECT count(*) FROM revs").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM atts").fetchone()[0] == 1
    assert db.attachment("a", "x")[1] == b"new"
    assert db.get("a", revs_info=True)["_revs_info"][1]["status"] == "missing"


def test_attachment_stub_carries_over_and_data_is_stored_once(db):
    data = b64(b"\x00\xffbinary")
    rev = db.bulk_docs([{"_id": "a", "_attachments": {"f.bin": {"content_type": "application/pdf", "data": data}}},
                        {"_id": "b", "_attachments": {"g.bin": {"content_type": "application/pdf", "data": data}}}])[0]["rev"]
    rev2 = db.bulk_docs([{"_id": "a", "_rev": rev, "_attachments": {"f.bin": {"stub": True}}, "n": 2}])[0]["rev"]
    stub = db.get("a", rev2)["_attachments"]["f.bin"]
    assert stub["revpos"] == 1 and stub["stub"] is True and stub["length"] == 8
    assert sqlite3.connect(db.path).execute("SELECT count(*) FROM atts").fetchone()[0] == 1


def test_missing_stub_is_refused(db):
    result = db.bulk_docs([{"_id": "a", "_attachments": {"f": {"stub": True}}}])[0]
    assert result["error"] == "missing_stub"
    with pytest.raises(NotFound):
        db.get("a")


def test_replicated_stub_resolves_against_ancestor(db):
    rev1 = "1-" + "a" * 32
    db.bulk_docs([{"_id": "a", "_rev": rev1, "_attachments": {"f": {"content_type": "text/plain", "data": b64(b"hi"), "revpos": 1}}}],
                 new_edits=False)
    digest = db.get("a")["_attachments"]["f"]["digest"]
    out = db.bulk_docs([{"_id": "a", "_rev": "2-" + "b" * 32, "_revisions": {"start": 2, "ids": ["b" * 32, "a" * 32]},
                         "_attachments": {"f": {"stub": True, "digest": digest, "revpos": 1}}}], new_edits=False)
    assert out == []
    assert db.attachment("a", "f")[1] == b"hi"


def test_replicated_stub_resolves_by_name_and_revpos_not_digest(db):
    """As CouchDB (couch_att:merge_stubs): CouchDB's digest of a gzip-stored text is the MD5 of the encoded bytes."""
    rev1 = "1-" + "a" * 32
    db.bulk_docs([{"_id": "a", "_rev": rev1, "_attachments": {"f.txt": {"content_type": "text/plain", "data": b64(b"hi"),
                                                                        "revpos": 1}}}], new_edits=False)
    couch_digest = "md5-LDpD4zcgVhN9JbyMRRIhfQ=="  # not ours for b"hi"

    def child(label: str, revpos: int) -> dict:
        return {"_id": "a", "_rev": "2-" + label * 32, "_revisions": {"start": 2, "ids": [label * 32, "a" * 32]},
                "_attachments": {"f.txt": {"stub": True, "digest": couch_digest, "revpos": revpos,
                                           "content_type": "text/plain"}}}

    assert db.bulk_docs([child("b", 1)], new_edits=False) == []
    assert db.attachment("a", "f.txt", "2-" + "b" * 32)[1] == b"hi"
    refused = db.bulk_docs([child("c", 2)], new_edits=False)  # no earlier revision wrote it at revpos 2
    assert [r["error"] for r in refused] == ["missing_stub"]


def test_get_latest_and_open_revs(db):
    db.bulk_docs([{"_id": "a", "_rev": "2-b", "_revisions": {"start": 2, "ids": ["b", "a"]}, "v": "b"},
                  {"_id": "a", "_rev": "2-c", "_revisions": {"start": 2, "ids": ["c", "a"]}, "v": "c", "_deleted": True}],
                 new_edits=False)
    assert db.get("a")["_rev"] == "2-b"  # live beats deleted
    assert db.get("a", conflicts=True, deleted_conflicts=True)["_deleted_conflicts"] == ["2-c"]
    assert [r["ok"]["_rev"] for r in db.open_revs("a", ["1-a"], latest=True)] == ["2-b", "2-c"]
    assert db.open_revs("a", ["9-z"]) == [{"missing": "9-z"}]
    with pytest.raises(NotFound):
        db.get("a", "1-a")  # the body of an ancestor we never had


def test_local_docs_have_no_sequence_and_check_rev(db):
    first = db.put_local("ckpt", {"last_seq": "1"})
    assert first["rev"] == "0-1" and db.update_seq == 0
    with pytest.raises(Conflict):
        db.put_local("ckpt", {"last_seq": "2"})
    db.put_local("ckpt", {"_rev": "0-1", "last_seq": "2"})
    assert db.get_local("ckpt") == {"_id": "_local/ckpt", "_rev": "0-2", "last_seq": "2"}
    assert list(db.changes()) == [] and list(db.all_docs()) == []


def test_server_create_twice_and_names(server):
    server.create("a-b/c")
    with pytest.raises(FileExists):
        server.create("a-b/c")
    with pytest.raises(BadRequest):
        server.create("Bad")
    assert server.all_dbs() == ["a-b/c"]
    server.delete("a-b/c")
    assert server.all_dbs() == []


def test_uuid_is_stable_for_the_data_dir(tmp_path):
    first = Server(tmp_path).uuid
    assert Server(tmp_path).uuid == first and len(first) == 32


def test_document_too_large(server):
    small = Server(server.data_dir / "other", StoreOptions(max_document_size=100, cipher=server.options.cipher)).create("x")
    assert small.bulk_docs([{"_id": "a", "text": "x" * 200}])[0]["error"] == "document_too_large"
    assert small.update_seq == 0


def test_idle_readers_of_old_databases_are_given_back(server, monkeypatch):
    from sync_server.store import server as server_module

    monkeypatch.setattr(server_module, "ACTIVE_DBS", 2)
    dbs = [server.create(f"db{i}") for i in range(4)]
    for i, db in enumerate(dbs):
        db.bulk_docs([{"_id": "x"}])
        server.get(f"db{i}").get("x")
    assert dbs[0]._readers.open_count == 0 and dbs[3]._readers.open_count == 1
    assert server.get("db0").get("x")["_id"] == "x"  # reopens on demand


def test_trimmed_database_closes_its_files_and_reopens_on_use(server):
    db = server.create("a")
    db.bulk_docs([{"_id": "x"}])
    db.get("x")
    db.trim()
    assert db._writer_conn is None and not db._readers.open_count
    assert db.bulk_docs([{"_id": "y"}])[0]["ok"] and db.get("y")["_id"] == "y"
    assert db.update_seq == 2


def test_open_revs_as_text_says_what_the_parsed_form_says(db):
    """``_bulk_get`` sends revisions spliced from their stored text; parsed, they must equal what
    ``open_revs`` assembles: bodies, deletions, conflicts, ``_revisions``, ``latest``, odd ids and text."""
    import json

    from sync_server.store.document import RawJSON

    first = db.bulk_docs([{"_id": "m é\"\\", "n": 1, "t": "Hoàng Văn Thắng", "nested": {"a": [1, 2.5, None]}}])[0]
    db.bulk_docs([{"_id": "m é\"\\", "_rev": first["rev"], "n": 2}])
    db.bulk_docs([{"_id": "m é\"\\", "_rev": "2-" + "a" * 32, "n": 9, "_revisions": {"start": 2, "ids": ["a" * 32, first["rev"][2:]]}}],
                 new_edits=False)
    gone = db.bulk_docs([{"_id": "d", "x": 1}])[0]
    db.bulk_docs([{"_id": "d", "_rev": gone["rev"], "_deleted": True}])
    db.bulk_docs([{"_id": "empty"}])
    db.bulk_docs([{"_id": "att", "_attachments": {"a.txt": {"content_type": "text/plain", "data": b64(b"hi")}}}])
    asked = {"m é\"\\": [first["rev"]], "d": [gone["rev"]], "empty": ["1-" + "0" * 32], "att": ["1-" + "0" * 32]}
    asked["empty"] = [db.get("empty")["_rev"]]
    asked["att"] = [db.get("att")["_rev"]]
    raw_seen = 0
    for doc_id, revs in asked.items():
        for revs_flag in (False, True):
            for latest in (False, True):
                plain = db.open_revs(doc_id, revs, revs=revs_flag, latest=latest)
                raw = db.open_revs(doc_id, revs, revs=revs_flag, latest=latest, raw=True)
                raw_seen += sum(isinstance(r.get("ok"), RawJSON) for r in raw)
                parsed = [{"ok": json.loads(r["ok"])} if isinstance(r.get("ok"), RawJSON) else r for r in raw]
                assert parsed == plain, (doc_id, revs_flag, latest)
    assert raw_seen > 0  # the text path was taken (not for the attachment, whose stubs are made from rows)
    assert not any(isinstance(r.get("ok"), RawJSON) for r in db.open_revs("att", asked["att"], raw=True))
