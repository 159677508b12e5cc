"""View rows at rest: with ``storage.encryption_key`` a copied database file shows no emitted key or value.

A sealed view is answered from its rows opened in memory; the same queries on the same documents
in a store in clear must give the same answers, before and after writes and after reopening.
The control (a store in clear, and a design document asking for ``keys_in_clear``) finds what it
emitted in the file, which shows the grep can fail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sync_server.design import collation, views
from sync_server.errors import StoreCorrupt
from sync_server.store import Server, StoreOptions
from sync_server.store.crypto import Cipher

NAME = "Hoàng Thị Lựu Nghiêm"
PHONE = "0912345678"
MAP = "function (doc) { if (doc.name) { emit([doc.name, doc.n], doc.phone); emit(doc.n % 3, doc.n); } }"
DDOC = {"_id": "_design/people", "views": {"by_name": {"map": MAP, "reduce": "_count"}}}
QUERIES: list[dict[str, Any]] = [
    {"reduce": False}, {"reduce": False, "descending": True}, {"reduce": False, "skip": 3, "limit": 4},
    {"reduce": False, "startkey": 1, "endkey": 2}, {"reduce": False, "startkey": 2, "endkey": 1, "descending": True},
    {"reduce": False, "startkey": 0, "endkey": 2, "inclusive_end": False},
    {"reduce": False, "startkey": 2, "endkey": 0, "descending": True, "inclusive_end": False},
    {"reduce": False, "key": 1}, {"reduce": False, "keys": [2, [NAME, 4], "nothing", 0]},
    {"reduce": False, "keys": [1, 0], "descending": True},
    {"reduce": False, "startkey": 1, "startkey_docid": "p05", "limit": 3},
    {"reduce": False, "startkey": [NAME], "endkey": [NAME, {}]}, {"reduce": False, "startkey": ["B"], "limit": 2},
    {}, {"group": True}, {"group_level": 1}, {"startkey": 0, "endkey": 1, "group": True}, {"keys": [0, 2], "group": True},
    {"reduce": False, "include_docs": True, "key": 2},
]


def _docs(start: int, stop: int) -> list[dict]:
    names = [NAME, "An", "bình", "Bảo"]
    return [{"_id": f"p{i:02d}", "name": names[i % 4], "n": i, "phone": f"{PHONE}{i:02d}"} for i in range(start, stop)]


def _answers(db: Any) -> list[dict]:
    """Every query's answer (revision ids left out: an encrypted store keys them)."""
    def load(doc_id: str, rev: str | None) -> dict:
        return {k: v for k, v in db.get(doc_id, rev).items() if k != "_rev"}

    return [views.query(db, "people", "by_name", dict(params), load) for params in QUERIES]


def _file(tmp_path: Path, label: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((tmp_path / label).rglob("*")) if p.is_file())


def _leaks(raw: bytes) -> list[str]:
    wanted = {"value": PHONE.encode(), "key": NAME.encode(),
              "key's sort bytes": collation.string_key(NAME)[:-1]}  # what SQLite would order by
    return sorted(what for what, needle in wanted.items() if needle in raw)


def _store(tmp_path: Path, label: str, cipher: Cipher | None) -> Server:
    return Server(tmp_path / label, StoreOptions(cipher=cipher))


