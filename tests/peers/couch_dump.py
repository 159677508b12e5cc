"""Dump a database of any CouchDB-protocol HTTP server the way pouch.js dumps PouchDB.

The dump maps every document id seen in ``_changes?style=all_docs`` (deleted
documents included) to ``{"winner": doc, "leaves": [{"rev": rev, "doc": doc}, ...]}``:

* ``winner``: ``GET /{db}/{id}?revs=true&conflicts=true&attachments=true``; when the
  winner is deleted (404), the leaf CouchDB's rule picks (:func:`winning_leaf`).
* ``leaves``: ``GET /{db}/{id}?open_revs=all&revs=true&attachments=true`` as JSON,
  sorted by rev.

Attachments keep ``content_type``, ``digest``, ``revpos`` and ``data`` (base64) and
``_conflicts`` is sorted, exactly as in tests/peers/pouch.js, so that a dump made
here and one made there can be compared with ``==`` (:func:`assert_same_dump` also
lists where they differ). Also the few plain HTTP calls the integration tests make:
create_db, bulk_docs, put_doc.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

ATTACHMENT_FIELDS = ("content_type", "digest", "revpos", "data")
_TIMEOUT = 30.0  # seconds for one request: generous, every peer is on loopback

_SHORT = 100  # characters of a differing value shown in a failure
_ABSENT = object()

Doc = dict[str, Any]


def client(url: str) -> httpx.Client:
    """Return an httpx client for a server URL (credentials may be in the URL).

    Each helper opens its own short-lived client: pouchdb-server closes keep-alive
    sockets idle for 5 s, so a connection is never kept between calls.
    """
    return httpx.Client(base_url=url, timeout=_TIMEOUT, trust_env=False)


def doc_path(db: str, doc_id: str) -> str:
    """Return the URL path of a document, its id percent-encoded like PouchDB does (``_design/`` literal)."""
    if doc_id.startswith("_design/"):
        return f"/{quote(db, safe='')}/_design/{quote(doc_id[8:], safe='')}"
    return f"/{quote(db, safe='')}/{quote(doc_id, safe='')}"


def rev_key(rev: str, deleted: bool) -> tuple[int, int, str]:
    """Sort key of CouchDB's winner rule: not deleted, then generation, then rev id."""
    generation, _, _ = rev.partition("-")
    return (0 if deleted else 1, int(generation), rev)


def winning_leaf(leaves: list[Doc]) -> Doc:
    """Return the leaf CouchDB would pick as the winner."""
    return max(leaves, key=lambda leaf: rev_key(leaf["rev"], bool(leaf["doc"].get("_deleted"))))


def normalize(doc: Doc) -> Doc:
    """Keep the comparable attachment fields and sort ``_conflicts``."""
    out = dict(doc)
    if "_attachments" in out:
        out["_attachments"] = {
            name: {k: att[k] for k in ATTACHMENT_FIELDS if k in att}
            for name, att in doc["_attachments"].items()
        }
    if "_conflicts" in out:
        out["_conflicts"] = sorted(out["_conflicts"])
    return out


def expect(response: httpx.Response, status: int = 200) -> httpx.Response:
    """Fail with the request, the status and the body unless the status is as expected."""
    request = response.request
    said = f"{request.method} {request.url} -> {response.status_code} {response.text}"
    assert response.status_code == status, said
    return response


def all_ids(http: httpx.Client, db: str) -> list[str]:
    """Return every document id of db, deleted documents included."""
    response = expect(http.get(f"/{quote(db, safe='')}/_changes", params={"style": "all_docs"}))
    return sorted({row["id"] for row in response.json()["results"]})


def leaves_of(http: httpx.Client, db: str, doc_id: str) -> list[Doc]:
    """Return the leaves of one document, sorted by rev."""
    params = {"open_revs": "all", "revs": "true", "attachments": "true"}
    headers = {"Accept": "application/json"}
    response = expect(http.get(doc_path(db, doc_id), params=params, headers=headers))
    docs = [row["ok"] for row in response.json() if "ok" in row]
    return sorted(({"rev": d["_rev"], "doc": normalize(d)} for d in docs), key=lambda x: x["rev"])


