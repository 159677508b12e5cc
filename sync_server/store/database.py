"""One CouchDB database on one SQLite file: documents, revision trees, sequences.

Reads go through per-thread connections; writes through one writer connection
under a lock, each batch in one ``BEGIN IMMEDIATE`` transaction that is durable
before the call returns. Knows nothing of HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import BadRequest, Conflict, CouchError, DatabaseGone, DocumentTooLarge, Forbidden, NotFound, StartupError, Unauthorized
from . import attachments, revtree
from .connection import Readers, connect, create_schema, transaction
from .crypto import Cipher
from .document import RawJSON, assemble, body_of, check_doc_id, check_incoming, check_members, dumps, splice
from .revid import new_revid

# CouchDB's default _revs_limit.
DEFAULT_REVS_LIMIT = 1000
# Seconds between checks for writes made by another process, while a feed waits.
CROSS_PROCESS_POLL = 1.0
# Rows fetched per query while streaming _changes and _all_docs: bounds memory.
PAGE = 500


@dataclass(frozen=True)
class StoreOptions:
    """What the store needs from the settings."""

    max_document_size: int = 8_000_000
    revs_limit: int = DEFAULT_REVS_LIMIT
    synchronous: str = "full"
    # Called with (db name, document with stubs, digest -> data, the revision it replaces or None) for every
    # document written (a deletion carries "_deleted": true), before its revision is hashed; raises CouchError (Forbidden) to refuse it,
    # or returns a replacement document. The store knows no schemas.
    validate: Any = None
    # Encrypts bodies, attachments and _local documents at rest (crypto.py); None: stored in clear.
    cipher: Cipher | None = None
    # Called with a new database's name: the _security it starts with, or None (empty: admins only by default).
    security_for: Any = None
    # Runs the validate_doc_update functions of the database's design documents (sync_server/design):
    # called as (db name, [(ddoc id, rev)], load(id, rev) -> body, new doc, load_old() -> doc or None,
    # security() -> the _security object)
    # for every write of a non-design document, only while the database has design documents.
    validate_design: Any = None
    # Checks a design document before it is written (its views compile...): raises CouchError.
    check_design: Any = None


class DocRow(NamedTuple):
    """A document's row in ``docs``: what a write merges into and a read starts from."""

    winner: str
    deleted: bool  # the winner is deleted
    tree: revtree.Tree


@dataclass
class Change:
    """One row of ``_changes``: the document's latest sequence and its revisions."""

    seq: str
    id: str
    revs: list[str]
    deleted: bool
    doc_json: str | None = None

    def to_json(self) -> str:
        """The row as CouchDB writes it."""
        text = '{"seq":"' + self.seq + '","id":' + json.dumps(self.id, ensure_ascii=False)
        text += ',"changes":[' + ",".join('{"rev":"' + r + '"}' for r in self.revs) + "]"
        if self.deleted:
            text += ',"deleted":true'
        if self.doc_json is not None:
            text += ',"doc":' + self.doc_json
        return text + "}"


