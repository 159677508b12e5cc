"""One-way replication over two peers, following the CouchDB replication protocol.

Steps (docs.couchdb.org, "Replication Protocol"): get peers information, find
common ancestry (checkpoints), locate changed documents (``_changes`` with
``style=all_docs`` and ``_revs_diff``), replicate changes (``_bulk_get``, then
``_bulk_docs`` with ``new_edits: false``), record a checkpoint after each batch.

Frugal with a slow, costly link:
- documents come without attachment data first; data is then fetched only for
  attachments the target lacks (newer than its ancestors), small ones in one
  more ``_bulk_get``, large ones one by one with ``Range`` so a broken transfer
  resumes; the same digest is never fetched twice in a run;
- pushes are cut into bodies of at most ``batch_bytes``; a 413 halves the
  batch, a single document that is still too large is recorded and skipped;
- a document the target refuses (``forbidden``/``unauthorized``, or any other
  per-document error) is recorded and skipped, never retried forever.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync_server.errors import CouchError, RequestTooLarge
from sync_server.store import revtree

from .checkpoint import Checkpointer
from .peer import Peer
from .replication_id import replication_id

# PouchDB's and CouchDB's default batch: 100 changes per round trip.
BATCH_SIZE = 100
# Largest _bulk_docs body we send, before gzip; CouchDB's max_http_request_size is far above.
BATCH_BYTES = 4_000_000
# Attachments at most this size come inline in a _bulk_get, at most INLINE_BATCH_BYTES of
# them per request; larger ones by Range GET, resumed after a cut. Measured on an emulated
# 2G link cut every 20 s: one 1 MB inline response never finished (bench/LINKS.md).
INLINE_ATTACHMENT_BYTES = 32_000
INLINE_BATCH_BYTES = 64_000
# Digest cache for one run: the same PDF attached to many documents is fetched once.
DIGEST_CACHE_BYTES = 64_000_000


@dataclass
class Options:
    """How to replicate."""

    doc_ids: list[str] | None = None
    selector: dict[str, Any] | None = None
    batch_size: int = BATCH_SIZE
    batch_bytes: int = BATCH_BYTES
    create_target: bool = True
    continuous: bool = False
    # Longpoll wait in continuous mode, and how long a continuous run may go idle before it returns.
    poll_seconds: float = 25.0
    idle_seconds: float | None = None


@dataclass
class Result:
    """What one replication did."""

    ok: bool = True
    docs_read: int = 0
    docs_written: int = 0
    doc_write_failures: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    start_seq: Any = 0
    last_seq: Any = 0
    batches: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None

    def stats(self) -> dict[str, int]:
        return {"docs_read": self.docs_read, "docs_written": self.docs_written,
                "doc_write_failures": self.doc_write_failures}


Progress = Callable[[Result], None]


class Replicator:
    """Replicates ``source`` into ``target``."""

    def __init__(self, source: Peer, target: Peer, options: Options | None = None,
                 progress: Progress | None = None, checkpoint_cache: dict[str, Any] | None = None) -> None:
        self.source, self.target = source, target
        self.checkpoint_cache = checkpoint_cache
        self.options = options or Options()
        self.progress = progress
        self.result = Result()
        self._cache: dict[str, bytes] = {}
        self._cache_bytes = 0

    def run(self) -> Result:
        """Replicate until caught up (or, when continuous, until idle or stopped)."""
        started = time.monotonic()
        before = self._traffic()
        checkpointer: Checkpointer | None = None
        try:
            checkpointer = self._start()
            self._loop(checkpointer)
            checkpointer.flush(self.result.stats())
        except CouchError as exc:
            self.result.ok, self.result.error = False, f"{exc.error}: {exc.reason}"
        except Exception as exc:  # PeerUnavailable and transport errors end the run; the next resumes
            self.result.ok, self.result.error = False, f"{type(exc).__name__}: {exc}"
        finally:
            if not self.result.ok and checkpointer is not None:
                _try_final_checkpoint(checkpointer, self.result)
            after = self._traffic()
            self.result.bytes_sent, self.result.bytes_received, self.result.requests = (
                after[0] - before[0], after[1] - before[1], after[2] - before[2])
            self.result.seconds = time.monotonic() - started
        return self.result

    def _traffic(self) -> tuple[int, int, int]:
        s, t = self.source.traffic.snapshot(), self.target.traffic.snapshot()
        return s[0] + t[0], s[1] + t[1], s[2] + t[2]

    # -- steps ---------------------------------------------------------------

    def _start(self) -> Checkpointer:
        """Peers' information, replication id and the common checkpoint."""
        source_info = self.source.info()
        target_info = self.target.info(create=self.options.create_target)
        rep_id = replication_id(source_info.identity, target_info.identity,
                                self.options.doc_ids, self.options.selector)
        checkpointer = Checkpointer(rep_id, self.source, self.target, self.checkpoint_cache)
        self.result.start_seq = self.result.last_seq = checkpointer.read()
        return checkpointer

    def _loop(self, checkpointer: Checkpointer) -> None:
        idle_since = time.monotonic()
        while True:
            wait = self.options.poll_seconds if self.options.continuous else 0.0
            page = self.source.changes(self.result.last_seq, self.options.batch_size, doc_ids=self.options.doc_ids,
                                       selector=self.options.selector, wait=wait)
            if page.rows:
                self._replicate_batch(page.rows)
                idle_since = time.monotonic()
            self.result.last_seq = page.last_seq
            if page.rows:
                checkpointer.write(page.last_seq, self.result.stats())
                self._report()
            if not page.rows or len(page.rows) < self.options.batch_size and not page.pending:
                if not self.options.continuous or self._idle_too_long(idle_since):
                    return

    def _idle_too_long(self, idle_since: float) -> bool:
        limit = self.options.idle_seconds
        return limit is not None and time.monotonic() - idle_since >= limit

    def _report(self) -> None:
        if self.progress is not None:
            self.result.bytes_sent, self.result.bytes_received, self.result.requests = self._traffic()
            self.progress(self.result)

    def _replicate_batch(self, rows: list[dict]) -> None:
        """Locate what the target lacks, fetch it and write it."""
        self.result.batches += 1
        self.result.docs_read += len(rows)
        asked = {row["id"]: [c["rev"] for c in row["changes"]] for row in rows}
        missing = self.target.revs_diff(asked)
        wanted = [{"id": doc_id, "rev": rev, "atts_since": entry.get("possible_ancestors", [])}
                  for doc_id, entry in missing.items() for rev in entry["missing"]]
        if not wanted:
            return
        docs = self.source.bulk_get(wanted)
        ancestors = {item["id"]: item["atts_since"] for item in wanted}
        docs = self._with_attachment_data(docs, ancestors)
        self._push(docs)

    # -- attachments ---------------------------------------------------------

    def _with_attachment_data(self, docs: list[dict], ancestors: dict[str, list[str]]) -> list[dict]:
        """Fill in data for attachments the target does not have; keep stubs for the rest.

        Documents whose missing attachments are all small come again from one
        more ``_bulk_get`` per ``INLINE_BATCH_BYTES``; any other attachment comes
        by its own ``Range``-resumable GET. So no single response is longer than
        a mobile link stays up (a batch of ten PDFs inline never finished on 2G).
        """
        refetch: list[tuple[dict, int]] = []
        out = []
        for doc in docs:
            needed = _needed(doc, ancestors.get(doc["_id"], []))
            lengths = [doc["_attachments"][n].get("length", 0) for n in needed
                       if doc["_attachments"][n]["digest"] not in self._cache]
            if lengths and max(lengths) <= INLINE_ATTACHMENT_BYTES and sum(lengths) <= INLINE_BATCH_BYTES:
                refetch.append((doc, sum(lengths)))
                continue
            self._fill(doc, needed)
            out.append(doc)
        for group in _groups(refetch, INLINE_BATCH_BYTES):
            wanted = [{"id": d["_id"], "rev": d["_rev"], "atts_since": ancestors.get(d["_id"], [])} for d in group]
            fetched = {(d["_id"], d["_rev"]): d for d in self.source.bulk_get(wanted, attachments=True)}
            for doc in group:
                full = fetched.get((doc["_id"], doc["_rev"]), doc)
                self._remember(full)
                self._fill(full, _needed(full, ancestors.get(doc["_id"], [])))
                out.append(full)
        return out

    def _remember(self, doc: dict) -> None:
        for att in (doc.get("_attachments") or {}).values():
            if "data" in att and self._cache_bytes < DIGEST_CACHE_BYTES:
                raw = base64.b64decode(att["data"])
                self._cache.setdefault(att["digest"], raw)
                self._cache_bytes += len(raw)

    def _fill(self, doc: dict, needed: list[str]) -> None:
        """Turn each needed stub into inline data, from the digest cache or the source."""
        for name in needed:
            att = doc["_attachments"][name]
            if "data" in att:
                continue
            data = self._cache.get(att["digest"])
            if data is None:
                data = self.source.attachment(doc["_id"], doc["_rev"], name)
                if self._cache_bytes + len(data) <= DIGEST_CACHE_BYTES:
                    self._cache[att["digest"]] = data
                    self._cache_bytes += len(data)
            doc["_attachments"][name] = {"content_type": att.get("content_type"), "revpos": att.get("revpos"),
                                         "digest": att["digest"], "data": base64.b64encode(data).decode()}

    # -- writing ---------------------------------------------------------------

    def _push(self, docs: list[dict]) -> None:
        """Write documents in bodies of bounded size; split on 413."""
        for chunk in _chunks(docs, self.options.batch_bytes):
            self._write(chunk)

    def _write(self, docs: list[dict]) -> None:
        try:
            failures = self.target.bulk_docs(docs)
        except RequestTooLarge:
            if len(docs) == 1:
                self._record(docs[0], {"error": "too_large", "reason": "the target refused the document as too large"})
                return
            half = len(docs) // 2
            self._write(docs[:half])
            self._write(docs[half:])
            return
        by_id = {d["_id"]: d for d in docs}
        for failure in failures:
            self._record(by_id.get(failure.get("id")) or {"_id": failure.get("id")}, failure)
        self.result.docs_written += len(docs) - len(failures)

    def _record(self, doc: dict, failure: dict) -> None:
        """A document the target refused: counted, kept in the result, never retried forever."""
        self.result.doc_write_failures += 1
        self.result.errors.append({"id": doc.get("_id"), "rev": doc.get("_rev"),
                                   "error": failure.get("error"), "reason": failure.get("reason")})


