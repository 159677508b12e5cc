"""Attachments as CouchDB 3 handles them: inline base64, stubs, attachments=true, atts_since,
standalone GET/PUT/DELETE, Range requests, MD5 digests, and data stored once per digest."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from api_helpers import DB, b64, body, bulk, count_rows, create_db, get, info, md5_digest, put
from test_error_shape import assert_couch_error

DATA = bytes(range(256)) * 4  # 1 KiB, every byte value
TEXT = "Điều lệ Đảng — chương I\n".encode()

# Inline attachment data comes as JSON only to a client that asks for it (else multipart/related).
JSON = {"Accept": "application/json"}


@pytest.fixture
def db(client: Any) -> Any:
    create_db(client)
    return client


@pytest.fixture
def data_dir(app: Any) -> str:
    return app.config["SETTINGS"].server.data_dir


def inline(*named: tuple[str, bytes, str]) -> dict:
    return {"_attachments": {name: {"content_type": ctype, "data": b64(data)} for name, data, ctype in named}}


def test_inline_attachment_becomes_a_stub(db: Any) -> None:
    rev = put(db, "doc", {"title": "t", **inline(("a.bin", DATA, "application/octet-stream"),
                                                 ("b.txt", TEXT, "text/plain"))})
    doc = get(db, f"/{DB}/doc")
    assert doc == {"_id": "doc", "_rev": rev, "title": "t", "_attachments": {
        "a.bin": {"content_type": "application/octet-stream", "digest": md5_digest(DATA), "length": len(DATA),
                  "revpos": 1, "stub": True},
        "b.txt": {"content_type": "text/plain", "digest": md5_digest(TEXT), "length": len(TEXT),
                  "revpos": 1, "stub": True},
    }}


def test_attachments_true_inlines_data(db: Any) -> None:
    put(db, "doc", inline(("a.bin", DATA, "application/octet-stream")))
    att = get(db, f"/{DB}/doc?attachments=true", headers=JSON)["_attachments"]["a.bin"]
    assert att["data"] == b64(DATA) and "stub" not in att
    assert att["digest"] == md5_digest(DATA) and att["revpos"] == 1 and att["content_type"] == "application/octet-stream"


def test_digest_is_md5_of_the_data(db: Any) -> None:
    put(db, "doc", inline(("empty", b"", "text/plain"), ("one", b"x", "text/plain")))
    atts = get(db, f"/{DB}/doc")["_attachments"]
    assert atts["empty"]["digest"] == "md5-1B2M2Y8AsgTpgAmY7PhCfg==" and atts["empty"]["length"] == 0
    assert atts["one"]["digest"] == "md5-ndTkYSaMgDT1yFZOFVxnpg=="


def test_stubs_keep_attachments_across_edits(db: Any) -> None:
    rev1 = put(db, "doc", inline(("a.bin", DATA, "application/octet-stream")))
    stub = get(db, f"/{DB}/doc")["_attachments"]
    rev2 = put(db, "doc", {"_rev": rev1, "v": 2, "_attachments": stub})
    doc = get(db, f"/{DB}/doc")
    assert doc["_rev"] == rev2 and doc["_attachments"]["a.bin"]["revpos"] == 1
    assert db.get(f"/{DB}/doc/a.bin").get_data() == DATA
    # an edit without _attachments drops them
    put(db, "doc", {"_rev": rev2, "v": 3})
    assert "_attachments" not in get(db, f"/{DB}/doc")
    assert_couch_error(db.get(f"/{DB}/doc/a.bin"), 404, "not_found")


def test_atts_since(db: Any) -> None:
    rev1 = put(db, "doc", inline(("old.txt", b"old", "text/plain")))
    doc = get(db, f"/{DB}/doc")
    doc["_attachments"]["new.txt"] = {"content_type": "text/plain", "data": b64(b"new")}
    rev2 = put(db, "doc", doc)
    atts = get(db, f"/{DB}/doc?atts_since={quote(json.dumps([rev1]))}", headers=JSON)["_attachments"]
    assert atts["old.txt"].get("stub") is True and "data" not in atts["old.txt"]
    assert atts["new.txt"]["data"] == b64(b"new") and atts["new.txt"]["revpos"] == 2
    both = get(db, f"/{DB}/doc?atts_since={quote(json.dumps(['1-' + 'f' * 32]))}", headers=JSON)["_attachments"]
    assert both["old.txt"]["data"] == b64(b"old") and both["new.txt"]["data"] == b64(b"new")
    none = get(db, f"/{DB}/doc?atts_since={quote(json.dumps([rev2]))}", headers=JSON)["_attachments"]
    assert all(a.get("stub") for a in none.values())


def test_standalone_put_get_delete(db: Any) -> None:
    response = db.put(f"/{DB}/doc/report.pdf", data=DATA, content_type="application/pdf")
    assert response.status_code == 201
    created = body(response)
    assert created["ok"] is True and created["id"] == "doc" and created["rev"].startswith("1-")
    got = db.get(f"/{DB}/doc/report.pdf")
    assert got.status_code == 200 and got.get_data() == DATA
    assert got.mimetype == "application/pdf"
    assert get(db, f"/{DB}/doc")["_attachments"]["report.pdf"]["digest"] == md5_digest(DATA)

    assert_couch_error(db.put(f"/{DB}/doc/second.txt", data=b"x", content_type="text/plain"), 409, "conflict")
    # a revision that is not there: CouchDB's 409 with "not_found" / "missing_rev"
    missing = db.put(f"/{DB}/doc/second.txt?rev=1-{'0' * 32}", data=b"x", content_type="text/plain")
    assert_couch_error(missing, 409, "not_found")
    assert body(missing)["reason"] == "missing_rev"
    rev2 = body(db.put(f"/{DB}/doc/second.txt?rev={created['rev']}", data=TEXT, content_type="text/plain"))["rev"]
    assert rev2.startswith("2-")
    atts = get(db, f"/{DB}/doc")["_attachments"]
    assert atts["second.txt"]["revpos"] == 2 and atts["report.pdf"]["revpos"] == 1

    deleted = db.delete(f"/{DB}/doc/report.pdf?rev={rev2}")
    assert deleted.status_code == 200 and body(deleted)["rev"].startswith("3-")
    assert_couch_error(db.get(f"/{DB}/doc/report.pdf"), 404, "not_found")
    assert list(get(db, f"/{DB}/doc")["_attachments"]) == ["second.txt"]
    assert db.get(f"/{DB}/doc/report.pdf?rev={rev2}").get_data() == DATA


def test_attachment_of_an_old_revision(db: Any) -> None:
    rev1 = put(db, "doc", inline(("a.txt", b"one", "text/plain")))
    rev2 = body(db.put(f"/{DB}/doc/a.txt?rev={rev1}", data=b"two", content_type="text/plain"))["rev"]
    assert db.get(f"/{DB}/doc/a.txt").get_data() == b"two"
    assert db.get(f"/{DB}/doc/a.txt?rev={rev1}").get_data() == b"one"
    assert db.get(f"/{DB}/doc/a.txt?rev={rev2}").get_data() == b"two"


def test_attachment_names_with_slashes_and_unicode(db: Any) -> None:
    rev = body(db.put(f"/{DB}/doc/dir/file.txt", data=b"nested", content_type="text/plain"))["rev"]
    name = "tài liệu.txt"
    db.put(f"/{DB}/doc/{quote(name)}?rev={rev}", data=b"unicode", content_type="text/plain")
    assert set(get(db, f"/{DB}/doc")["_attachments"]) == {"dir/file.txt", name}
    assert db.get(f"/{DB}/doc/dir/file.txt").get_data() == b"nested"
    assert db.get(f"/{DB}/doc/dir%2Ffile.txt").get_data() == b"nested"
    assert db.get(f"/{DB}/doc/{quote(name)}").get_data() == b"unicode"


def test_attachment_of_doc_id_with_slash(db: Any) -> None:
    """%2F in the id keeps it one segment: doc 'a/b', attachment 'c'."""
    db.put(f"/{DB}/a%2Fb/c", data=b"slashed", content_type="text/plain")
    assert get(db, f"/{DB}/a%2Fb")["_attachments"]["c"]["length"] == 7
    assert db.get(f"/{DB}/a%2Fb/c").get_data() == b"slashed"


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=10-", 10, len(DATA) - 1),
    ("bytes=0-4", 0, 4),
    ("bytes=100-199", 100, 199),
    ("bytes=-16", len(DATA) - 16, len(DATA) - 1),
    ("bytes=1000-5000", 1000, len(DATA) - 1),
])
def test_range_requests(db: Any, header: str, first: int, last: int) -> None:
    put(db, "doc", inline(("a.bin", DATA, "application/octet-stream")))
    response = db.get(f"/{DB}/doc/a.bin", headers={"Range": header})
    assert response.status_code == 206
    assert response.get_data() == DATA[first:last + 1]
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["Accept-Ranges"] == "bytes"


def test_range_not_satisfiable(db: Any) -> None:
    put(db, "doc", inline(("a.bin", DATA, "application/octet-stream")))
    assert_couch_error(db.get(f"/{DB}/doc/a.bin", headers={"Range": f"bytes={len(DATA)}-"}), 416)
    whole = db.get(f"/{DB}/doc/a.bin")
    assert whole.status_code == 200 and whole.get_data() == DATA and whole.headers["Accept-Ranges"] == "bytes"


def test_same_data_is_stored_once(db: Any, data_dir: str) -> None:
    put(db, "one", inline(("a.bin", DATA, "application/octet-stream")))
    put(db, "two", inline(("copy.bin", DATA, "application/x-other")))
    db.put(f"/{DB}/three/again.bin", data=DATA, content_type="application/octet-stream")
    assert count_rows(data_dir, "atts") == 1
    put(db, "four", inline(("other.bin", TEXT, "text/plain")))
    assert count_rows(data_dir, "atts") == 2
    digests = {get(db, f"/{DB}/{i}")["_attachments"].popitem()[1]["digest"] for i in ("one", "two", "three")}
    assert digests == {md5_digest(DATA)}


def test_compaction_frees_unused_data(db: Any, data_dir: str) -> None:
    rev = put(db, "doc", inline(("a.bin", DATA, "application/octet-stream")))
    put(db, "keep", inline(("b.txt", TEXT, "text/plain")))
    db.delete(f"/{DB}/doc/a.bin?rev={rev}")
    assert count_rows(data_dir, "atts") == 2
    assert db.post(f"/{DB}/_compact", json={}).status_code == 202
    assert count_rows(data_dir, "atts") == 1
    assert db.get(f"/{DB}/keep/b.txt").get_data() == TEXT


def test_bulk_docs_with_attachments_and_bulk_get(db: Any) -> None:
    rows = bulk(db, [{"_id": "x", **inline(("a.txt", b"hello", "text/plain"))}])
    result = json.loads(db.post(f"/{DB}/_bulk_get?attachments=true",
                                json={"docs": [{"id": "x", "rev": rows[0]["rev"]}]}).get_data())
    att = result["results"][0]["docs"][0]["ok"]["_attachments"]["a.txt"]
    assert att["data"] == b64(b"hello") and att["digest"] == md5_digest(b"hello")


def test_replicated_attachment_keeps_revpos(db: Any) -> None:
    doc = {"_id": "r", "_rev": "2-" + "b" * 32, "_revisions": {"start": 2, "ids": ["b" * 32, "a" * 32]},
           "_attachments": {"a.txt": {"content_type": "text/plain", "revpos": 1, "data": b64(b"rep")}}}
    assert bulk(db, [doc], new_edits=False) == []
    stub = get(db, f"/{DB}/r")["_attachments"]["a.txt"]
    assert stub["revpos"] == 1 and stub["digest"] == md5_digest(b"rep")


def test_multipart_related_put(db: Any) -> None:
    boundary = "abc123"
    doc = {"title": "mp", "_attachments": {"a.bin": {"follows": True, "content_type": "application/octet-stream",
                                                     "length": len(DATA)}}}
    payload = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(doc)}\r\n"
               f"--{boundary}\r\n\r\n").encode() + DATA + f"\r\n--{boundary}--".encode()
    response = db.put(f"/{DB}/mp", data=payload, content_type=f'multipart/related; boundary="{boundary}"')
    assert response.status_code == 201, response.get_data()
    assert db.get(f"/{DB}/mp/a.bin").get_data() == DATA
    assert get(db, f"/{DB}/mp")["title"] == "mp"


def test_head_attachment(db: Any) -> None:
    put(db, "doc", inline(("a.bin", DATA, "application/octet-stream")))
    response = db.head(f"/{DB}/doc/a.bin")
    assert response.status_code == 200 and response.get_data() == b""
    assert response.headers["ETag"].strip('"') == md5_digest(DATA).removeprefix("md5-")  # as CouchDB sends it


def test_attachment_counts_do_not_change_doc_count(db: Any) -> None:
    db.put(f"/{DB}/doc/a.txt", data=b"a", content_type="text/plain")
    assert info(db)["doc_count"] == 1


def test_attachment_put_on_a_conflicting_leaf(client):
    """CouchDB opens the revision ?rev= names, a conflict leaf included, and builds on it."""
    client.put("/atts")
    client.post("/atts/_bulk_docs", json={"new_edits": False, "docs": [
        {"_id": "d", "_rev": "2-aaa", "_revisions": {"start": 2, "ids": ["aaa", "root"]}, "v": "a"},
        {"_id": "d", "_rev": "2-bbb", "_revisions": {"start": 2, "ids": ["bbb", "root"]}, "v": "b"}]})
    response = client.put("/atts/d/n.txt?rev=2-aaa", data=b"note", content_type="text/plain")
    assert response.status_code == 201 and response.json["rev"].startswith("3-")
    assert client.get(f"/atts/d?rev={response.json['rev']}").json["v"] == "a"
    assert client.put("/atts/d/n.txt?rev=1-root", data=b"x", content_type="text/plain").status_code == 409
    assert client.put("/atts/d/n.txt", data=b"x", content_type="text/plain").status_code == 409