class Database:
    """A CouchDB database stored in one SQLite file."""

    def __init__(self, name: str, path: str, options: StoreOptions) -> None:
        self.name, self.path, self.options = name, path, options
        self._writer_conn: sqlite3.Connection | None = None
        self._closed = False
        create_schema(self._writer)
        self._readers = Readers(path, options.synchronous)
        self._write_lock = threading.Lock()
        self._changed = threading.Condition()
        self._listeners: list[Any] = []  # called after each committed write and at close (see on_change)
        self._batch: dict[str, DocRow | None] = {}  # rows of the batch being written, by id (under the write lock)
        self._design_revs: list[tuple[str, str]] | None = None  # live design documents (under the write lock)
        with transaction(self._writer):
            self._writer.execute("INSERT OR IGNORE INTO meta VALUES ('instance', ?)", (secrets.token_hex(4),))
            self._writer.execute("INSERT OR IGNORE INTO meta VALUES ('revs_limit', ?)", (str(options.revs_limit),))
        self._cipher = options.cipher
        self._rev_key = options.cipher.derive("revision ids") if options.cipher is not None else None
        self._check_encryption()
        self._load_counters()

    # -- encryption at rest ----------------------------------------------------

    def _check_encryption(self) -> None:
        """Refuse a file encrypted under another key (or none); encrypt a clear one in place.

        :raises StartupError: when the file is encrypted and this store has no or another key.
        """
        marker = self._meta("encryption")
        if self._cipher is None:
            if marker is not None:
                raise StartupError(f"database {self.name} is encrypted: set storage.encryption_key to open it")
            return
        if marker == self._cipher.key_id:
            return
        if marker is not None:
            raise StartupError(f"database {self.name} is encrypted under another key")
        self._seal_existing()

    def _seal_existing(self) -> None:
        """Encrypt every value of a database written in clear, then rewrite the file so no clear page is left."""
        conn, cipher = self._writer, self._cipher
        assert cipher is not None
        with transaction(conn):
            sealed = attachments.seal_all(conn, cipher)
            after = ("", "")
            while True:
                rows = conn.execute("SELECT doc_id, rev, body FROM revs WHERE (doc_id, rev) > (?, ?) "
                                    f"ORDER BY doc_id, rev LIMIT {PAGE}", after).fetchall()
                if not rows:
                    break
                conn.executemany("UPDATE revs SET body = ? WHERE doc_id = ? AND rev = ?",
                                 [(self._seal(b, d, r), d, r) for d, r, b in rows])
                sealed, after = sealed + len(rows), rows[-1][:2]
            for local_id, body in conn.execute("SELECT id, body FROM local_docs").fetchall():
                conn.execute("UPDATE local_docs SET body = ? WHERE id = ?", (self._seal(body, "_local", local_id), local_id))
                sealed += 1
            # View rows written in clear are dropped, not sealed: the next query rebuilds them sealed.
            for table in ("view_rows", "view_counts", "view_state"):
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                    sealed += 1
                    conn.execute(f"DROP TABLE {table}")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('encryption', ?)", (cipher.key_id,))
        if sealed:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def cipher(self) -> Cipher | None:
        """The data key's cipher when the store is encrypted (secondary indexes seal their rows with it)."""
        return self._cipher

    # A stored value is bound to where it lives: (doc id, rev) for a body, ("_local", id) for a _local doc.
    def _aad(self, where: tuple[str, ...]) -> bytes:
        return "\0".join((self.name, *where)).encode()

    def _seal(self, text: str, *where: str) -> str | bytes:
        return text if self._cipher is None else self._cipher.seal_text(text, self._aad(where))

    def _open(self, stored: str | bytes, *where: str) -> str:
        if self._cipher is None:
            return stored if isinstance(stored, str) else stored.decode()
        return self._cipher.open_text(stored if isinstance(stored, bytes) else stored.encode(), self._aad(where))

    # -- bookkeeping ---------------------------------------------------------

    def _meta(self, key: str, conn: sqlite3.Connection | None = None) -> str | None:
        row = (conn or self._writer).execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _load_counters(self) -> None:
        """Read the sequence, counts and revs limit into the writer's state.

        Called at the start of every write transaction, so another process that
        wrote to the same file (``sync-server sync --once`` beside ``serve``)
        never makes this one reuse a sequence.
        """
        conn = self._writer
        self.instance = self._meta("instance") or "0"
        self._seq = conn.execute("SELECT coalesce(max(seq), 0) FROM docs").fetchone()[0]
        counts = self._meta("counts")
        if counts is None:
            live = conn.execute("SELECT count(*) FROM docs WHERE deleted = 0").fetchone()[0]
            dead = conn.execute("SELECT count(*) FROM docs WHERE deleted = 1").fetchone()[0]
            counts = f"{live} {dead}"
        self._docs, self._dels = (int(n) for n in counts.split())
        self.revs_limit = int(self._meta("revs_limit") or DEFAULT_REVS_LIMIT)
        self._design_revs = None

    def _design_docs(self, conn: sqlite3.Connection) -> list[tuple[str, str]]:
        """(id, winning rev) of the live design documents, read once per write batch (one index seek)."""
        if self._design_revs is None:
            self._design_revs = [tuple(r) for r in conn.execute(
                "SELECT id, winner FROM docs WHERE id >= '_design/' AND id < '_design0' AND deleted = 0 ORDER BY id")]
        return self._design_revs

    def _save_counters(self) -> None:
        self._writer.execute("INSERT OR REPLACE INTO meta VALUES ('counts', ?)", (f"{self._docs} {self._dels}",))

    @property
    def update_seq(self) -> int:
        """The newest sequence, as committed (by this process or another)."""
        return self._one("SELECT coalesce(max(seq), 0) FROM docs")[0]

    @property
    def doc_count(self) -> int:
        """Live documents."""
        return self._counts()[0]

    @property
    def del_count(self) -> int:
        """Deleted documents."""
        return self._counts()[1]

    def _counts(self) -> tuple[int, int]:
        row = self._one("SELECT value FROM meta WHERE key = 'counts'")
        counts = row[0] if row else None
        if counts is None:
            return self._docs, self._dels
        live, dead = counts.split()
        return int(live), int(dead)

    def seq_string(self, seq: int) -> str:
        """An opaque sequence string, as CouchDB 3 sends them."""
        return f"{seq}-{self.instance}"

    def parse_since(self, since: object) -> int:
        """Read a sequence a client sent back: ours, a bare number, or ``now``.

        A sequence from another instance of this database (deleted and created
        again) starts over from 0, so nothing is skipped.
        :raises BadRequest: for anything else.
        """
        if since is None or since == 0:
            return 0
        if since == "now":
            return self.update_seq
        if isinstance(since, int) and not isinstance(since, bool) and since >= 0:
            return since
        if isinstance(since, str):
            number, _, token = since.partition("-")
            if number.isdigit():
                return int(number) if not token or token == self.instance else 0
        raise BadRequest(f"Malformed sequence supplied in 'since' parameter: {str(since)[:80]}")

    @property
    def _writer(self) -> sqlite3.Connection:
        """The one write connection, opened again after ``trim`` closed it.

        Used only under the write lock (or while the object is being built).
        :raises DatabaseGone: after ``close`` (the database was deleted).
        """
        if self._closed:
            raise DatabaseGone()
        if self._writer_conn is None:
            self._writer_conn = connect(self.path, self.options.synchronous)
        return self._writer_conn

    def trim(self) -> None:
        """Close the idle read connections and the writer (a hub has thousands of databases).

        Both reopen on the next use; a writer that is busy is left alone.
        """
        self._readers.trim()
        if self._write_lock.acquire(blocking=False):
            try:
                if self._writer_conn is not None:
                    self._writer_conn.close()
                    self._writer_conn = None
            finally:
                self._write_lock.release()

    def close(self) -> None:
        """Close every connection; requests still using this object get :class:`DatabaseGone`.

        The writer is closed under the write lock, so a write in progress
        finishes first; feeds waiting for a change wake up and end.
        """
        self._readers.close()
        with self._write_lock:
            self._closed = True
            if self._writer_conn is not None:
                self._writer_conn.close()
                self._writer_conn = None
        self._notify()

    @property
    def closed(self) -> bool:
        """Whether the database was closed (deleted, or the server stopped)."""
        return self._closed

    @contextlib.contextmanager
    def index_writer(self) -> Iterator[sqlite3.Connection]:
        """The writer connection, in one durable transaction under the write lock, for secondary
        indexes (view rows, store/viewindex.py); keep the work inside short, documents wait for it."""
        with self._write_lock, transaction(self._writer) as conn:
            yield conn

    def reader(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A read connection for the ``with`` block (secondary indexes read through it)."""
        return self._readers.borrow()

    def _one(self, sql: str, args: tuple | list = ()) -> Any:
        """One row of a read, on a borrowed connection."""
        with self._readers.borrow() as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple | list = ()) -> list[Any]:
        """Every row of a read, on a borrowed connection."""
        with self._readers.borrow() as conn:
            return conn.execute(sql, args).fetchall()

    # -- database-level ------------------------------------------------------

    def info(self) -> dict:
        """``GET /{db}``."""
        # active: the pages in use (CouchDB: the live data); file: the bytes on disk, write-ahead log included
        active = self._one("SELECT (page_count - freelist_count) * page_size FROM pragma_page_count(), "
                           "pragma_freelist_count(), pragma_page_size()")[0]
        file = sum(_file_size(p) for p in (str(self.path), f"{self.path}-wal"))
        return {
            "db_name": self.name, "update_seq": self.seq_string(self.update_seq),
            "doc_count": self.doc_count, "doc_del_count": self.del_count,
            "purge_seq": self.seq_string(0), "instance_start_time": "0",
            "compact_running": False, "disk_format_version": 8,
            "sizes": {"file": max(file, active), "external": active, "active": active},
            "props": {}, "cluster": {"q": 1, "n": 1, "w": 1, "r": 1},
        }

    def get_security(self) -> dict:
        """The ``_security`` object ({} when never set)."""
        row = self._one("SELECT value FROM meta WHERE key = 'security'")
        return json.loads(row[0]) if row else {}

    def put_security(self, security: dict) -> None:
        """Replace the ``_security`` object."""
        with self._write_lock, transaction(self._writer):
            self._writer.execute("INSERT OR REPLACE INTO meta VALUES ('security', ?)", (dumps(security),))

    def set_revs_limit(self, limit: int) -> None:
        """Set ``_revs_limit``; it applies to later writes and compaction."""
        with self._write_lock, transaction(self._writer):
            self._writer.execute("INSERT OR REPLACE INTO meta VALUES ('revs_limit', ?)", (str(limit),))
        self.revs_limit = limit

    # -- reading documents ---------------------------------------------------

    def _row(self, doc_id: str, conn: sqlite3.Connection) -> DocRow | None:
        row = conn.execute("SELECT winner, deleted, tree FROM docs WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        winner, deleted, tree = row
        return DocRow(winner, bool(deleted), json.loads(tree))

    def _body(self, doc_id: str, rev: str, conn: sqlite3.Connection) -> dict | None:
        row = conn.execute("SELECT body FROM revs WHERE doc_id = ? AND rev = ?", (doc_id, rev)).fetchone()
        return json.loads(self._open(row[0], doc_id, rev)) if row else None

    def get(self, doc_id: str, rev: str | None = None, *, revs: bool = False, revs_info: bool = False,
            conflicts: bool = False, deleted_conflicts: bool = False, attachments_: bool = False,
            atts_since: list[str] | None = None, latest: bool = False, local_seq: bool = False) -> dict:
        """One revision of a document (the winner by default), CouchDB-shaped.

        :raises NotFound: reason ``missing``, or ``deleted`` for a deleted winner.
        """
        with self._readers.borrow() as conn:
            row = self._row(doc_id, conn)
            if row is None:
                raise NotFound("missing")
            winner, deleted, tree = row
            if rev is None:
                if deleted:
                    raise NotFound("deleted")
                rev = winner
            elif revtree.parse_rev(rev) and rev not in tree:
                raise NotFound("missing")
            if latest and not revtree.is_leaf(tree, rev):
                rev = revtree.descendant_leaves(tree, rev)[0]
            doc = self._assemble(conn, doc_id, rev, tree, attachments_, atts_since)
            if revs:
                doc["_revisions"] = revtree.revisions(tree, rev, self.revs_limit)
            if revs_info:
                doc["_revs_info"] = self._revs_info(conn, doc_id, tree, rev)
            self._add_conflicts(doc, tree, rev, conflicts, deleted_conflicts)
            if local_seq:
                # an integer, as CouchDB's (the sequence of its shard, here of the one database)
                doc["_local_seq"] = conn.execute("SELECT seq FROM docs WHERE id = ?", (doc_id,)).fetchone()[0]
            return doc

    def _assemble(self, conn: sqlite3.Connection, doc_id: str, rev: str, tree: revtree.Tree,
                  with_atts: bool, atts_since: list[str] | None) -> dict:
        body = self._body(doc_id, rev, conn)
        if body is None:
            raise NotFound("missing")
        if "_attachments" in body:
            since = 0 if with_atts else self._atts_since_pos(tree, rev, atts_since)
            body["_attachments"] = attachments.expand(conn, body["_attachments"], since, self._cipher)
        return assemble(doc_id, rev, revtree.is_deleted(tree, rev), body)

    @staticmethod
    def _atts_since_pos(tree: revtree.Tree, rev: str, atts_since: list[str] | None) -> int | None:
        """The highest generation among ``atts_since`` that is an ancestor of ``rev``."""
        if not atts_since:
            return None
        ancestors = set(revtree.path(tree, rev))
        known = [revtree.pos(r) for r in atts_since if r in ancestors]
        return max(known) if known else 0

    def _revs_info(self, conn: sqlite3.Connection, doc_id: str, tree: revtree.Tree, rev: str) -> list[dict]:
        chain = revtree.path(tree, rev)
        marks = ",".join("?" * len(chain))
        stored = {r for (r,) in conn.execute(f"SELECT rev FROM revs WHERE doc_id = ? AND rev IN ({marks})",
                                             (doc_id, *chain))}
        return [{"rev": r, "status": ("deleted" if revtree.is_deleted(tree, r) else "available") if r in stored else "missing"}
                for r in chain]

    @staticmethod
    def _add_conflicts(doc: dict, tree: revtree.Tree, rev: str, conflicts: bool, deleted_conflicts: bool) -> None:
        others = [leaf for leaf in revtree.leaves(tree) if leaf != rev]
        live = [leaf for leaf in others if not revtree.is_deleted(tree, leaf)]
        dead = [leaf for leaf in others if revtree.is_deleted(tree, leaf)]
        if conflicts and live:
            doc["_conflicts"] = live
        if deleted_conflicts and dead:
            doc["_deleted_conflicts"] = dead

    def open_revs(self, doc_id: str, which: list[str] | str, *, revs: bool = False, attachments_: bool = False,
                  atts_since: list[str] | None = None, latest: bool = False, raw: bool = False) -> list[dict]:
        """``open_revs``: each asked revision as ``{"ok": doc}`` or ``{"missing": rev}``.

        With ``raw``, a revision without attachments comes as its JSON text (:class:`RawJSON`),
        spliced from the stored body without parsing it: replication's ``_bulk_get`` sends it on.
        :raises NotFound: when ``all`` leaves are asked of a document that does not exist.
        """
        with self._readers.borrow() as conn:
            row = self._row(doc_id, conn)
            for rev in which if which != "all" else []:
                revtree.parse_rev(rev)
            if which == "all":
                if row is None:
                    raise NotFound("missing")
                wanted = revtree.leaves(row.tree)
            else:
                wanted = list(dict.fromkeys(which))
            results, seen = [], set()
            for rev in wanted:
                for found, result in self._open_rev(conn, doc_id, row, rev, revs, attachments_, atts_since, latest, raw):
                    if found is None or found not in seen:  # with latest, revisions of one branch give its leaf once
                        seen.add(found)
                        results.append((found, result))
            # CouchDB's order: found revisions by (generation, hash), then the missing ones as asked.
            ok = sorted(((f, r) for f, r in results if f is not None), key=lambda fr: (revtree.pos(fr[0]), fr[0].split("-", 1)[1]))
            return [r for _, r in ok] + [r for f, r in results if f is None]

    def _open_rev(self, conn: sqlite3.Connection, doc_id: str, row: DocRow | None, rev: str, revs: bool, with_atts: bool,
                  atts_since: list[str] | None, latest: bool, raw: bool = False) -> list[tuple[str | None, dict]]:
        """(the revision found or None, its ``open_revs`` entry) for ``rev`` (its leaves, with ``latest``)."""
        if row is None or rev not in row.tree:
            return [(None, {"missing": rev})]
        tree = row.tree
        targets = revtree.descendant_leaves(tree, rev) if latest else [rev]
        out: list[tuple[str | None, dict]] = []
        for target in targets:
            text = self._raw_doc(conn, doc_id, target, tree, revs) if raw and not with_atts else None
            if text is not None:
                out.append((target, {"ok": text}))
                continue
            try:
                doc = self._assemble(conn, doc_id, target, tree, with_atts, atts_since)
            except NotFound:
                out.append((None, {"missing": target}))
                continue
            if revs:
                doc["_revisions"] = revtree.revisions(tree, target, self.revs_limit)
            out.append((target, {"ok": doc}))
        return out

    def _raw_doc(self, conn: sqlite3.Connection, doc_id: str, rev: str, tree: revtree.Tree, revs: bool) -> RawJSON | None:
        """A revision's JSON text spliced from its stored body, or None when it has attachments (their
        stubs are made from the attachment rows) or its body is gone: then it is assembled."""
        row = conn.execute("SELECT body FROM revs WHERE doc_id = ? AND rev = ?", (doc_id, rev)).fetchone()
        if row is None:
            return None
        body = self._open(row[0], doc_id, rev)
        if '"_attachments"' in body:
            return None
        text = splice(doc_id, rev, revtree.is_deleted(tree, rev), body)
        if revs:
            text = text[:-1] + ',"_revisions":' + dumps(revtree.revisions(tree, rev, self.revs_limit)) + "}"
        return RawJSON(text)

    def revs_diff(self, asked: dict[str, list[str]]) -> dict[str, dict]:
        """``_revs_diff``: for each document, the revisions this database lacks."""
        with self._readers.borrow() as conn:
            result: dict[str, dict] = {}
            for doc_id, revs in asked.items():
                if not isinstance(revs, list):
                    raise BadRequest(f"_revs_diff: revisions of {doc_id!r} must be a list")
                for rev in revs:
                    revtree.parse_rev(rev)
                row = conn.execute("SELECT tree FROM docs WHERE id = ?", (doc_id,)).fetchone()
                tree = json.loads(row[0]) if row else {}
                missing, ancestors = revtree.missing_revs(tree, revs)
                if missing:
                    result[doc_id] = {"missing": missing}
                    if ancestors:
                        result[doc_id]["possible_ancestors"] = ancestors
            return result

    def attachment(self, doc_id: str, name: str, rev: str | None = None) -> tuple[dict, bytes]:
        """One attachment's stub and data.

        :raises NotFound: when the document, revision or attachment is missing.
        """
        doc = self.get(doc_id, rev)
        stub = doc.get("_attachments", {}).get(name)
        if stub is None:
            raise NotFound("Document is missing attachment")
        with self._readers.borrow() as conn:
            return stub, attachments.blob(conn, stub["digest"], self._cipher)

    # -- writing documents ---------------------------------------------------

    def bulk_docs(self, docs: list[Any], new_edits: bool = True,
                  follows: dict[str, bytes] | None = None, strict: bool = False) -> list[dict]:
        """Write many documents in one durable transaction.

        A document that fails becomes ``{"id", "error", "reason"}`` in the result
        and the rest are written. With ``new_edits=False`` only failures are
        reported, as CouchDB does.

        :param strict: as CouchDB's HTTP API: only a conflict or a refusal (403/401,
            or anything the ``validate`` hook raises) is a row; any other error (a
            malformed document, a missing stub, one too large) is raised and
            nothing is written.
        """
        results: list[dict] = []
        with self._write_lock:
            try:
                with transaction(self._writer):
                    self._load_counters()
                    self._batch = self._prefetch(docs)
                    for doc in docs:
                        result = self._write_one(doc, new_edits, follows, strict)
                        if result is not None:
                            results.append(result)
                    self._save_counters()
            except BaseException:
                if not self._closed:
                    self._load_counters()
                raise
            finally:
                self._batch = {}
        self._notify()
        return results

    def _prefetch(self, docs: list[Any]) -> dict[str, DocRow | None]:
        """The current rows of a batch's documents, read in a few queries instead of one each."""
        ids = list({d["_id"] for d in docs if isinstance(d, dict) and isinstance(d.get("_id"), str)})
        found: dict[str, DocRow | None] = dict.fromkeys(ids)
        for start in range(0, len(ids), PAGE):
            chunk = ids[start:start + PAGE]
            sql = f"SELECT id, winner, deleted, tree FROM docs WHERE id IN ({','.join('?' * len(chunk))})"
            for doc_id, winner, deleted, tree in self._writer.execute(sql, chunk):
                found[doc_id] = DocRow(winner, bool(deleted), json.loads(tree))
        return found

    def _write_one(self, doc: Any, new_edits: bool, follows: dict[str, bytes] | None,
                   strict: bool = False) -> dict | None:
        """Write one document; per-document errors become result rows.

        Every check happens before the document's rows are written (``_store`` is
        last and raises only SQLite errors, which abort the whole batch), so a
        refused document leaves nothing behind but, at most, attachment data no
        revision references, which compaction removes. No savepoint is needed.
        """
        doc_id = doc.get("_id") if isinstance(doc, dict) else None
        try:
            rev = self._write(self._writer, doc, new_edits, follows)
        except (CouchError, RecursionError) as exc:
            err = exc if isinstance(exc, CouchError) else BadRequest("Document nests too deeply")
            if strict and not (isinstance(err, (Conflict, Forbidden, Unauthorized)) or getattr(err, "refusal", False)):
                raise err from None
            row = {"id": doc_id if isinstance(doc_id, str) else None}
            if not new_edits and err.status in (401, 403) and isinstance(doc, dict) and isinstance(doc.get("_rev"), str):
                row["rev"] = doc["_rev"]  # CouchDB names the revision a validation refused in a replicated write
            return {**row, **err.to_json()}
        if new_edits:
            return {"ok": True, "id": doc["_id"], "rev": rev}
        return None

    def _write(self, conn: sqlite3.Connection, doc: Any, new_edits: bool,
               follows: dict[str, bytes] | None) -> str:
        """Merge one document into its tree and store the new leaf; returns the leaf's rev."""
        doc_id = check_doc_id(check_incoming(doc, new_edits).get("_id"))
        row = self._batch[doc_id] if doc_id in self._batch else self._row(doc_id, conn)
        tree: revtree.Tree = row.tree if row else {}
        deleted = bool(doc.get("_deleted"))
        if new_edits:
            chain, parent_atts = self._new_edit_path(conn, doc_id, doc, row, tree, deleted)
        else:
            chain, parent_atts = self._replicated_path(conn, doc_id, doc, tree)
            if chain[0] in tree:
                return chain[0]  # already known: nothing to do, no new sequence
        body = body_of(doc)
        if "_attachments" in doc:
            revpos = revtree.pos(chain[0]) if new_edits else None
            body["_attachments"] = attachments.prepare(conn, doc_id, doc["_attachments"], parent_atts, revpos, follows,
                                                       self._cipher)
        if self.options.validate is not None:
            seen = {"_id": doc_id, **body, **({"_deleted": True} if deleted else {})}
            try:
                changed = self.options.validate(self.name, seen, lambda d: attachments.blob(conn, d, self._cipher),
                                                self._replaced(conn, doc_id, chain, row, tree))
            except CouchError as exc:
                exc.refusal = True  # type: ignore[attr-defined]  # a policy's refusal is the document's, never the request's
                raise
            if changed is not None:  # the policy rewrote the body (a _users password becomes its hash)
                body = {k: v for k, v in changed.items() if k not in ("_id", "_deleted")}
        if self.options.validate_design is not None and not doc_id.startswith("_design/"):
            self._validate_design(conn, doc_id, doc, body, deleted, chain, tree, new_edits)
        if self.options.check_design is not None and doc_id.startswith("_design/") and not deleted:
            try:
                self.options.check_design(body)
            except CouchError as exc:
                exc.refusal = True  # type: ignore[attr-defined]  # in _bulk_docs a row, as CouchDB answers
                raise
        if new_edits:
            chain[0] = self._hash_rev(chain, body, deleted)
            if chain[0] in tree:
                return chain[0]  # the same edit again: CouchDB answers with the same rev
        body_json = dumps(body)
        if len(body_json.encode()) > self.options.max_document_size:
            raise DocumentTooLarge()
        revtree.merge_path(tree, chain, deleted)
        self._store(conn, doc_id, row, tree, chain[0], body_json)
        return chain[0]

    def _replaced(self, conn: sqlite3.Connection, doc_id: str, chain: list[str], row: DocRow | None,
                  tree: revtree.Tree) -> dict | None:
        """The revision a write replaces, as CouchDB's ``validate_doc_update`` sees it (``oldDoc``).

        The nearest ancestor on the new revision's path whose body is kept (CouchDB's
        ``make_first_doc_on_disk``). Where CouchDB would pass null although the document
        exists (a replicated revision whose path shares nothing with this tree), the
        current winner is given instead: such a revision would otherwise add a branch,
        and win, without the rules seeing whose record it is (issue #15).
        """
        for rev in chain[1:]:
            if rev in tree:
                body = self._body(doc_id, rev, conn)
                if body is not None:
                    return {"_id": doc_id, "_rev": rev, **body, **({"_deleted": True} if revtree.is_deleted(tree, rev) else {})}
        if row is None:
            return None
        body = self._body(doc_id, row.winner, conn) or {}
        return {"_id": doc_id, "_rev": row.winner, **body, **({"_deleted": True} if row.deleted else {})}

    def _new_edit_path(self, conn: sqlite3.Connection, doc_id: str, doc: dict, row: DocRow | None,
                       tree: revtree.Tree, deleted: bool) -> tuple[list[str], list[dict]]:
        """The parent chain of an interactive edit (new rev hash filled in later)."""
        rev = doc.get("_rev")
        if rev is None:
            if row is not None and not row.deleted:
                raise Conflict()
            parent = row.winner if row is not None else None  # a deleted winner is extended, as in CouchDB
        else:
            revtree.parse_rev(rev)
            if not revtree.is_leaf(tree, rev):
                raise Conflict()
            parent = rev
        if parent is None:
            return ["1-"], []
        parent_body = self._body(doc_id, parent, conn) or {}
        return [f"{revtree.pos(parent) + 1}-", *revtree.path(tree, parent)], [parent_body.get("_attachments", {})]

    def _replicated_path(self, conn: sqlite3.Connection, doc_id: str, doc: dict,
                         tree: revtree.Tree) -> tuple[list[str], list[dict]]:
        """The path of a replicated revision (``new_edits=false``) and the attachments it may reference."""
        revisions = doc.get("_revisions")
        rev = doc.get("_rev") if revisions is None else f"{revisions['start']}-{(revisions['ids'] or [''])[0]}"
        revtree.parse_rev(rev)
        chain = revtree.path_from_revisions(str(rev), doc.get("_revisions"))
        if chain[0] in tree or "_attachments" not in doc:
            return chain, []
        known = [r for r in chain[1:] if r in tree] + revtree.leaves(tree)
        marks = ",".join("?" * len(known))
        rows = conn.execute(f"SELECT rev, body FROM revs WHERE doc_id = ? AND rev IN ({marks})", (doc_id, *known))
        bodies = {r: json.loads(self._open(b, doc_id, r)).get("_attachments", {}) for r, b in rows}
        return chain, [bodies[r] for r in known if r in bodies]

    def _validate_design(self, conn: sqlite3.Connection, doc_id: str, doc: dict, body: dict, deleted: bool,
                         chain: list[str], tree: revtree.Tree, new_edits: bool) -> None:
        """Hand the write to the design documents' validate_doc_update functions, as CouchDB does.

        newDoc carries the ``_rev`` the client sent (the new one when replicated) and
        ``_revisions``; oldDoc is the revision being edited (null for a new document,
        also one written over a deleted one without ``_rev``), or for a replicated
        revision the nearest ancestor whose body is stored (couch_db.erl).
        """
        ddocs = self._design_docs(conn)
        if not ddocs:
            return
        new_doc: dict[str, Any] = {"_id": doc_id}
        if new_edits:
            known = chain[1:] if isinstance(doc.get("_rev"), str) else []
        else:
            known = chain
        if known:
            new_doc["_rev"] = known[0]
            new_doc["_revisions"] = {"start": revtree.pos(known[0]), "ids": [r.split("-", 1)[1] for r in known]}
        new_doc.update(body)
        if deleted:
            new_doc["_deleted"] = True
        if new_edits:
            old_revs = [doc["_rev"]] if isinstance(doc.get("_rev"), str) else []
        else:
            old_revs = [r for r in chain[1:] if r in tree]

        def load_old() -> dict | None:
            for rev in old_revs:
                old = self._body(doc_id, rev, conn)
                if old is not None:
                    return {**assemble(doc_id, rev, revtree.is_deleted(tree, rev), old),
                            "_revisions": revtree.revisions(tree, rev)}
            return None

        self.options.validate_design(self.name, ddocs, lambda i, r: self._body(i, r, conn), new_doc, load_old,
                                     self.get_security)

    def _hash_rev(self, chain: list[str], body: dict, deleted: bool) -> str:
        generation = int(chain[0].rstrip("-"))
        old_pos, old_hash = (revtree.pos(chain[1]), chain[1].split("-", 1)[1]) if len(chain) > 1 else (0, None)
        user_body = {k: v for k, v in body.items() if k != "_attachments"}
        atts = attachments.for_revid(body.get("_attachments", {}))
        return f"{generation}-{new_revid(deleted, old_pos, old_hash, user_body, atts, self._rev_key)}"

    def _store(self, conn: sqlite3.Connection, doc_id: str, row: DocRow | None, tree: revtree.Tree,
               leaf: str, body_json: str) -> None:
        """Write the new leaf, stem the tree, and move the document to a new sequence."""
        conn.execute("INSERT OR REPLACE INTO revs (doc_id, rev, body) VALUES (?, ?, ?)",
                     (doc_id, leaf, self._seal(body_json, doc_id, leaf)))
        removed = revtree.stem(tree, self.revs_limit)
        conn.executemany("DELETE FROM revs WHERE doc_id = ? AND rev = ?", [(doc_id, r) for r in removed])
        winner = revtree.winning_rev(tree)
        deleted = revtree.is_deleted(tree, winner)
        self._seq += 1
        conn.execute("INSERT OR REPLACE INTO docs (id, seq, winner, deleted, tree) VALUES (?, ?, ?, ?, ?)",
                     (doc_id, self._seq, winner, int(deleted), dumps(tree)))
        if doc_id.startswith("_design/"):
            self._design_revs = None  # read again, this write included
        if doc_id in self._batch:
            self._batch[doc_id] = DocRow(winner, deleted, tree)
        was_deleted = None if row is None else row.deleted
        if was_deleted is not deleted:
            self._docs += (not deleted) - (was_deleted is False)
            self._dels += deleted - (was_deleted is True)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
        for listener in list(self._listeners):
            listener(self)

    def on_change(self, listener: Any) -> None:
        """Call ``listener(db)`` after every committed write of this process, and when the database closes.

        For waiters that hold no thread (the server's feed waiting, sync_server/api/serving.py); it
        runs on the writing thread, so it must only hand the news on (e.g. call_soon_threadsafe).
        """
        self._listeners.append(listener)

    def wait_for_change(self, seq: int, timeout: float) -> bool:
        """Block until the database passes ``seq`` or ``timeout`` seconds pass.

        Writes of this process wake waiters at once; another process's writes
        are seen within ``CROSS_PROCESS_POLL`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            try:
                while self.update_seq <= seq:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._changed.wait(min(remaining, CROSS_PROCESS_POLL))
            except DatabaseGone:
                pass  # deleted: the caller's next read says so
        return True

    # -- feeds ---------------------------------------------------------------

    def changes(self, since: int = 0, *, until: int | None = None, limit: int | None = None, descending: bool = False,
                all_leaves: bool = False, include_docs: bool = False, doc_ids: Iterable[str] | None = None,
                predicate: Any = None, doc_options: dict[str, Any] | None = None) -> Iterator[Change]:
        """Each changed document once, at its latest sequence, in sequence order.

        Reads in pages and stops at the sequence current when it started, so
        memory stays flat and a busy writer cannot make it run forever.
        ``predicate`` (a compiled ``_selector``) sees the winning document.
        :param doc_options: options of :meth:`get` for included documents
            (``conflicts``, ``attachments_``); each such document costs one more read.
        """
        end, last, count = self.update_seq if until is None else until, since, 0
        ids = list(doc_ids) if doc_ids is not None else None
        while limit is None or count < limit:
            rows = self._change_page(last if not descending else None, end, descending, ids, include_docs or predicate)
            if not rows:
                return
            for doc_id, seq, winner, deleted, tree_json, body in rows:
                end = seq - 1 if descending else end
                last = seq
                change = self._change(doc_id, seq, winner, deleted, tree_json, body, all_leaves, include_docs, predicate)
                if change is not None and include_docs and doc_options:
                    change.doc_json = dumps(self.get(doc_id, winner, **doc_options))
                if change is not None:
                    count += 1
                    yield change
                    if limit is not None and count >= limit:
                        return

    def _change_page(self, after: int | None, end: int, descending: bool, ids: list[str] | None,
                     with_body: Any) -> list[tuple]:
        cols = "d.id, d.seq, d.winner, d.deleted, d.tree, " + ("r.body" if with_body else "NULL")
        join = " JOIN revs r ON r.doc_id = d.id AND r.rev = d.winner" if with_body else ""
        where, args = ["d.seq <= ?"], list[Any]([end])
        if after is not None:
            where.append("d.seq > ?")
            args.append(after)
        if ids is not None:
            where.append(f"d.id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        order = "DESC" if descending else "ASC"
        sql = f"SELECT {cols} FROM docs d{join} WHERE {' AND '.join(where)} ORDER BY d.seq {order} LIMIT {PAGE}"
        return self._all(sql, args)

    def _change(self, doc_id: str, seq: int, winner: str, deleted: int, tree_json: str, body: str | None,
                all_leaves: bool, include_docs: bool, predicate: Any) -> Change | None:
        doc_json = None if body is None else splice(doc_id, winner, bool(deleted), self._open(body, doc_id, winner))
        if predicate is not None and not predicate(json.loads(doc_json or "{}")):
            return None
        revs = revtree.leaves(json.loads(tree_json)) if all_leaves else [winner]
        return Change(self.seq_string(seq), doc_id, revs, bool(deleted), doc_json if include_docs else None)

    def all_docs(self, *, start: str | None = None, end: str | None = None, inclusive_end: bool = True,
                 descending: bool = False, limit: int | None = None, skip: int = 0,
                 include_docs: bool = False, doc_options: dict[str, Any] | None = None) -> Iterator[dict]:
        """Live documents by id (byte order, as CouchDB's raw collation), in pages.

        :param doc_options: as for :meth:`changes`.
        """
        count, skipped, after = 0, 0, None
        while limit is None or count < limit:
            rows = self._ids_page(start, end, inclusive_end, descending, after, include_docs)
            if not rows:
                return
            for doc_id, winner, body in rows:
                after = doc_id
                if skipped < skip:
                    skipped += 1
                    continue
                count += 1
                yield self._all_docs_row(doc_id, winner, False, body, include_docs, doc_options)
                if limit is not None and count >= limit:
                    return

    def _ids_page(self, start: str | None, end: str | None, inclusive_end: bool, descending: bool,
                  after: str | None, include_docs: bool) -> list[tuple]:
        lo, hi = (">", "<") if not descending else ("<", ">")
        where, args = ["d.deleted = 0"], []
        if start is not None:
            where.append(f"d.id {lo}= ?")
            args.append(start)
        if end is not None:
            where.append(f"d.id {hi}{'=' if inclusive_end else ''} ?")
            args.append(end)
        if after is not None:
            where.append(f"d.id {lo} ?")
            args.append(after)
        cols = "d.id, d.winner, " + ("r.body" if include_docs else "NULL")
        join = " JOIN revs r ON r.doc_id = d.id AND r.rev = d.winner" if include_docs else ""
        order = "DESC" if descending else "ASC"
        sql = f"SELECT {cols} FROM docs d{join} WHERE {' AND '.join(where)} ORDER BY d.id {order} LIMIT {PAGE}"
        return self._all(sql, args)

    def _all_docs_row(self, doc_id: str, winner: str, deleted: bool, body: str | None, include_docs: bool,
                      doc_options: dict[str, Any] | None = None) -> dict:
        value: dict[str, Any] = {"rev": winner}
        if deleted:
            value["deleted"] = True
        row: dict[str, Any] = {"id": doc_id, "key": doc_id, "value": value}
        if include_docs and (deleted or body is None):
            row["doc"] = None
        elif include_docs and doc_options:
            row["doc"] = self.get(doc_id, winner, **doc_options)
        elif include_docs and body is not None:
            row["doc"] = json.loads(splice(doc_id, winner, False, self._open(body, doc_id, winner)))
        return row

    def all_docs_keys(self, keys: list[Any], include_docs: bool = False, *, descending: bool = False,
                      skip: int = 0, limit: int | None = None,
                      doc_options: dict[str, Any] | None = None) -> Iterator[dict]:
        """``_all_docs`` with ``keys``: one row per key, in the order asked (reversed when descending).

        ``skip`` and ``limit`` count rows, missing keys included, as CouchDB does.
        """
        keys = list(reversed(keys)) if descending else keys
        for key in keys[skip:None if limit is None else skip + limit]:
            row = self._one("SELECT d.winner, d.deleted, r.body FROM docs d JOIN revs r "
                            "ON r.doc_id = d.id AND r.rev = d.winner WHERE d.id = ?",
                            (key,)) if isinstance(key, str) else None
            if row is None:
                yield {"key": key, "error": "not_found"}
            else:
                winner, deleted, body = row
                yield self._all_docs_row(key, winner, bool(deleted), body, include_docs, doc_options)

    def count_since(self, seq: int) -> int:
        """How many documents changed after ``seq`` (what waits to be pushed)."""
        return self._one("SELECT count(*) FROM docs WHERE seq > ?", (seq,))[0]

    def count_before(self, start: str | None, descending: bool) -> int:
        """How many live ids sort before ``start`` (the ``offset`` of ``_all_docs``)."""
        if start is None:
            return 0
        op = ">" if descending else "<"
        return self._one(f"SELECT count(*) FROM docs WHERE deleted = 0 AND id {op} ?", (start,))[0]

    # -- _local documents ----------------------------------------------------

    def get_local(self, local_id: str) -> dict:
        """A ``_local`` document (never replicated, no sequence).

        :raises NotFound: when it does not exist.
        """
        row = self._one("SELECT rev, body FROM local_docs WHERE id = ?", (local_id,))
        if row is None:
            raise NotFound("missing")
        number, body = row
        return {"_id": "_local/" + local_id, "_rev": f"0-{number}", **json.loads(self._open(body, "_local", local_id))}

    def local_docs(self, *, keys: list[Any] | None = None, start: str | None = None, end: str | None = None,
                   inclusive_end: bool = True, descending: bool = False, limit: int | None = None, skip: int = 0,
                   include_docs: bool = False) -> Iterator[dict]:
        """``_local_docs`` rows (ids with their ``_local/`` prefix), by id or in the order of ``keys``;
        a key that is not there gets ``"error": "not_found"``, as in ``_all_docs``.

        A database holds few of them (replication checkpoints), so they are read at once.
        """
        rows = {"_local/" + local_id: number for local_id, number in self._all("SELECT id, rev FROM local_docs")}
        if keys is not None:
            chosen: list[Any] = list(reversed(keys)) if descending else list(keys)
        else:
            sign = -1 if descending else 1  # compare as if ascending

            def inside(k: str) -> bool:
                after_start = start is None or k == start or (k > start) == (sign > 0)
                before_end = end is None or (k == end and inclusive_end) or (k != end and (k < end) == (sign > 0))
                return after_start and before_end
            chosen = [k for k in sorted(rows, reverse=descending) if inside(k)]
        for key in chosen[skip:None if limit is None else skip + limit]:
            if key not in rows:
                yield {"key": key, "error": "not_found"}
                continue
            row: dict[str, Any] = {"id": key, "key": key, "value": {"rev": f"0-{rows[key]}"}}
            if include_docs:
                row["doc"] = self.get_local(key[7:])
            yield row

    def put_local(self, local_id: str, doc: dict, delete: bool = False) -> dict:
        """Write or delete a ``_local`` document; its ``_rev`` must match the current one.

        A document with ``"_deleted": true`` deletes, as in CouchDB, even one that does not exist.
        :raises Conflict: on a stale or missing ``_rev``; NotFound when ``delete`` finds nothing.
        """
        if not isinstance(doc, dict):
            raise BadRequest("Document must be a JSON object")
        check_members(doc)
        with self._write_lock, transaction(self._writer):
            row = self._writer.execute("SELECT rev FROM local_docs WHERE id = ?", (local_id,)).fetchone()
            current = f"0-{row[0]}" if row else None
            if delete and row is None:
                raise NotFound("missing")
            if row is not None and doc.get("_rev") != current:
                raise Conflict()
            if delete or doc.get("_deleted") is True:
                self._writer.execute("DELETE FROM local_docs WHERE id = ?", (local_id,))
                return {"ok": True, "id": "_local/" + local_id, "rev": "0-0"}
            number = row[0] + 1 if row else 1
            body = body_of(doc)  # CouchDB keeps no special member, attachments included, on a _local document
            self._writer.execute("INSERT OR REPLACE INTO local_docs VALUES (?, ?, ?)",
                                 (local_id, number, self._seal(dumps(body), "_local", local_id)))
        return {"ok": True, "id": "_local/" + local_id, "rev": f"0-{number}"}

    # -- compaction ----------------------------------------------------------

    def compact(self) -> None:
        """Drop bodies of non-leaf revisions, stem to ``_revs_limit``, and free orphaned attachments."""
        with self._write_lock, transaction(self._writer):
            conn = self._writer
            for doc_id, tree_json in conn.execute("SELECT id, tree FROM docs").fetchall():
                tree = json.loads(tree_json)
                removed = revtree.stem(tree, self.revs_limit)
                keep = set(revtree.leaves(tree))
                stored = [r for (r,) in conn.execute("SELECT rev FROM revs WHERE doc_id = ?", (doc_id,))]
                conn.executemany("DELETE FROM revs WHERE doc_id = ? AND rev = ?",
                                 [(doc_id, r) for r in stored if r not in keep])
                if removed:
                    conn.execute("UPDATE docs SET tree = ? WHERE id = ?", (dumps(tree), doc_id))
            used: set[str] = set()
            # In clear, SQL skips bodies without attachments; encrypted, every body is opened.
            where = "" if self._cipher else " WHERE body LIKE '%\"_attachments\"%'"
            for doc_id, rev, stored in conn.execute("SELECT doc_id, rev, body FROM revs" + where):
                body = json.loads(self._open(stored, doc_id, rev))
                used.update(s["digest"] for s in body.get("_attachments", {}).values())
            orphans = [d for (d,) in conn.execute("SELECT digest FROM atts") if d not in used]
            conn.executemany("DELETE FROM atts WHERE digest = ?", [(d,) for d in orphans])
        with self._write_lock:
            self._writer.execute("VACUUM")


def _file_size(path: str) -> int:
    """Bytes of a file, 0 when it is not there (the write-ahead log comes and goes)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
