"""Every refused request answers CouchDB's error shape, stores nothing, and leaves the server serving.

The shape is ``{"error": str, "reason": str}``, exactly those two keys, with the
status CouchDB 3 uses. After each bad request the test checks that no database
changed (``_all_dbs``, and per database doc_count / doc_del_count / update_seq and
the ids and revs of ``_all_docs``), that the targeted document is still absent,
and that ``GET /`` still answers 200.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from api_helpers import DB, body, bulk, create_db, get, put

# Limits of the app under test: a document may be 2,000 bytes, a request 300,000
# (enough for the 100,000-deep array below to reach the JSON parser).
MAX_DOC = 2_000
MAX_REQUEST = 300_000
VICTIM = "victim"
DEEP = b"[" * 100_000 + b"]" * 100_000


def assert_couch_error(response: Any, status: int, error: str | None = None) -> dict:
    """Check a CouchDB error response: the status, and a JSON body of exactly error and reason strings."""
    data = response.get_data()
    assert response.status_code == status, (response.status_code, data[:300])
    assert response.mimetype == "application/json", response.headers.get("Content-Type")
    parsed = json.loads(data)
    assert isinstance(parsed, dict) and set(parsed) == {"error", "reason"}, parsed
    assert isinstance(parsed["error"], str) and parsed["error"], parsed
    assert isinstance(parsed["reason"], str), parsed
    if error is not None:
        assert parsed["error"] == error, parsed
    return parsed


@pytest.fixture
def small(make_app: Callable[..., Any], make_client: Callable[..., Any]) -> dict[str, Any]:
    """An app with small size limits, database ``db`` holding one document ``seed``."""
    app = make_app(max_document_size=MAX_DOC, max_request_size=MAX_REQUEST)
    admin = make_client(app)
    create_db(admin)
    seed_rev = put(admin, "seed", {"n": 1})
    return {"admin": admin, "anon": make_client(app, auth=False), "seed_rev": seed_rev}


def state(client: Any) -> dict[str, Any]:
    """What a bad request must not change."""
    out: dict[str, Any] = {}
    for name in get(client, "/_all_dbs"):
        info = get(client, f"/{quote(name, safe='')}")
        rows = get(client, f"/{quote(name, safe='')}/_all_docs")["rows"]
        changes = get(client, f"/{quote(name, safe='')}/_changes?style=all_docs")["results"]
        out[name] = (info["doc_count"], info["doc_del_count"], info["update_seq"],
                     [(r["id"], r["value"]["rev"]) for r in rows], changes)
    return out


def assert_absent(client: Any, doc_id: str) -> None:
    """The document was not stored: _all_docs knows no such key, and GET answers 404 where the id is routable."""
    rows = client.post(f"/{DB}/_all_docs", json={"keys": [doc_id]})
    assert rows.status_code == 200, rows.get_data()
    assert body(rows)["rows"] == [{"key": doc_id, "error": "not_found"}]
    if doc_id and not doc_id.startswith("_"):
        assert_couch_error(client.get(f"/{DB}/{quote(doc_id, safe='')}"), 404, "not_found")


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


@dataclass
class Case:
    """One bad request: what to send and the error expected."""

    name: str
    method: str
    path: str
    status: int = 400
    error: str | None = None
    json: Any = None
    data: bytes | None = None
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    as_anon: bool = False
    absent: str | None = VICTIM
    check: Callable[[Any], None] | None = None


def _inline_att(name: str, data: str = "aGVsbG8=") -> dict:
    return {"_attachments": {name: {"content_type": "text/plain", "data": data}}}


BAD_ATTACHMENT_NAMES = ["../etc/passwd", "a/../../b", "/etc/passwd", "a\\b", "a\x01b", "tab\there", "_att",
                        "x/./y", ".."]
# Standalone attachment URLs: (label, raw path after /db/victim/) including unencoded path tricks.
BAD_ATTACHMENT_PATHS = [("dotdot-raw", "../etc/passwd"), ("dotdot-encoded", "..%2Fetc%2Fpasswd"),
                        ("nested-dotdot-raw", "a/../../b"), ("nested-dotdot-encoded", "a%2F..%2F..%2Fb"),
                        ("leading-slash-raw", "/etc/passwd"), ("leading-slash-encoded", "%2Fetc%2Fpasswd"),
                        ("backslash", "a%5Cb"), ("backslash-dotdot", "..%5C..%5Cwin.ini"),
                        ("control", "a%01b"), ("newline", "a%0Ab"), ("underscore", "_att")]
BULK_CONTENT_TYPE_TARGETS = {"_bulk_docs": {"docs": [{"_id": VICTIM}]}, "_bulk_get": {"docs": [{"id": "seed"}]},
                             "_revs_diff": {"seed": ["1-abc"]}, "_all_docs": {"keys": ["seed"]}}

CASES: list[Case] = [
    # malformed JSON
    Case("put-truncated-json", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": 1,'),
    Case("put-garbage", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b"not json at all"),
    Case("put-empty-body", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b""),
    Case("put-trailing-garbage", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": 1} x'),
    Case("post-db-malformed", "POST", f"/{DB}", error="bad_request", data=b'{"_id": "victim", '),
    Case("bulk-docs-malformed", "POST", f"/{DB}/_bulk_docs", error="bad_request", data=b'{"docs": [{"_id": "victim"}'),
    Case("bulk-get-malformed", "POST", f"/{DB}/_bulk_get", error="bad_request", data=b'{"docs": ['),
    Case("revs-diff-malformed", "POST", f"/{DB}/_revs_diff", error="bad_request", data=b'{"seed": ['),
    Case("all-docs-malformed", "POST", f"/{DB}/_all_docs", error="bad_request", data=b'{"keys": '),
    Case("put-body-is-array", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json=[1, 2]),
    Case("put-body-is-string", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json="victim"),
    Case("bulk-docs-not-a-list", "POST", f"/{DB}/_bulk_docs", error="bad_request", json={"docs": {"_id": VICTIM}}),
    Case("bulk-docs-body-is-list", "POST", f"/{DB}/_bulk_docs", error="bad_request", json=[{"_id": VICTIM}]),
    Case("bulk-docs-new-edits-string", "POST", f"/{DB}/_bulk_docs", error="bad_request",
         json={"docs": [{"_id": VICTIM, "_rev": "1-abc"}], "new_edits": "false"}),
    Case("bulk-get-docs-not-a-list", "POST", f"/{DB}/_bulk_get", error="bad_request", json={"docs": "seed"}),
    Case("revs-diff-revs-not-a-list", "POST", f"/{DB}/_revs_diff", error="bad_request", json={"seed": "1-abc"}),
    Case("all-docs-keys-not-a-list", "POST", f"/{DB}/_all_docs", error="bad_request", json={"keys": "seed"}),
    # NaN and infinities are not JSON
    Case("nan-literal", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": NaN}'),
    Case("infinity-literal", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": Infinity}'),
    Case("minus-infinity-literal", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": -Infinity}'),
    Case("nan-in-bulk-docs", "POST", f"/{DB}/_bulk_docs", error="bad_request",
         data=b'{"docs": [{"_id": "victim", "a": NaN}]}'),
    # wrong content type on POSTs that CouchDB requires to be JSON
    *[Case(f"content-type-text-{target}", "POST", f"/{DB}/{target}", 415, "bad_content_type",
           data=json.dumps(payload).encode(), content_type="text/plain")
      for target, payload in BULK_CONTENT_TYPE_TARGETS.items()],
    *[Case(f"content-type-missing-{target}", "POST", f"/{DB}/{target}", 415, "bad_content_type",
           data=json.dumps(payload).encode(), content_type=None)
      for target, payload in BULK_CONTENT_TYPE_TARGETS.items()],
    Case("content-type-form-bulk-docs", "POST", f"/{DB}/_bulk_docs", 415, "bad_content_type",
         data=b'{"docs": [{"_id": "victim"}]}', content_type="application/x-www-form-urlencoded"),
    Case("content-type-text-post-db", "POST", f"/{DB}", 415, "bad_content_type",
         data=b'{"_id": "victim"}', content_type="text/plain"),
    # invalid document ids
    Case("put-underscore-id", "PUT", f"/{DB}/_foo", error="illegal_docid", json={}, absent="_foo"),
    Case("put-underscore-id-encoded", "PUT", f"/{DB}/%5Ffoo", error="illegal_docid", json={}, absent="_foo"),
    Case("post-underscore-id", "POST", f"/{DB}", error="illegal_docid", json={"_id": "_foo"}, absent="_foo"),
    Case("post-empty-id", "POST", f"/{DB}", error="illegal_docid", json={"_id": ""}, absent=""),
    Case("post-numeric-id", "POST", f"/{DB}", error="illegal_docid", json={"_id": 5}),
    Case("put-nul-in-id", "PUT", f"/{DB}/vic%00tim", error="illegal_docid", json={}, absent="vic\x00tim"),
    Case("bulk-non-string-ids", "POST", f"/{DB}/_bulk_docs",
         json={"docs": [{"_id": 5}, {"_id": None}, {"_id": ["victim"]}, {"_id": {"a": 1}}, {"_id": True}]},
         error="illegal_docid"),
    Case("bulk-empty-and-underscore-ids", "POST", f"/{DB}/_bulk_docs",
         json={"docs": [{"_id": ""}, {"_id": "_foo"}, {"_id": "_design/"}]}, absent="_foo",
         error="illegal_docid"),
    Case("bulk-doc-not-an-object", "POST", f"/{DB}/_bulk_docs", json={"docs": ["victim", 5, None]},
         error="bad_request"),
    Case("bad-special-member", "PUT", f"/{DB}/{VICTIM}", error="doc_validation", json={"_bogus": 1}),
    # invalid revisions
    Case("get-rev-abc", "GET", f"/{DB}/seed?rev=abc", error="bad_request"),
    Case("get-rev-no-number", "GET", f"/{DB}/seed?rev=-abc", error="bad_request"),
    Case("get-open-revs-abc", "GET", f'/{DB}/seed?open_revs=["abc"]', error="bad_request"),
    Case("get-open-revs-not-json", "GET", f"/{DB}/seed?open_revs=[abc", error=None),
    Case("put-rev-x-y", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json={"_rev": "x-y"}),
    Case("put-rev-x-y-existing", "PUT", f"/{DB}/seed", error="bad_request", json={"_rev": "x-y", "n": 2},
         absent=None),
    Case("put-rev-query-x-y", "PUT", f"/{DB}/{VICTIM}?rev=x-y", error="bad_request", json={}),
    Case("put-rev-not-string", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json={"_rev": 1}),
    Case("delete-rev-abc", "DELETE", f"/{DB}/seed?rev=abc", error="bad_request", absent=None),
    Case("revisions-malformed-put", "PUT", f"/{DB}/{VICTIM}?new_edits=false", error="doc_validation",
         json={"_rev": "2-aaaa", "_revisions": {"start": "2", "ids": "aaaa"}}),
    Case("revs-diff-invalid-rev-known-doc", "POST", f"/{DB}/_revs_diff", error="bad_request", json={"seed": ["abc"]}),
    Case("revs-diff-invalid-rev-unknown-doc", "POST", f"/{DB}/_revs_diff", error="bad_request",
         json={VICTIM: ["abc"]}),
    Case("new-edits-false-no-rev", "PUT", f"/{DB}/{VICTIM}?new_edits=false", error="bad_request", json={"a": 1}),
    # oversized documents and requests
    Case("document-too-large", "PUT", f"/{DB}/{VICTIM}", 413, "document_too_large", json={"big": "a" * (MAX_DOC * 2)}),
    Case("document-too-large-post", "POST", f"/{DB}", 413, "document_too_large",
         json={"_id": VICTIM, "big": "a" * (MAX_DOC * 2)}),
    Case("document-too-large-bulk", "POST", f"/{DB}/_bulk_docs", 413, "document_too_large",
         json={"docs": [{"_id": VICTIM, "big": "a" * MAX_DOC * 2}]}),
    Case("request-too-large", "PUT", f"/{DB}/{VICTIM}", 413, "too_large",
         data=json.dumps({"big": "a" * MAX_REQUEST}).encode()),
    Case("request-too-large-bulk", "POST", f"/{DB}/_bulk_docs", 413, "too_large",
         data=json.dumps({"docs": [{"_id": VICTIM, "big": "a" * MAX_REQUEST}]}).encode()),
    Case("request-too-large-attachment", "PUT", f"/{DB}/{VICTIM}/blob.bin", 413, "too_large",
         data=b"\0" * (MAX_REQUEST + 1), content_type="application/octet-stream"),
    Case("gzip-bomb-put", "PUT", f"/{DB}/{VICTIM}", 413, "too_large",
         data=gz(json.dumps({"big": "a" * (MAX_REQUEST * 20)}).encode()), headers={"Content-Encoding": "gzip"}),
    Case("gzip-bomb-bulk", "POST", f"/{DB}/_bulk_docs", 413, "too_large",
         data=gz(json.dumps({"docs": [{"_id": VICTIM, "big": " " * (MAX_REQUEST * 20)}]}).encode()),
         headers={"Content-Encoding": "gzip"}),
    Case("gzip-bomb-zeros-attachment", "PUT", f"/{DB}/{VICTIM}/blob.bin", 413, "too_large",
         data=gz(b"\0" * (MAX_REQUEST * 30)), content_type="application/octet-stream",
         headers={"Content-Encoding": "gzip"}),
    Case("gzip-invalid", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b"\x1f\x8b\x08\x00garbage",
         headers={"Content-Encoding": "gzip"}),
    # invalid UTF-8
    Case("invalid-utf8", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": "\xff\xfe"}'),
    Case("invalid-utf8-surrogate", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": "\xed\xa0\x80"}'),
    Case("invalid-utf8-overlong", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": "\xc0\xaf"}'),
    Case("invalid-utf8-truncated", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"a": "\xe2\x82"}'),
    Case("invalid-utf8-bulk", "POST", f"/{DB}/_bulk_docs", error="bad_request",
         data=b'{"docs": [{"_id": "victim", "a": "\xff"}]}'),
    Case("invalid-utf8-in-key", "PUT", f"/{DB}/{VICTIM}", error="bad_request", data=b'{"\xff": 1}'),
    # absurd nesting
    Case("deep-arrays-put", "PUT", f"/{DB}/{VICTIM}", 400, data=b'{"a":' + DEEP + b"}"),
    Case("deep-arrays-body", "PUT", f"/{DB}/{VICTIM}", 400, data=DEEP),
    Case("deep-objects-put", "PUT", f"/{DB}/{VICTIM}", 400, data=b'{"a":' * 40_000 + b"1" + b"}" * 40_000),
    Case("deep-arrays-bulk", "POST", f"/{DB}/_bulk_docs", 400,
         data=b'{"docs": [{"_id": "victim", "a": ' + DEEP + b"}]}"),
    Case("deep-arrays-bulk-get", "POST", f"/{DB}/_bulk_get", 400, data=b'{"docs": ' + DEEP + b"}"),
    Case("depth-150-put", "PUT", f"/{DB}/{VICTIM}", 400, json={"a": json.loads("[" * 150 + "]" * 150)}),
    Case("depth-150-objects-put", "PUT", f"/{DB}/{VICTIM}", 400,
         data=b'{"a":' * 150 + b"1" + b"}" * 150),
    Case("depth-150-new-edits-false", "PUT", f"/{DB}/{VICTIM}?new_edits=false", 400,
         json={"_rev": "1-abcd", "a": json.loads("[" * 150 + "]" * 150)}),
    Case("depth-150-bulk", "POST", f"/{DB}/_bulk_docs",
         json={"docs": [{"_id": VICTIM, "a": json.loads("[" * 150 + "]" * 150)}]},
         error="doc_validation"),
    Case("depth-150-in-attachment-stub", "PUT", f"/{DB}/{VICTIM}", 400,
         data=b'{"_attachments": {"a.txt": {"content_type": "text/plain", "data": "aGk=", "x": '
              + b"[" * 150 + b"]" * 150 + b"}}}"),
    # attachment names with path tricks, inline and standalone
    *[Case(f"inline-att-name-{i}", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json=_inline_att(name))
      for i, name in enumerate(BAD_ATTACHMENT_NAMES)],
    *[Case(f"bulk-inline-att-name-{i}", "POST", f"/{DB}/_bulk_docs",
           json={"docs": [{"_id": VICTIM, **_inline_att(name)}]}, error="bad_request")
      for i, name in enumerate(BAD_ATTACHMENT_NAMES)],
    *[Case(f"standalone-att-{label}", "PUT", f"/{DB}/{VICTIM}/{raw}", error="bad_request", data=b"hello",
           content_type="text/plain")
      for label, raw in BAD_ATTACHMENT_PATHS],
    *[Case(f"standalone-att-existing-{label}", "PUT", f"/{DB}/seed/{raw}?rev={{seed_rev}}", error="bad_request",
           data=b"hello", content_type="text/plain", absent=None)
      for label, raw in BAD_ATTACHMENT_PATHS],
    Case("bad-base64", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json=_inline_att("a.txt", "!!!not base64")),
    Case("bad-base64-padding", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json=_inline_att("a.txt", "aGVsbG8")),
    Case("attachment-data-not-string", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json=_inline_att("a.txt", 5)),
    Case("attachment-not-object", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json={"_attachments": {"a": 1}}),
    Case("attachments-not-object", "PUT", f"/{DB}/{VICTIM}", error="bad_request", json={"_attachments": [1]}),
    Case("attachment-missing-stub", "PUT", f"/{DB}/{VICTIM}", 412, "missing_stub",
         json={"_attachments": {"a.txt": {"stub": True, "digest": "md5-AAAAAAAAAAAAAAAAAAAAAA=="}}}),
    # databases
    Case("unknown-db-info", "GET", "/nodb", 404, "not_found"),
    Case("unknown-db-doc", "GET", "/nodb/victim", 404, "not_found"),
    Case("unknown-db-put-doc", "PUT", "/nodb/victim", 404, "not_found", json={}),
    Case("unknown-db-post", "POST", "/nodb", 404, "not_found", json={"_id": VICTIM}),
    Case("unknown-db-bulk-docs", "POST", "/nodb/_bulk_docs", 404, "not_found", json={"docs": [{"_id": VICTIM}]}),
    Case("unknown-db-changes", "GET", "/nodb/_changes", 404, "not_found"),
    Case("unknown-db-all-docs", "GET", "/nodb/_all_docs", 404, "not_found"),
    Case("unknown-db-delete", "DELETE", "/nodb", 404, "not_found"),
    Case("unknown-db-attachment", "PUT", "/nodb/victim/a.txt", 404, "not_found", data=b"x", content_type="text/plain"),
    *[Case(f"illegal-db-name-{label}", "PUT", f"/{raw}", 400, "illegal_database_name")
      for label, raw in [("upper", "Bad"), ("digit-first", "1abc"), ("underscore-first", "_foo"),
                         ("space", "a%20b"), ("dot", "a.b"), ("unicode", "%C3%A9t%C3%A9"), ("star", "a*b"),
                         ("too-long", "a" * 300)]],
    Case("create-db-anonymous", "PUT", "/newdb", 401, "unauthorized", as_anon=True),
    Case("delete-db-anonymous", "DELETE", f"/{DB}", 401, "unauthorized", as_anon=True),
    Case("create-db-wrong-password", "PUT", "/newdb", 401, "unauthorized",
         headers={"Authorization": "Basic YWRtaW46d3Jvbmc="}, as_anon=True),
    Case("design-doc-anonymous", "PUT", f"/{DB}/_design/app", 401, "unauthorized", json={}, as_anon=True,
         absent="_design/app"),
    Case("create-db-twice", "PUT", f"/{DB}", 412, "file_exists"),
    # _changes parameters
    Case("changes-unknown-feed", "GET", f"/{DB}/_changes?feed=bogus", 400, "bad_request"),
    Case("changes-since-abc", "GET", f"/{DB}/_changes?since=abc", 400, "bad_request"),
    Case("changes-since-negative", "GET", f"/{DB}/_changes?since=-1", 400, "bad_request"),
    Case("changes-since-object", "POST", f"/{DB}/_changes", 400, "bad_request", json={"since": {"a": 1}}),
    Case("changes-limit-abc", "GET", f"/{DB}/_changes?limit=abc", 400),
    Case("changes-limit-negative", "GET", f"/{DB}/_changes?limit=-5", 400),
    Case("changes-unknown-style", "GET", f"/{DB}/_changes?style=bogus", 400),
    Case("changes-unknown-filter", "GET", f"/{DB}/_changes?filter=nosuch/filter", 404, "not_found"),
    Case("changes-unknown-builtin-filter", "GET", f"/{DB}/_changes?filter=_nosuch", 400, "bad_request"),
    Case("changes-doc-ids-not-list", "POST", f"/{DB}/_changes?filter=_doc_ids", 400, json={"doc_ids": "seed"}),
    Case("changes-doc-ids-bad-json", "GET", f"/{DB}/_changes?filter=_doc_ids&doc_ids=[seed", 400),
    # invalid selectors
    Case("selector-unknown-operator", "POST", f"/{DB}/_changes?filter=_selector", 400,
         json={"selector": {"$bogus": 1}}),
    Case("selector-not-object", "POST", f"/{DB}/_changes?filter=_selector", 400, json={"selector": "seed"}),
    Case("selector-missing", "POST", f"/{DB}/_changes?filter=_selector", 400, json={}),
    Case("selector-missing-get", "GET", f"/{DB}/_changes?filter=_selector", 400),
    Case("selector-bad-argument", "POST", f"/{DB}/_changes?filter=_selector", 400,
         json={"selector": {"n": {"$in": 1}}}),
    Case("selector-bad-regex", "POST", f"/{DB}/_changes?filter=_selector", 400,
         json={"selector": {"n": {"$regex": "("}}}),
    # query parameters of _all_docs and documents
    Case("all-docs-limit-abc", "GET", f"/{DB}/_all_docs?limit=abc", 400),
    Case("all-docs-startkey-not-json", "GET", f"/{DB}/_all_docs?startkey=seed", 400),
    Case("doc-revs-not-boolean", "GET", f"/{DB}/seed?revs=yes", 400),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_request_is_refused_and_stores_nothing(small: dict[str, Any], case: Case) -> None:
    admin = small["admin"]
    before = state(admin)
    requester = small["anon"] if case.as_anon else admin
    kwargs: dict[str, Any] = {"headers": case.headers}
    if case.json is not None:
        kwargs["data"] = json.dumps(case.json).encode()
    elif case.data is not None:
        kwargs["data"] = case.data
    if case.content_type is not None:
        kwargs["content_type"] = case.content_type
    response = requester.open(case.path.format(seed_rev=small["seed_rev"]), method=case.method, **kwargs)
    if case.check is not None:
        case.check(response)
    else:
        assert_couch_error(response, case.status, case.error)
    assert admin.get("/").status_code == 200
    assert state(admin) == before
    if case.absent is not None:
        assert_absent(admin, case.absent)
    assert "newdb" not in get(admin, "/_all_dbs") and "nodb" not in get(admin, "/_all_dbs")


@pytest.mark.parametrize("deep", [b"[" * 5_000 + b"]" * 5_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
                                  b'{"n": 12345678901234567890123, "a":' + b"[" * 5_000 + b"]" * 5_000 + b"}"],
                         ids=["arrays", "objects", "with-a-big-integer"])
def test_a_body_nested_past_the_parser_says_so(client: Any, deep: bytes) -> None:
    """Not "invalid JSON": it is well formed, only too deep for any document here."""
    create_db(client)
    response = client.put(f"/{DB}/deep", data=deep, content_type="application/json")
    assert assert_couch_error(response, 400, "bad_request")["reason"] == "JSON nested deeper than 100 levels"
    assert assert_couch_error(client.put(f"/{DB}/bad", data=b'{"a": ]', content_type="application/json"),
                              400, "bad_request")["reason"] == "invalid UTF-8 JSON"


def test_error_helper_rejects_extra_keys(client: Any) -> None:
    """The helper itself must fail on a body that is not exactly error and reason."""
    create_db(client)
    ok = client.get(f"/{DB}")
    with pytest.raises(AssertionError):
        assert_couch_error(ok, 200)


def test_not_found_reasons(client: Any) -> None:
    """CouchDB's reasons: a missing database, a missing document, a deleted one."""
    assert assert_couch_error(client.get("/nodb"), 404, "not_found")["reason"] == "Database does not exist."
    create_db(client)
    assert assert_couch_error(client.get(f"/{DB}/nothing"), 404, "not_found")["reason"] == "missing"
    rev = put(client, "gone")
    assert client.delete(f"/{DB}/gone?rev={rev}").status_code == 200
    assert assert_couch_error(client.get(f"/{DB}/gone"), 404, "not_found")["reason"] == "deleted"


