"""View index rows in the database's own SQLite file (tables made on the first view query).

A design document's views share one signature (a hash of their code); its rows
are kept under that signature with the sequence they were built up to, so a query
after one new document maps that document only. Keys are stored twice: as
sortable bytes (CouchDB's collation, computed by sync_server/design/collation.py)
for ordering and ranges, and as JSON for the answer. The store knows no JavaScript.

Encrypted at rest (``storage.encryption_key``): every emitted value is sealed
(AES-256-GCM, bound to the database, signature, view, document id and row number).
Keys are sealed too unless the design document asks for them in clear
(``"options": {"keys_in_clear": true}``): a sealed key cannot be ordered by SQLite,
so the rows of a view are then opened once, sorted in memory and kept there (per
database and view, updated in place by :meth:`Index.apply`); ranges and lookups
are answered from that list. What stays in clear either way: the document ids a
view has rows for, how many rows each emitted, and the row counts.
"""

from __future__ import annotations

import bisect
import sqlite3
import struct
import threading
import weakref
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
TABLES = ("view_rows", "view_counts", "view_state")
# Rows fetched per query while streaming a view: bounds memory.
PAGE = 500

# One row to insert: (view, key bytes, id bytes, n, doc id, key JSON, value JSON).
Row = tuple[str, bytes, bytes, int, str, str, str]
# A row of a view opened in memory: (key bytes, id bytes, n, doc id, key JSON, value JSON).
Open = tuple[bytes, bytes, int, str, str, str]

# Sealed views opened in memory: per database, (sig, view) -> (seq, rows sorted by key, id, n).
_opened: weakref.WeakKeyDictionary[Database, dict[tuple[str, str], tuple[int, list[Open]]]] = weakref.WeakKeyDictionary()
_opened_guard = threading.Lock()


def built_seq(db: Database, sig: str) -> int | None:
    """The sequence the index of ``sig`` was built up to (None: never built)."""
    with db.reader() as conn:
        try:
            row = conn.execute("SELECT seq FROM view_state WHERE sig = ?", (sig,)).fetchone()
        except sqlite3.OperationalError:  # no view was ever built in this database
            return None
    return row[0] if row else None


def _has_schema(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'view_state'").fetchone() is not None


def drop_others(db: Database, keep: set[str]) -> int:
    """``_view_cleanup``: delete the rows of signatures no design document uses any more."""
    with db.index_writer() as conn:
        if not _has_schema(conn):
            return 0
        old = [s for (s,) in conn.execute("SELECT sig FROM view_state") if s not in keep]
        for sig in old:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table} WHERE sig = ?", (sig,))
    with _opened_guard:
        cached = _opened.get(db, {})
        for sig_view in [k for k in cached if k[0] in old]:
            del cached[sig_view]
    return len(old)


def compact(db: Database) -> None:
    """``_compact/{ddoc}``: rebuild the view rows' B-tree indexes packed (SQLite reuses the pages that
    deleted rows free, but leaves the indexes of a churned view half full)."""
    with db.index_writer() as conn:
        if _has_schema(conn):
            conn.execute("REINDEX view_rows_order")
            conn.execute("REINDEX view_rows_doc")


def _pack(key: bytes, key_json: str, value_json: str) -> bytes:
    """Key bytes, key JSON and value JSON as one plaintext (JSON text never holds a raw NUL)."""
    return struct.pack(">I", len(key)) + key + key_json.encode() + b"\0" + value_json.encode()


def _unpack(data: bytes) -> tuple[bytes, str, str]:
    (size,) = struct.unpack(">I", data[:4])
    key_json, value_json = data[4 + size:].decode().split("\0", 1)
    return data[4:4 + size], key_json, value_json


