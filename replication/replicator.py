"""One-way replication over two peers, following the CouchDB replication protocol.

Steps (docs.couchdb.org, "Replication Protocol"): get peers information, find
common ancestry (checkpoints), locate changed documents (``_changes`` with
``style=all_docs`` and ``_revs_diff``), replicate changes (``_bulk_get``, then
``_bulk_docs`` with ``new_edits: false``), record a checkpoint (see checkpoint.py).

Frugal with a slow, costly link:
- documents come without attachment data first; data is then fetched only for
  attachments the target lacks (newer than its ancestors), small ones in one
  more ``_bulk_get``, large ones one by one with ``Range`` so a broken transfer
  resumes; the same digest is never fetched twice in a run;
- pushes are cut into bodies of at most ``batch_bytes``; a 413 halves the
  batch, a single document that is still too large is recorded and skipped;
- a document the target refuses (``forbidden``/``unauthorized``, or any other
  per-document error) is recorded and skipped, never retried forever.

Pipelined, so round trips overlap instead of adding up (bench/LINKS.md): a
planner thread reads ``_changes`` pages and their ``_revs_diff`` ahead; up to
``pipeline`` batches are fetched and written at once (``_bulk_get``, their
attachments ``ATTACHMENT_FETCHES`` GETs at a time, ``_bulk_docs``: writes with
``new_edits: false`` commute); the calling thread takes finished batches strictly
in order and records the checkpoint after each. So the checkpoint a resume
trusts never covers a batch that is not written, and a cut costs at most the
batches planned (``PLANNED_PER_SLOT x pipeline``: those in flight, and those done
after them). ``pipeline`` is 3 by default; 1 makes the transfers sequential.
The remote checkpoint of the run's end goes out with the last batch, not after it
(``Checkpointer.write_ahead``: a resume reads the sequence from the local side).
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sync_server.errors import CouchError, DocumentTooLarge, RequestTooLarge
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
# Batches replicated at once (and so, at most, read again after a failed run), and batches per
# _changes page. Measured on the 3G cell pull (bench/LINKS.md): 2 -> 1.35x the physical bound,
# 3 -> 1.24x (round trips hidden behind transfers); 1 makes the replicator strictly sequential.
PIPELINE_BATCHES = 3
# Batches planned (read from _changes, diffed, queued) per batch replicating: twice as many, so a
# batch that finishes before an earlier one (pushes share one uplink and finish out of order)
# frees its thread for the next at once, not when the earlier one is checkpointed. Also the bound
# on what a failed run reads again: at most PLANNED_PER_SLOT x pipeline batches.
PLANNED_PER_SLOT = 2
# Attachment requests (Range GETs, inline _bulk_get groups) in flight at once, over all batches.
ATTACHMENT_FETCHES = 3


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
    # Batches fetched ahead of the one being written (see PIPELINE_BATCHES).
    pipeline: int = PIPELINE_BATCHES


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
        self._fetching: dict[str, Future] = {}  # digest -> the fetch in progress
        self._cache_lock = threading.Lock()
        self._attachment_pool: ThreadPoolExecutor | None = None
        self._fresh_target = False

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
        except Exception as exc:  # noqa: BLE001 - PeerUnavailable and transport errors end the run; the next resumes
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
        # A target created just now has no checkpoint and lacks every revision: ask it neither.
        self._fresh_target = bool(target_info.extra.get("created"))
        self.result.start_seq = self.result.last_seq = checkpointer.read(fresh_target=self._fresh_target)
        return checkpointer

    def _loop(self, checkpointer: Checkpointer) -> None:
        """Take replicated batches in order as they complete; checkpoint after each.

        The planner (another thread) runs ahead: it reads the next ``_changes`` page
        and its ``_revs_diff`` and queues the batch's replication (fetch, then write)
        as soon as one of the ``PLANNED_PER_SLOT x pipeline`` slots is free; ``pipeline``
        threads replicate queued batches in order. A slot is freed once its batch is
        counted and checkpointed here, so no checkpoint passes a batch in flight.
        """
        depth = max(1, self.options.pipeline)
        slots = threading.Semaphore(depth * PLANNED_PER_SLOT)
        plans: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        fetchers = ThreadPoolExecutor(depth, thread_name_prefix="replicate-fetch")
        self._attachment_pool = ThreadPoolExecutor(ATTACHMENT_FETCHES, thread_name_prefix="replicate-att")
        planner = threading.Thread(target=self._plan, args=(plans, slots, stop, fetchers, checkpointer),
                                   name="replicate-plan", daemon=True)
        planner.start()
        try:
            while True:
                plan = plans.get()
                if plan is _END:
                    return
                if isinstance(plan, BaseException):
                    raise plan
                try:
                    if plan.rows:
                        self.result.batches += 1
                        self.result.docs_read += len(plan.rows)
                        if plan.fetch is not None:
                            written, refused = plan.fetch.result()
                            self.result.docs_written += written
                            for doc, failure in refused:
                                self._record(doc, failure)
                    if plan.last_seq is None:  # a batch that ends mid-page without a sequence
                        continue
                    self.result.last_seq = plan.last_seq
                    if plan.rows and not _next_is_done(plans):  # else one checkpoint for both
                        checkpointer.write(plan.last_seq, self.result.stats())
                        self._report()
                finally:
                    slots.release()
        finally:
            stop.set()
            fetchers.shutdown(wait=True, cancel_futures=True)
            self._attachment_pool.shutdown(wait=True, cancel_futures=True)
            # A planner stuck in a longpoll or a retrying request notices ``stop`` when it returns.
            planner.join(self.options.poll_seconds + 10.0 if self.options.continuous else 60.0)

    def _plan(self, plans: queue.Queue, slots: threading.Semaphore, stop: threading.Event,
              fetchers: ThreadPoolExecutor, checkpointer: Checkpointer) -> None:
        """Read ``_changes`` and ``_revs_diff`` ahead; start each batch's replication when a slot frees.

        A ``_changes`` page holds ``pipeline`` batches, so the batches of one page
        start together instead of each waiting for its own page's round trip. Once
        the last batch is under way, the remote checkpoint of the end goes out
        (``Checkpointer.write_ahead``), so its round trip overlaps the last transfers.
        """
        since = self.result.last_seq
        planned = 0
        idle_since = time.monotonic()
        size = max(1, self.options.batch_size)
        limit = size * max(1, self.options.pipeline)
        try:
            while not stop.is_set():
                wait = self.options.poll_seconds if self.options.continuous else 0.0
                page = self.source.changes(since, limit, doc_ids=self.options.doc_ids,
                                           selector=self.options.selector, wait=wait)
                batches = [page.rows[i:i + size] for i in range(0, len(page.rows), size)] or [[]]
                for k, rows in enumerate(batches):
                    # A batch ends at its last row's sequence; CouchDB 3 may give intermediate rows
                    # ``seq: null`` (seq_interval): such a batch is recorded by the next checkpoint.
                    last_seq = page.last_seq if k == len(batches) - 1 else rows[-1].get("seq")
                    wanted = self._wanted(rows) if rows and not stop.is_set() else []
                    while not slots.acquire(timeout=0.2):
                        if stop.is_set():
                            return
                    if stop.is_set():
                        slots.release()
                        return
                    fetch = fetchers.submit(self._replicate, wanted) if wanted else None
                    plans.put(_Plan(rows, last_seq, fetch))
                    planned += len(rows)
                since = page.last_seq
                if page.rows:
                    idle_since = time.monotonic()
                caught_up = not page.rows or len(page.rows) < limit and not page.pending
                if caught_up and (not self.options.continuous or self._idle_too_long(idle_since)):
                    break
            if planned and not self.options.continuous and not stop.is_set():
                checkpointer.write_ahead(since, self.result.stats())
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread, which ends the run
            plans.put(exc)
            return
        plans.put(_END)

    def _idle_too_long(self, idle_since: float) -> bool:
        limit = self.options.idle_seconds
        return limit is not None and time.monotonic() - idle_since >= limit

    def _report(self) -> None:
        if self.progress is not None:
            self.result.bytes_sent, self.result.bytes_received, self.result.requests = self._traffic()
            self.progress(self.result)

    def _wanted(self, rows: list[dict]) -> list[dict]:
        """What of a ``_changes`` page the target lacks (``_revs_diff``)."""
        asked = {row["id"]: [c["rev"] for c in row["changes"]] for row in rows}
        if self._fresh_target:  # created by this run: it lacks everything not written since
            return [{"id": doc_id, "rev": rev, "atts_since": []} for doc_id, revs in asked.items() for rev in revs]
        missing = self.target.revs_diff(asked)
        return [{"id": doc_id, "rev": rev, "atts_since": entry.get("possible_ancestors", [])}
                for doc_id, entry in missing.items() for rev in entry["missing"]]

    def _replicate(self, wanted: list[dict]) -> tuple[int, list[tuple[dict, dict]]]:
        """Fetch the wanted revisions with the attachment data the target lacks, and write them.

        Runs in a pipeline thread; returns (documents written, refused (document, error) pairs).
        """
        docs = self.source.bulk_get(wanted)
        ancestors = {item["id"]: item["atts_since"] for item in wanted}
        docs = self._with_attachment_data(docs, ancestors)
        refused: list[tuple[dict, dict]] = []
        written = sum(self._write(chunk, refused) for chunk in _chunks(docs, self.options.batch_bytes))
        return written, refused

    # -- attachments ---------------------------------------------------------

    def _with_attachment_data(self, docs: list[dict], ancestors: dict[str, list[str]]) -> list[dict]:
        """Fill in data for attachments the target does not have; keep stubs for the rest.

        Documents whose missing attachments are all small come again from one
        more ``_bulk_get`` per ``INLINE_BATCH_BYTES``; any other attachment comes
        by its own ``Range``-resumable GET, once per digest. So no single response
        is longer than a mobile link stays up (a batch of ten PDFs inline never
        finished on 2G). These requests run ``ATTACHMENT_FETCHES`` at a time.
        """
        refetch: list[tuple[dict, int]] = []
        direct: list[tuple[dict, list[str]]] = []
        for doc in docs:
            needed = _needed(doc, ancestors.get(doc["_id"], []))
            if not needed:
                continue
            lengths = [doc["_attachments"][n].get("length", 0) for n in needed
                       if doc["_attachments"][n]["digest"] not in self._cache]
            if lengths and max(lengths) <= INLINE_ATTACHMENT_BYTES and sum(lengths) <= INLINE_BATCH_BYTES:
                refetch.append((doc, sum(lengths)))
            else:
                direct.append((doc, needed))
        if not refetch and not direct:
            return docs
        pool = self._attachment_pool
        submit = pool.submit if pool is not None else _run_now
        groups = [submit(self._fetch_inline, group, ancestors) for group in _groups(refetch, INLINE_BATCH_BYTES)]
        digests: dict[str, Future] = {}
        for doc, needed in direct:
            for name in needed:
                att = doc["_attachments"][name]
                if "data" not in att and att["digest"] not in digests:
                    digests[att["digest"]] = submit(self._attachment_data, doc["_id"], doc["_rev"], name,
                                                    att["digest"])
        replaced = {(d["_id"], d["_rev"]): d for group in groups for d in group.result()}
        data = {digest: future.result() for digest, future in digests.items()}
        for doc, needed in direct:
            self._fill(doc, needed, data)
        return [replaced.get((d["_id"], d["_rev"]), d) for d in docs]

    def _fetch_inline(self, group: list[dict], ancestors: dict[str, list[str]]) -> list[dict]:
        """One ``_bulk_get`` with the small attachments of ``group`` inline."""
        wanted = [{"id": d["_id"], "rev": d["_rev"], "atts_since": ancestors.get(d["_id"], [])} for d in group]
        fetched = {(d["_id"], d["_rev"]): d for d in self.source.bulk_get(wanted, attachments=True)}
        out = []
        for doc in group:
            full = fetched.get((doc["_id"], doc["_rev"]), doc)
            self._remember(full)
            self._fill(full, _needed(full, ancestors.get(doc["_id"], [])), {})
            out.append(full)
        return out

    def _remember(self, doc: dict) -> None:
        for att in (doc.get("_attachments") or {}).values():
            if "data" in att:
                self._keep(att["digest"], base64.b64decode(att["data"]))

    def _keep(self, digest: str, raw: bytes) -> None:
        with self._cache_lock:
            if digest not in self._cache and self._cache_bytes + len(raw) <= DIGEST_CACHE_BYTES:
                self._cache[digest] = raw
                self._cache_bytes += len(raw)

    def _attachment_data(self, doc_id: str, rev: str, name: str, digest: str) -> bytes:
        """An attachment's data by digest: from the cache, from a fetch already under way, or the source."""
        with self._cache_lock:
            data = self._cache.get(digest)
            if data is not None:
                return data
            running = self._fetching.get(digest)
            if running is None:
                mine: Future = Future()
                self._fetching[digest] = mine
        if running is not None:  # another batch is fetching the same file: wait for it
            try:
                return running.result()
            except Exception:  # noqa: BLE001 - its failure is reported there; try ourselves
                return self._download(doc_id, rev, name)
        try:
            data = self._download(doc_id, rev, name)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._cache_lock:
                self._fetching.pop(digest, None)
        self._keep(digest, data)
        mine.set_result(data)
        return data

    def _download(self, doc_id: str, rev: str, name: str) -> bytes:
        # An HttpPeer whose attachments cannot resume relays them one after the other itself.
        return self.source.attachment(doc_id, rev, name)

    def _fill(self, doc: dict, needed: list[str], data: dict[str, bytes]) -> None:
        """Turn each needed stub into inline data, from ``data``, the digest cache or the source."""
        for name in needed:
            att = doc["_attachments"][name]
            if "data" in att:
                continue
            raw = data.get(att["digest"]) or self._attachment_data(doc["_id"], doc["_rev"], name, att["digest"])
            doc["_attachments"][name] = {"content_type": att.get("content_type"), "revpos": att.get("revpos"),
                                         "digest": att["digest"], "data": base64.b64encode(raw).decode()}

    # -- writing ---------------------------------------------------------------

    def _write(self, docs: list[dict], refused: list[tuple[dict, dict]]) -> int:
        """One ``_bulk_docs``; halved on 413. Returns how many landed; refusals go to ``refused``."""
        try:
            failures = self.target.bulk_docs(docs)
        except (RequestTooLarge, DocumentTooLarge) as exc:  # CouchDB refuses a whole batch for one big document
            if len(docs) == 1:
                refused.append((docs[0], {"error": exc.error,
                                          "reason": "the target refused the document as too large"}))
                return 0
            half = len(docs) // 2
            return self._write(docs[:half], refused) + self._write(docs[half:], refused)
        by_id = {d["_id"]: d for d in docs}
        for failure in failures:
            refused.append((by_id.get(failure.get("id")) or {"_id": failure.get("id")}, failure))
        return len(docs) - len(failures)

    def _record(self, doc: dict, failure: dict) -> None:
        """A document the target refused: counted, kept in the result, never retried forever."""
        self.result.doc_write_failures += 1
        self.result.errors.append({"id": doc.get("_id"), "rev": doc.get("_rev"),
                                   "error": failure.get("error"), "reason": failure.get("reason")})


@dataclass
class _Plan:
    """One ``_changes`` page, planned: its rows, where it ends, and the fetch of what the target lacks."""

    rows: list[dict]
    last_seq: Any
    fetch: Future | None


_END = object()  # the planner read the last page


def _next_is_done(plans: queue.Queue) -> bool:
    """The next planned batch has already been replicated (its checkpoint will cover this one)."""
    with plans.mutex:
        head = plans.queue[0] if plans.queue else None
    if not isinstance(head, _Plan) or not head.rows:
        return False
    return head.fetch is None or head.fetch.done() and head.fetch.exception() is None


def _run_now(fn: Callable[..., Any], *args: Any) -> Future:
    """``submit`` without a pool: run at once, return a completed future."""
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - raised again by .result()
        future.set_exception(exc)
    return future


def _try_final_checkpoint(checkpointer: Checkpointer, result: Result) -> None:
    """After a failed run, still try to record progress on the remote side (it may be back)."""
    try:
        checkpointer.flush(result.stats())
    except Exception:  # noqa: BLE001, S110 - the link is down: the local checkpoint and the session history suffice
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