def dump_doc(http: httpx.Client, db: str, doc_id: str) -> Doc:
    """Return the winner and the sorted leaves of one document."""
    leaves = leaves_of(http, db, doc_id)
    params = {"revs": "true", "conflicts": "true", "attachments": "true"}
    response = http.get(doc_path(db, doc_id), params=params, headers={"Accept": "application/json"})
    if response.status_code == 404 and leaves and winning_leaf(leaves)["doc"].get("_deleted"):
        return {"winner": winning_leaf(leaves)["doc"], "leaves": leaves}
    return {"winner": normalize(expect(response).json()), "leaves": leaves}


def dump(url: str, db: str) -> dict[str, Doc]:
    """Return the dump of database ``db`` on the server at ``url``."""
    with client(url) as http:
        return {doc_id: dump_doc(http, db, doc_id) for doc_id in all_ids(http, db)}


def check_winners(dumped: dict[str, Doc]) -> list[str]:
    """Return the ids whose winner is not the leaf CouchDB's rule picks."""
    return [
        doc_id
        for doc_id, entry in dumped.items()
        if entry["leaves"] and entry["winner"].get("_rev") != winning_leaf(entry["leaves"])["rev"]
    ]


def differences(mine: Any, theirs: Any, path: str = "") -> list[str]:
    """Return one line per place where two dumps (or parts of them) differ."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        keys = sorted(set(mine) | set(theirs))
        pairs = [(mine.get(k, _ABSENT), theirs.get(k, _ABSENT), f"{path}/{k}") for k in keys]
        return [line for pair in pairs for line in differences(*pair)]
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        pairs = [(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(mine, theirs))]
        return [line for pair in pairs for line in differences(*pair)]
    if mine == theirs:
        return []
    return [f"{path}: {_short(mine)} != {_short(theirs)}"]


def _short(value: Any) -> str:
    """Return a value as JSON, cut to a readable length."""
    text = "(absent)" if value is _ABSENT else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHORT else text[:_SHORT] + "..."


def without_digests(dumped: Any) -> Any:
    """The dump with no attachment ``digest``: the content (``data``) is compared instead.

    CouchDB stores text, JSON and XML attachments gzip-encoded and reports the MD5 of the
    encoded bytes as their digest; this project and PouchDB report the MD5 of the content.
    """
    if isinstance(dumped, dict):
        return {k: without_digests(v) if k != "_attachments" else
                {n: {f: x for f, x in a.items() if f != "digest"} for n, a in v.items()}
                for k, v in dumped.items()}
    if isinstance(dumped, list):
        return [without_digests(v) for v in dumped]
    return dumped


def digests_comparable(url: str) -> bool:
    """False for Apache CouchDB, whose text attachments' digests are of their gzip encoding (:func:`without_digests`)."""
    with client(url) as http:
        vendor = expect(http.get("/")).json().get("vendor") or {}
    return vendor.get("name") != "The Apache Software Foundation"


def assert_same_dump(mine: dict[str, Doc], theirs: dict[str, Doc], digests: bool = True) -> None:
    """Check that two dumps are equal and that every winner follows CouchDB's rule.

    :param digests: compare attachment digests too (not against CouchDB: see :func:`without_digests`).
    """
    lines = differences(mine, theirs) if digests else differences(without_digests(mine), without_digests(theirs))
    assert not lines, "dumps differ (first != second):\n" + "\n".join(lines)
    wrong = check_winners(mine) + check_winners(theirs)
    assert not wrong, f"winner is not the leaf CouchDB's rule picks: {wrong}"


def create_db(url: str, db: str) -> None:
    """Create database ``db`` on the server at ``url`` (PUT /{db} must answer 201)."""
    with client(url) as http:
        expect(http.put(f"/{quote(db, safe='')}"), 201)


def bulk_docs(url: str, db: str, docs: list[Doc], new_edits: bool = True) -> list[Doc]:
    """POST /{db}/_bulk_docs and return its rows; fail on a non-201 answer or a failed row."""
    with client(url) as http:
        body = {"docs": docs, "new_edits": new_edits}
        response = expect(http.post(f"/{quote(db, safe='')}/_bulk_docs", json=body), 201)
    rows: list[Doc] = response.json()
    failed = [row for row in rows if "error" in row]
    assert not failed, f"_bulk_docs rows failed: {failed}"
    return rows


def put_doc(url: str, db: str, doc: Doc) -> str:
    """PUT one document (with its ``_rev`` when it updates one) and return the new rev."""
    with client(url) as http:
        response = expect(http.put(doc_path(db, doc["_id"]), json=doc), 201)
    return str(response.json()["rev"])