class Index:
    """The rows of one design document's views (one signature) in one database.

    ``clear_keys``: keep keys sortable in SQLite even when the store is encrypted (the design
    document's ``keys_in_clear`` option); values are sealed whenever the store is.
    """

    def __init__(self, db: Database, sig: str, clear_keys: bool = False) -> None:
        self.db, self.sig = db, sig
        self.cipher = db.cipher
        self.sealed = self.cipher is not None and not clear_keys

    def built_seq(self) -> int | None:
        return built_seq(self.db, self.sig)

    # -- sealing ----------------------------------------------------------------------------

    def _aad(self, kind: str, view: str, doc_id: str, n: int) -> bytes:
        return "\0".join((self.db.name, "view " + kind, self.sig, view, doc_id, str(n))).encode()

    def _stored(self, row: Row) -> tuple[Any, ...]:
        view, key, id_key, n, doc_id, key_json, value_json = row
        if self.cipher is None:
            return (self.sig, *row)
        if self.sealed:
            sealed = self.cipher.seal(_pack(key, key_json, value_json), self._aad("row", view, doc_id, n))
            return (self.sig, view, b"", id_key, n, doc_id, "", sealed)
        sealed = self.cipher.seal(value_json.encode(), self._aad("value", view, doc_id, n))
        return (self.sig, view, key, id_key, n, doc_id, key_json, sealed)

    def _value(self, view: str, doc_id: str, n: int, stored: Any) -> str:
        if self.cipher is None:
            return stored
        return self.cipher.open(stored, self._aad("value", view, doc_id, n)).decode()

    # -- writing ----------------------------------------------------------------------------

    def apply(self, seq: int, doc_ids: Iterable[str], rows: Iterable[Row]) -> None:
        """Replace the rows of ``doc_ids`` by ``rows`` and record ``seq``, in one transaction."""
        ids, rows = list(doc_ids), list(rows)
        delta: dict[str, int] = {}
        for row in rows:
            delta[row[0]] = delta.get(row[0], 0) + 1
        sig = self.sig
        with self.db.index_writer() as conn:
            if not _has_schema(conn):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            before = conn.execute("SELECT seq FROM view_state WHERE sig = ?", (sig,)).fetchone()
            for start in range(0, len(ids), PAGE):  # rows leaving, counted per view (total_rows is kept, not counted)
                chunk = ids[start:start + PAGE]
                for view, gone in conn.execute(f"SELECT view, count(*) FROM view_rows WHERE sig = ? AND doc_id IN "
                                               f"({','.join('?' * len(chunk))}) GROUP BY view", (sig, *chunk)):
                    delta[view] = delta.get(view, 0) - gone
            conn.executemany("DELETE FROM view_rows WHERE sig = ? AND doc_id = ?", [(sig, d) for d in ids])
            conn.executemany("INSERT INTO view_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [self._stored(r) for r in rows])
            conn.executemany("INSERT INTO view_counts VALUES (?, ?, ?) ON CONFLICT (sig, view) DO UPDATE SET n = n + excluded.n",
                             [(sig, view, n) for view, n in delta.items()])
            conn.execute("INSERT OR REPLACE INTO view_state VALUES (?, ?)", (sig, seq))
        if self.sealed:
            self._update_opened(before[0] if before else None, seq, set(ids), rows)

    def _update_opened(self, before: int | None, seq: int, ids: set[str], rows: list[Row]) -> None:
        """Carry the views opened in memory from ``before`` to ``seq``; forget those that were not at ``before``."""
        with _opened_guard:
            cached = _opened.get(self.db, {})
            for sig_view in [k for k in cached if k[0] == self.sig]:
                at, old = cached[sig_view]
                if at != before:
                    del cached[sig_view]
                    continue
                added = [(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows if r[0] == sig_view[1]]
                kept = [r for r in old if r[3] not in ids] if ids else list(old)
                cached[sig_view] = (seq, sorted(kept + added, key=lambda r: r[:3]))

    # -- reading ----------------------------------------------------------------------------

    def _open_view(self, view: str) -> list[Open]:
        """Every row of a sealed view, opened and sorted (kept in memory while the index is unchanged)."""
        seq = self.built_seq()  # read before the rows: a list is never labelled newer than its content
        with _opened_guard:
            found = _opened.get(self.db, {}).get((self.sig, view))
        if found is not None and found[0] == seq:
            return found[1]
        assert self.cipher is not None
        rows: list[Open] = []
        with self.db.reader() as conn:
            stored = conn.execute("SELECT id_key, n, doc_id, value_json FROM view_rows WHERE sig = ? AND view = ?",
                                  (self.sig, view)).fetchall()
        for id_key, n, doc_id, sealed in stored:
            key, key_json, value_json = _unpack(self.cipher.open(sealed, self._aad("row", view, doc_id, n)))
            rows.append((key, id_key, n, doc_id, key_json, value_json))
        rows.sort(key=lambda r: r[:3])
        if seq is not None:
            with _opened_guard:
                _opened.setdefault(self.db, {})[(self.sig, view)] = (seq, rows)
        return rows

    def sizes(self) -> dict[str, int]:
        """CouchDB's ``sizes`` of the index: ``external`` its emitted JSON, ``active`` its rows as stored,
        ``file`` the pages of the view tables (one SQLite file: shared by every index of the database)."""
        with self.db.reader() as conn:
            if not _has_schema(conn):
                return {"file": 0, "external": 0, "active": 0}
            external, active = conn.execute(
                "SELECT coalesce(sum(length(key_json) + length(value_json)), 0), coalesce(sum(length(key) + "
                "length(id_key) + length(doc_id) + length(key_json) + length(value_json) + 8), 0) "
                "FROM view_rows WHERE sig = ?", (self.sig,)).fetchone()
            try:
                pages = conn.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                                     "('view_rows', 'view_rows_order', 'view_rows_doc', 'view_counts', 'view_state')"
                                     ).fetchone()[0]
            except sqlite3.OperationalError:  # an SQLite built without dbstat
                pages = active
        return {"file": max(pages, active), "external": external, "active": active}

    def count(self, view: str) -> int:
        """Rows of one view (``total_rows``), kept up to date by :meth:`apply`."""
        with self.db.reader() as conn:
            row = conn.execute("SELECT n FROM view_counts WHERE sig = ? AND view = ?", (self.sig, view)).fetchone()
        return row[0] if row else 0

    def count_before(self, view: str, bound: tuple[bytes, bytes] | None, descending: bool) -> int:
        """Rows that sort before a range's start (``offset``)."""
        if bound is None:
            return 0
        if self.sealed:
            rows = self._open_view(view)
            if descending:
                return len(rows) - bisect.bisect_right(rows, bound, key=_pair)
            return bisect.bisect_left(rows, bound, key=_pair)
        op = ">" if descending else "<"
        with self.db.reader() as conn:
            return conn.execute(f"SELECT count(*) FROM view_rows WHERE sig = ? AND view = ? AND (key, id_key) {op} (?, ?)",
                                (self.sig, view, *bound)).fetchone()[0]

    def scan(self, view: str, start: tuple[bytes, bytes] | None, end: tuple[bytes, bytes] | None,
             inclusive_end: bool, descending: bool) -> Iterator[tuple[str, str, str, bytes]]:
        """(doc id, key JSON, value JSON, key bytes) of the rows in a range, in order, read in pages.

        ``start`` and ``end`` are (key bytes, id bytes) bounds in the direction of the scan.
        """
        if self.sealed:
            yield from self._scan_opened(view, start, end, inclusive_end, descending)
            return
        lo, hi = (">", "<") if not descending else ("<", ">")
        order = "DESC" if descending else "ASC"
        bounds = [(bound, op) for bound, op in ((start, lo + "="), (end, hi + ("=" if inclusive_end else "")))
                  if bound is not None]
        after: tuple[bytes, bytes, int] | None = None
        while True:
            where = ["sig = ?", "view = ?"] + [f"(key, id_key) {op} (?, ?)" for _, op in bounds]
            args: list[Any] = [self.sig, view] + [part for bound, _ in bounds for part in bound]
            if after is not None:  # rows of one document under one key keep their emit order both ways
                where.append(f"((key, id_key) {lo} (?, ?) OR (key = ? AND id_key = ? AND n > ?))")
                args.extend([after[0], after[1], *after])
            sql = (f"SELECT doc_id, key_json, value_json, key, id_key, n FROM view_rows WHERE {' AND '.join(where)} "
                   f"ORDER BY key {order}, id_key {order}, n LIMIT {PAGE}")
            with self.db.reader() as conn:
                rows = conn.execute(sql, args).fetchall()
            if not rows:
                return
            for doc_id, key_json, value_json, key, _id_key, n in rows:
                yield doc_id, key_json, self._value(view, doc_id, n, value_json), key
            after = rows[-1][3:6]
            if len(rows) < PAGE:
                return

    def _scan_opened(self, view: str, start: tuple[bytes, bytes] | None, end: tuple[bytes, bytes] | None,
                     inclusive_end: bool, descending: bool) -> Iterator[tuple[str, str, str, bytes]]:
        rows = self._open_view(view)
        if not descending:
            first = 0 if start is None else bisect.bisect_left(rows, start, key=_pair)
            stop = len(rows) if end is None else (bisect.bisect_right if inclusive_end else bisect.bisect_left)(
                rows, end, key=_pair)
            chosen = rows[first:stop]
        else:
            stop = len(rows) if start is None else bisect.bisect_right(rows, start, key=_pair)
            first = 0 if end is None else (bisect.bisect_left if inclusive_end else bisect.bisect_right)(
                rows, end, key=_pair)
            # Descending by key and id; a document's rows under one key keep their emit order (a stable sort).
            chosen = sorted(rows[first:stop], key=_pair, reverse=True)
        for key, _id_key, _n, doc_id, key_json, value_json in chosen:
            yield doc_id, key_json, value_json, key

    def rows_for_key(self, view: str, key: bytes) -> list[tuple[str, str, str]]:
        """(doc id, key JSON, value JSON) of every row with exactly this key, in order (ascending)."""
        if self.sealed:
            rows = self._open_view(view)
            first = bisect.bisect_left(rows, key, key=_key)
            return [(r[3], r[4], r[5]) for r in rows[first:bisect.bisect_right(rows, key, key=_key)]]
        with self.db.reader() as conn:
            found = conn.execute("SELECT doc_id, key_json, value_json, n FROM view_rows WHERE sig = ? AND view = ? "
                                 "AND key = ? ORDER BY id_key, n", (self.sig, view, key)).fetchall()
        return [(doc_id, key_json, self._value(view, doc_id, n, value)) for doc_id, key_json, value, n in found]


def _pair(row: Open) -> tuple[bytes, bytes]:
    return row[0], row[1]


def _key(row: Open) -> bytes:
    return row[0]


__all__: list[Any] = ["Index", "built_seq", "drop_others"]