def _try_final_checkpoint(checkpointer: Checkpointer, result: Result) -> None:
    """After a failed run, still try to record progress on the remote side (it may be back)."""
    try:
        checkpointer.flush(result.stats())
    except Exception:  # the link is down: the local checkpoint and the session history suffice
        pass


def _needed(doc: dict, atts_since: list[str]) -> list[str]:
    """Attachments newer than the newest ancestor the target already has."""
    atts = doc.get("_attachments") or {}
    if not atts:
        return []
    revisions = doc.get("_revisions") or {"start": revtree.pos(doc["_rev"]), "ids": []}
    chain = {f"{revisions['start'] - i}-{h}" for i, h in enumerate(revisions["ids"])}
    known = [revtree.pos(r) for r in atts_since if r in chain]
    floor = max(known) if known else 0
    return [name for name, att in atts.items() if "data" not in att and att.get("revpos", 0) > floor]


def _groups(sized: list[tuple[dict, int]], limit: int) -> list[list[dict]]:
    """Documents grouped so each group's sizes add up to at most ``limit`` (a larger one alone)."""
    groups: list[list[dict]] = []
    total = limit + 1
    for doc, size in sized:
        if total + size > limit:
            groups.append([])
            total = 0
        groups[-1].append(doc)
        total += size
    return groups


def _chunks(docs: list[dict], limit: int) -> list[list[dict]]:
    """Group documents into bodies of at most ``limit`` bytes (a lone larger one stays alone)."""
    chunks: list[list[dict]] = [[]]
    size = 0
    for doc in docs:
        doc_size = len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        if chunks[-1] and size + doc_size > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(doc)
        size += doc_size
    return [c for c in chunks if c]
