"""View index rows in the database's own SQLite file (tables made on the first view query).

A design document's views share one signature (a hash of their code); its rows
are kept under that signature with the sequence they were built up to, so a query
after one new document maps that document only. Keys are stored twice: as
sortable bytes (CouchDB's collation, computed by sync_server/design/collation.py)
for ordering and ranges, and as JSON for the answer. The store knows no JavaScript.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from .database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS view_state (sig TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS view_rows (
  sig TEXT NOT NULL, view TEXT NOT NULL, key BLOB NOT NULL, id_key BLOB NOT NULL, n INTEGER NOT NULL,
  doc_id TEXT NOT NULL, key_json TEXT NOT NULL, value_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS view_rows_order ON view_rows (sig, view, key, id_key, n);
CREATE INDEX IF NOT EXISTS view_rows_doc ON view_rows (sig, doc_id);
CREATE TABLE IF NOT EXISTS view_counts (sig TEXT NOT NULL, view TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (sig, view));
"""
# Rows fetched per query while streaming a view: bounds memory.
PAGE = 500

# One row to insert: (view, key bytes, id bytes, n, doc id, key JSON, value JSON).
Row = tuple[str, bytes, bytes, int, str, str, str]


def built_seq(db: Database, sig: str) -> int | None:
    """The sequence the index of ``sig`` was built up to (None: never built)."""
    with db.reader() as conn:
        try:
            row = conn.execute("SELECT seq FROM view_state WHERE sig = ?", (sig,)).fetchone()
        except sqlite3.OperationalError:  # no view was ever built in this database
            return None
    return row[0] if row else None


def apply(db: Database, sig: str, seq: int, doc_ids: Iterable[str], rows: Iterable[Row]) -> None:
    """Replace the rows of ``doc_ids`` by ``rows`` and record ``seq``, in one transaction."""
    ids, rows = list(doc_ids), list(rows)
    delta: dict[str, int] = {}
    for row in rows:
        delta[row[0]] = delta.get(row[0], 0) + 1
    with db.index_writer() as conn:
        if not _has_schema(conn):
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
        for start in range(0, len(ids), PAGE):  # rows leaving, counted per view (total_rows is kept, not counted)
            chunk = ids[start:start + PAGE]
            for view, gone in conn.execute(f"SELECT view, count(*) FROM view_rows WHERE sig = ? AND doc_id IN "
                                           f"({','.join('?' * len(chunk))}) GROUP BY view", (sig, *chunk)):
                delta[view] = delta.get(view, 0) - gone
        conn.executemany("DELETE FROM view_rows WHERE sig = ? AND doc_id = ?", [(sig, d) for d in ids])
        conn.executemany("INSERT INTO view_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(sig, *r) for r in rows])
        conn.executemany("INSERT INTO view_counts VALUES (?, ?, ?) ON CONFLICT (sig, view) DO UPDATE SET n = n + excluded.n",
                         [(sig, view, n) for view, n in delta.items()])
        conn.execute("INSERT OR REPLACE INTO view_state VALUES (?, ?)", (sig, seq))


def _has_schema(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'view_state'").fetchone() is not None


def drop_others(db: Database, keep: set[str]) -> int:
    """``_view_cleanup``: delete the rows of signatures no design document uses any more."""
    with db.index_writer() as conn:
        if not _has_schema(conn):
            return 0
        old = [s for (s,) in conn.execute("SELECT sig FROM view_state") if s not in keep]
        for sig in old:
            for table in ("view_rows", "view_counts", "view_state"):
                conn.execute(f"DELETE FROM {table} WHERE sig = ?", (sig,))
        return len(old)


def count(db: Database, sig: str, view: str) -> int:
    """Rows of one view (``total_rows``), kept up to date by :func:`apply`."""
    with db.reader() as conn:
        row = conn.execute("SELECT n FROM view_counts WHERE sig = ? AND view = ?", (sig, view)).fetchone()
    return row[0] if row else 0


def count_before(db: Database, sig: str, view: str, bound: tuple[bytes, bytes] | None, descending: bool) -> int:
    """Rows that sort before a range's start (``offset``)."""
    if bound is None:
        return 0
    op = ">" if descending else "<"
    with db.reader() as conn:
        return conn.execute(f"SELECT count(*) FROM view_rows WHERE sig = ? AND view = ? AND (key, id_key) {op} (?, ?)",
                            (sig, view, *bound)).fetchone()[0]


def scan(db: Database, sig: str, view: str, start: tuple[bytes, bytes] | None, end: tuple[bytes, bytes] | None,
         inclusive_end: bool, descending: bool) -> Iterator[tuple[str, str, str, bytes]]:
    """(doc id, key JSON, value JSON, key bytes) of the rows in a range, in order, read in pages.

    ``start`` and ``end`` are (key bytes, id bytes) bounds in the direction of the scan.
    """
    lo, hi = (">", "<") if not descending else ("<", ">")
    order = "DESC" if descending else "ASC"
    bounds = [(bound, op) for bound, op in ((start, lo + "="), (end, hi + ("=" if inclusive_end else "")))
              if bound is not None]
    after: tuple[bytes, bytes, int] | None = None
    while True:
        where = ["sig = ?", "view = ?"] + [f"(key, id_key) {op} (?, ?)" for _, op in bounds]
        args: list[Any] = [sig, view] + [part for bound, _ in bounds for part in bound]
        if after is not None:  # rows of one document under one key keep their emit order both ways
            where.append(f"((key, id_key) {lo} (?, ?) OR (key = ? AND id_key = ? AND n > ?))")
            args.extend([after[0], after[1], *after])
        sql = (f"SELECT doc_id, key_json, value_json, key, id_key, n FROM view_rows WHERE {' AND '.join(where)} "
               f"ORDER BY key {order}, id_key {order}, n LIMIT {PAGE}")
        with db.reader() as conn:
            rows = conn.execute(sql, args).fetchall()
        if not rows:
            return
        for doc_id, key_json, value_json, key, _id_key, _n in rows:
            yield doc_id, key_json, value_json, key
        after = rows[-1][3:6]
        if len(rows) < PAGE:
            return


def rows_for_key(db: Database, sig: str, view: str, key: bytes) -> list[tuple[str, str, str]]:
    """(doc id, key JSON, value JSON) of every row with exactly this key, in order (ascending)."""
    with db.reader() as conn:
        return conn.execute("SELECT doc_id, key_json, value_json FROM view_rows WHERE sig = ? AND view = ? AND key = ? "
                            "ORDER BY id_key, n", (sig, view, key)).fetchall()


__all__: list[Any] = ["apply", "built_seq", "count", "count_before", "drop_others", "rows_for_key", "scan"]
