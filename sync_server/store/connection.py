"""SQLite connections for one database file: pragmas, schema, readers and the writer.

Every write runs in ``BEGIN IMMEDIATE`` on the one writer connection and is on
disk (WAL, ``synchronous=FULL`` by default) before it is acknowledged, which is
why ``_ensure_full_commit`` can be a no-op. Reads borrow a connection from a
small pool (WAL lets them run beside the writer), so a long ``_changes`` read
never blocks a writer and memory does not grow with worker threads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from ..errors import DatabaseGone

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


def connect(path: str, synchronous: str = "full", cache_kib: int = WRITER_CACHE_KIB,
            create: bool = True) -> sqlite3.Connection:
    """Open a connection with the pragmas every connection needs.

    :param create: make the file when it is missing; readers never do, so a
        database deleted under them cannot come back as an empty file.
    """
    uri = "file:" + quote(path) + ("" if create else "?mode=rw")
    conn = sqlite3.connect(uri, isolation_level=None, check_same_thread=False, timeout=30, uri=True)
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

    A connection is only ever closed by the thread that holds it or while it is
    idle in the pool: ``close`` closes the idle ones at once and marks the pool
    closed, and a borrowed one is closed when its borrower gives it back. After
    ``close``, ``borrow`` raises :class:`DatabaseGone` (the database was deleted).
    """

    def __init__(self, path: str, synchronous: str, size: int = READERS_PER_DB) -> None:
        self._path, self._synchronous = path, synchronous
        self._idle: list[sqlite3.Connection] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False
        self._count = 0  # connections open, idle or borrowed

    @property
    def open_count(self) -> int:
        """How many read connections are open (idle or borrowed)."""
        return self._count

    @contextmanager
    def borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection for the duration of the ``with`` block (waits when all are busy).

        :raises DatabaseGone: when the pool was closed (its database deleted).
        """
        with self._slots:
            with self._lock:  # opened under the lock: ``close`` never races an open
                if self._closed:
                    raise DatabaseGone()
                conn = self._idle.pop() if self._idle else self._open()
            try:
                yield conn
            finally:
                with self._lock:
                    keep = not self._closed
                    if keep:
                        self._idle.append(conn)
                    else:
                        self._count -= 1
                if not keep:
                    conn.close()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = connect(self._path, self._synchronous, READER_CACHE_KIB, create=False)
        except sqlite3.OperationalError as exc:
            raise DatabaseGone() from exc
        conn.execute("PRAGMA query_only=ON")
        self._count += 1
        return conn

    def trim(self) -> None:
        """Close the idle readers (the database has not been used for a while)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for conn in idle:
            conn.close()

    def close(self) -> None:
        """Close the pool: idle readers now, borrowed ones as they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for conn in idle:
            conn.close()