def test_a_copied_file_shows_no_emitted_key_or_value_and_the_view_answers_as_in_clear(tmp_path: Path) -> None:
    cipher = Cipher(os.urandom(32))
    found, answers = {}, {}
    for label, key, ddoc in (("clear", None, DDOC), ("sealed", cipher, DDOC),
                             ("keys_in_clear", cipher, {**DDOC, "options": {"keys_in_clear": True}})):
        store = _store(tmp_path, label, key)
        db = store.create("cell")
        db.bulk_docs([ddoc, *_docs(0, 12)])
        first = _answers(db)
        revs = {d["id"]: d["rev"] for d in db.bulk_docs(_docs(12, 16))}  # the index is updated, not rebuilt
        db.bulk_docs([{"_id": "p15", "_rev": revs["p15"], "_deleted": True}])
        second = _answers(db)
        store.close()
        store = _store(tmp_path, label, key)  # reopened with the key
        db = store.get("cell")
        assert _answers(db) == second
        db.bulk_docs([{"_id": "p16", "name": "Ân", "n": 16, "phone": "1"}])
        third = _answers(db)
        store.close()
        answers[label] = (first, second, third)
        found[label] = _leaks(_file(tmp_path, label))
    assert answers["sealed"] == answers["clear"] == answers["keys_in_clear"]
    assert answers["clear"][0] != answers["clear"][1] != answers["clear"][2]
    assert answers["clear"][0][0]["total_rows"] == 24 and answers["clear"][1][0]["total_rows"] == 30
    assert found == {"clear": ["key", "key's sort bytes", "value"], "sealed": [], "keys_in_clear": ["key", "key's sort bytes"]}


def test_rows_of_a_clear_database_are_dropped_when_it_is_encrypted_and_rebuilt_sealed(tmp_path: Path) -> None:
    store = _store(tmp_path, "data", None)
    db = store.create("cell")
    db.bulk_docs([DDOC, *_docs(0, 8)])
    before = _answers(db)
    store.close()
    assert _leaks(_file(tmp_path, "data")) == ["key", "key's sort bytes", "value"]
    store = _store(tmp_path, "data", Cipher(os.urandom(32)))
    db = store.get("cell")
    db.bulk_docs([{"_id": "_local/x", "note": "a body to seal"}])
    assert _answers(db) == before
    store.close()
    assert _leaks(_file(tmp_path, "data")) == []


def test_a_sealed_row_moved_to_another_document_fails_its_check(tmp_path: Path) -> None:
    cipher = Cipher(os.urandom(32))
    store = _store(tmp_path, "data", cipher)
    db = store.create("cell")
    db.bulk_docs([DDOC, *_docs(0, 2)])
    assert len(_answers(db)[0]["rows"]) == 4
    store.close()
    store = _store(tmp_path, "data", cipher)
    db = store.get("cell")
    with db.index_writer() as conn:  # p01's first row gets p00's sealed row
        (sealed,) = conn.execute("SELECT value_json FROM view_rows WHERE doc_id = 'p00' AND n = 0").fetchone()
        conn.execute("UPDATE view_rows SET value_json = ? WHERE doc_id = 'p01' AND n = 0", (sealed,))
    with pytest.raises(StoreCorrupt):
        _answers(db)
    store.close()


def test_mango_index_rows_are_sealed_and_find_answers_as_in_clear(tmp_path: Path) -> None:
    from sync_server.design import mango

    finds: list[dict[str, Any]] = [
        {"selector": {"name": NAME, "n": {"$gt": 2}}}, {"selector": {"name": {"$gt": "B"}}, "sort": [{"name": "desc"}, {"n": "desc"}]},
        {"selector": {"name": {"$gte": "An"}, "n": {"$lt": 9}}, "fields": ["name", "n"], "limit": 3, "skip": 1},
    ]
    answers, found = {}, {}
    for label, key in (("clear", None), ("sealed", Cipher(os.urandom(32)))):
        store = _store(tmp_path, label, key)
        db = store.create("cell")
        db.bulk_docs(_docs(0, 12))
        mango.create_index(db, {"index": {"fields": ["name", "n"]}, "ddoc": "by-name", "name": "name"})
        first = [mango.find(db, dict(body, execution_stats=True)) for body in finds]
        db.bulk_docs(_docs(12, 20))
        second = [mango.find(db, body) for body in finds]
        store.close()
        for answer in first + second:
            answer.pop("execution_stats", None)
            for doc in answer["docs"]:
                doc.pop("_rev", None)
        answers[label] = first + second
        found[label] = _leaks(_file(tmp_path, label))
    assert answers["sealed"] == answers["clear"] and answers["clear"][0]["docs"] and answers["clear"][1]["docs"]
    assert found == {"clear": ["key", "key's sort bytes", "value"], "sealed": []}
