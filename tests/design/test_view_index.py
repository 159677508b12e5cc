"""The view index is kept in SQLite and brought up to date from the changes since its last build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sync_server.design import views
from sync_server.design.engine import Engine, engine
from sync_server.store import Server, StoreOptions, viewindex

DDOC = {"_id": "_design/app", "views": {"by_n": {"map": "function (doc) { emit(doc.n, null); }", "reduce": "_count"}}}


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ids of the documents handed to map functions, in order."""
    seen: list[str] = []
    real = Engine.call

    def spy(self: Engine, ddoc: dict, command: dict) -> Any:
        if command["op"] == "map":
            seen.extend(d["_id"] for d in command["docs"])
        return real(self, ddoc, command)

    monkeypatch.setattr(Engine, "call", spy)
    return seen


def _query(db: Any, **params: Any) -> dict:
    return views.query(db, "app", "by_n", params, lambda i, r: db.get(i, r))


def test_one_write_maps_one_document(tmp_path: Path, mapped: list[str]) -> None:
    db = Server(tmp_path, StoreOptions()).create("db")
    db.bulk_docs([DDOC] + [{"_id": f"d{i}", "n": i} for i in range(50)])
    assert _query(db, reduce=False)["total_rows"] == 50
    assert len(mapped) == 50 and "_design/app" not in mapped
    db.bulk_docs([{"_id": "late", "n": 7}])
    assert _query(db)["rows"] == [{"key": None, "value": 51}]
    assert mapped[50:] == ["late"]
    assert _query(db, stale="ok")["rows"] == [{"key": None, "value": 51}] and len(mapped) == 51


def test_deleted_and_updated_documents_leave_the_index(tmp_path: Path, mapped: list[str]) -> None:
    db = Server(tmp_path, StoreOptions()).create("db")
    revs = db.bulk_docs([DDOC, {"_id": "a", "n": 1}, {"_id": "b", "n": 2}])
    _query(db)
    db.bulk_docs([{"_id": "a", "_rev": revs[1]["rev"], "_deleted": True}, {"_id": "b", "_rev": revs[2]["rev"], "n": 5}])
    answer = _query(db, reduce=False)
    assert [(r["id"], r["key"]) for r in answer["rows"]] == [("b", 5)] and answer["total_rows"] == 1


def test_a_database_without_views_has_no_index_tables(tmp_path: Path) -> None:
    db = Server(tmp_path, StoreOptions()).create("db")
    db.bulk_docs([{"_id": "a"}])
    assert viewindex.built_seq(db, "anything") is None
    with db.reader() as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'view_%'").fetchone()[0] == 0
    assert engine() is engine()
