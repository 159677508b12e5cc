"""SQLite connections for one database file: pragmas, schema, readers and the writer.

Every write runs in ``BEGIN IMMEDIATE`` on the one writer connection and is on
disk (WAL, ``synchronous=FULL`` by default) before it is acknowledged, which is
why ``_ensure_full_commit`` can be a no-op. Reads borrow a connection from a
small pool (WAL lets them run beside the writer), so a long ``_changes`` read
never blocks a writer and memory does not grow with worker threads.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    winner TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    tree TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_live ON docs (id) WHERE deleted = 0;
CREATE TABLE IF NOT EXISTS revs (
    doc_id TEXT NOT NULL,
    rev TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (doc_id, rev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS atts (digest TEXT PRIMARY KEY, length INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS local_docs (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, body TEXT NOT NULL);
"""

SYNCHRONOUS_MODES = ("off", "normal", "full", "extra")


# Page cache per connection, in KiB (SQLite's negative cache_size): a kiosk is a cheap computer.
WRITER_CACHE_KIB = 8000
READER_CACHE_KIB = 4000
# Read connections per database: more would add memory, not speed, on a 2-core kiosk.
READERS_PER_DB = 4


def connect(path: str, synchronous: str = "full", cache_kib: int = WRITER_CACHE_KIB) -> sqlite3.Connection:
    """Open a connection with the pragmas every connection needs."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute(f"PRAGMA cache_size=-{cache_kib}")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables of a new database file (idempotent)."""
    with transaction(conn):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Readers:
    """A small pool of read connections to one database file.

    A request borrows one for a query (or one page of a feed) and gives it back,
    so memory does not grow with the number of worker threads: a longpoll
    request waiting for a change holds no connection at all.
    """

    def __init__(self, path: str, synchronous: str, size: int = READERS_PER_DB) -> None:
        self._path, self._synchronous = path, synchronous
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection for the duration of the ``with`` block (waits when all are busy)."""
        self._slots.acquire()
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                yield conn
            finally:
                self._idle.put(conn)
        finally:
            self._slots.release()

    def _open(self) -> sqlite3.Connection:
        conn = connect(self._path, self._synchronous, READER_CACHE_KIB)
        conn.execute("PRAGMA query_only=ON")
        with self._lock:
            self._all.append(conn)
        return conn

    def trim(self) -> None:
        """Close the idle readers (the database has not been used for a while)."""
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                self._all.remove(conn)
            conn.close()

    def close(self) -> None:
        """Close every reader (the database is being deleted or the server stops)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._idle = queue.LifoQueue()
