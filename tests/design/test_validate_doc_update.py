"""validate_doc_update answers as real CouchDB 3.4.3 does, on every write path (differential)."""

from __future__ import annotations

import base64
import json

from twin import ADMIN, USER, Twin, twin  # noqa: F401 (the fixture)

RULES = r"""function (newDoc, oldDoc, userCtx, secObj) {
  if (newDoc.echo) {
    throw({forbidden: JSON.stringify({n: newDoc, o: oldDoc, u: userCtx, s: secObj})});
  }
  if (newDoc._deleted) {
    if (oldDoc && oldDoc.locked) { throw({forbidden: 'locked documents stay'}); }
    return;
  }
  if (!newDoc.type) { throw({forbidden: 'every document needs a type'}); }
  if (newDoc.type === 'secret' && userCtx.roles.indexOf('_admin') === -1) {
    throw({unauthorized: 'only admins write secrets'});
  }
  if (oldDoc && oldDoc.owner && oldDoc.owner !== newDoc.owner) { throw({forbidden: 'owner cannot change'}); }
  if (newDoc.type === 'odd') { throw('a bare string'); }
  if (newDoc.type === 'other') { throw({not_found: 'a strange key'}); }
}"""
SECOND = "function (newDoc) { if (newDoc.type === 'banned') { throw({forbidden: 'second ddoc says no'}); } }"


def _ddocs(twin: Twin) -> None:
    twin.same("PUT", "/{db}/_design/rules", json={"validate_doc_update": RULES}, status=201)
    twin.same("PUT", "/{db}/_design/second", json={"validate_doc_update": SECOND}, status=201)


def test_put_post_and_refusals(twin: Twin) -> None:
    _ddocs(twin)
    assert twin.same("PUT", "/{db}/a", json={"x": 1}, status=403) == {"error": "forbidden",
                                                                        "reason": "every document needs a type"}
    twin.same("POST", "/{db}", json={"_id": "b", "x": 1}, status=403)
    twin.same("PUT", "/{db}/a", json={"type": "note", "owner": "bob"}, status=201)
    twin.same("PUT", "/{db}/s", auth=USER, json={"type": "secret"}, status=401)
    twin.same("PUT", "/{db}/s", auth=ADMIN, json={"type": "secret"}, status=201)
    twin.same("PUT", "/{db}/c", json={"type": "banned"}, status=403)
    twin.same("PUT", "/{db}/d", json={"type": "odd"})
    twin.same("PUT", "/{db}/e", json={"type": "other"})


def test_old_doc_and_arguments(twin: Twin) -> None:
    _ddocs(twin)
    twin.same("PUT", "/{db}/a", json={"type": "note", "owner": "bob"}, status=201)
    rev = [r.json()["_rev"] for r in twin.both("GET", "/{db}/a")]
    couch, ours = (c.put(f"/{twin.db}/a", json={"_rev": r, "type": "note", "owner": "eve"}, auth=ADMIN)
                   for c, r in zip(twin.clients, rev))
    assert (ours.status_code, ours.json()) == (couch.status_code, couch.json()) == (
        403, {"error": "forbidden", "reason": "owner cannot change"})
    # What the function receives: newDoc, oldDoc, userCtx and secObj, byte for byte.
    seen = []
    for client, r in zip(twin.clients, rev):
        answer = client.put(f"/{twin.db}/a", json={"_rev": r, "echo": True, "type": "note"}, auth=USER)
        assert answer.status_code == 403
        seen.append(json.loads(answer.json()["reason"]))
    couch_seen, our_seen = seen
    for side in (couch_seen, our_seen):
        assert side["n"]["_rev"].startswith("1-") and side["o"]["_rev"] == side["n"]["_rev"]
        side["n"]["_rev"] = side["o"]["_rev"] = "<rev>"
        side["n"]["_revisions"]["ids"] = side["o"]["_revisions"]["ids"] = ["<id>"]
    assert our_seen == couch_seen
    # A new document: oldDoc is null.
    answers = [json.loads(r.json()["reason"]) for r in twin.both("PUT", "/{db}/new", json={"echo": 1})]
    assert answers[0] == answers[1] and answers[0]["o"] is None


def test_delete_bulk_docs_and_replicated_writes(twin: Twin) -> None:
    _ddocs(twin)
    twin.same("PUT", "/{db}/locked", json={"type": "note", "locked": True}, status=201)
    revs = [r.json()["_rev"] for r in twin.both("GET", "/{db}/locked")]
    couch, ours = (c.delete(f"/{twin.db}/locked", params={"rev": r}, auth=ADMIN) for c, r in zip(twin.clients, revs))
    assert (ours.status_code, ours.json()) == (couch.status_code, couch.json()) == (
        403, {"error": "forbidden", "reason": "locked documents stay"})
    docs = [{"_id": "ok1", "type": "note"}, {"_id": "bad1"}, {"_id": "sec", "type": "secret"}]
    twin.same("POST", "/{db}/_bulk_docs", auth=USER, json={"docs": docs}, status=201)
    replicated = [{"_id": "r1", "_rev": "1-" + "a" * 32, "type": "note"},
                  {"_id": "r2", "_rev": "1-" + "b" * 32, "no": "type"},
                  {"_id": "r3", "_rev": "2-" + "c" * 32, "_revisions": {"start": 2, "ids": ["c" * 32, "d" * 32]},
                   "type": "banned"}]
    twin.same("POST", "/{db}/_bulk_docs", json={"docs": replicated, "new_edits": False}, status=201)
    twin.same("GET", "/{db}/_all_docs")


def test_attachments_go_through_validation(twin: Twin) -> None:
    _ddocs(twin)
    twin.same("PUT", "/{db}/att", json={"type": "note", "_attachments": {
        "a.txt": {"content_type": "text/plain", "data": base64.b64encode(b"hello").decode()}}}, status=201)
    twin.same("PUT", "/{db}/bare", json={"_attachments": {
        "a.txt": {"content_type": "text/plain", "data": base64.b64encode(b"hello").decode()}}}, status=403)
    # A standalone attachment PUT creating a document without a type: refused by the rule.
    twin.same("PUT", "/{db}/plain/file.bin", content=b"\x00\x01", headers={"Content-Type": "application/octet-stream"},
              status=403)


def test_design_documents_themselves_are_not_validated(twin: Twin) -> None:
    _ddocs(twin)
    twin.same("PUT", "/{db}/_design/untyped", json={"views": {}}, status=201)
    twin.same("PUT", "/{db}/_local/untyped", json={"x": 1}, status=201)


def test_echo_in_bulk_docs_shows_the_same_arguments(twin: Twin) -> None:
    _ddocs(twin)
    rows = twin.same("POST", "/{db}/_bulk_docs", json={"docs": [{"_id": "e", "echo": [1, "two", None]}]}, status=201)
    assert json.loads(rows[0]["reason"])["u"]["roles"] == ["_admin"]