def test_conflict_shape(client: Any) -> None:
    create_db(client)
    put(client, "a")
    err = assert_couch_error(client.put(f"/{DB}/a", json={"x": 1}), 409, "conflict")
    assert err["reason"] == "Document update conflict."


def test_bulk_docs_conflict_rows_and_good_rows(small: dict[str, Any]) -> None:
    """A conflict does not sink the batch: 201, an error row for it, the good ones stored."""
    admin = small["admin"]
    before = get(admin, f"/{DB}")
    docs = [
        {"_id": "good1", "n": 1},
        {"_id": "seed", "n": 4},  # no _rev: a conflict with the existing seed
        {"_id": "stale", "_rev": "1-0123456789abcdef0123456789abcdef"},  # unknown parent
        {"_id": "good2", "n": 5},
    ]
    rows = bulk(admin, docs)
    assert len(rows) == len(docs)
    assert rows[0]["ok"] is True and rows[0]["id"] == "good1"
    assert rows[-1]["ok"] is True and rows[-1]["id"] == "good2"
    for row, doc in zip(rows[1:-1], docs[1:-1]):
        assert row == {"id": doc["_id"], "error": "conflict", "reason": "Document update conflict."}, row
    assert get(admin, f"/{DB}/good1")["n"] == 1
    assert get(admin, f"/{DB}/seed")["n"] == 1
    assert_couch_error(admin.get(f"/{DB}/stale"), 404, "not_found")
    after = get(admin, f"/{DB}")
    assert after["doc_count"] == before["doc_count"] + 2
    assert int(after["update_seq"].split("-")[0]) == int(before["update_seq"].split("-")[0]) + 2


@pytest.mark.parametrize(("bad", "status", "error"), [
    ({"_id": "_bad"}, 400, "illegal_docid"),
    ({"_id": 7}, 400, "illegal_docid"),
    ({"_id": "toolarge", "big": "a" * (MAX_DOC * 2)}, 413, "document_too_large"),
    ({"_id": "badatt", **_inline_att("../x")}, 400, "bad_request"),
])
def test_bulk_docs_one_malformed_document_refuses_all(small: dict[str, Any], bad: dict, status: int,
                                                      error: str) -> None:
    """As CouchDB: a malformed document anywhere in the batch refuses the request; nothing is stored."""
    admin = small["admin"]
    before = get(admin, f"/{DB}")
    response = admin.post(f"/{DB}/_bulk_docs", json={"docs": [{"_id": "good1"}, bad, {"_id": "good2"}]})
    assert_couch_error(response, status, error)
    assert_couch_error(admin.get(f"/{DB}/good1"), 404, "not_found")
    assert get(admin, f"/{DB}")["update_seq"] == before["update_seq"]


def test_server_still_writes_after_bad_requests(small: dict[str, Any]) -> None:
    """A run of hostile bodies leaves the writer usable (no dangling transaction or lock)."""
    admin = small["admin"]
    for data in (DEEP, b'{"a": NaN}', b'{"a": "\xff"}', gz(b" " * (MAX_REQUEST * 10))):
        headers = {"Content-Encoding": "gzip"} if data[:2] == b"\x1f\x8b" else {}
        response = admin.post(f"/{DB}/_bulk_docs", data=data, content_type="application/json", headers=headers)
        assert response.status_code in (400, 413)
        assert_couch_error(response, response.status_code)
    rows = bulk(admin, [{"_id": "after", "ok": 1}])
    assert rows[0]["ok"] is True
    assert get(admin, f"/{DB}/after")["ok"] == 1
