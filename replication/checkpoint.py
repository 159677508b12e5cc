"""Checkpoints: where a replication got to, kept in ``_local/<replication id>`` on both peers.

Each run is a session with its own id. Both peers keep the same history of
sessions (newest first, capped). When the two last sessions differ (one write
was lost, or a peer was restored from a backup), the newest session both
histories share gives the sequence to resume from, never 0 unless nothing is
shared (CouchDB's "find common ancestry" step).

A remote checkpoint that is written after every batch (a pull's source) is
written in the background after the run's first one, so the next batches'
transfers do not wait on its round trip. A write waits for the previous one, so
such a checkpoint lags the local one by at most one batch; resuming takes the
older side, so a cut costs that batch read again, never a batch skipped.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sync_server.errors import Conflict

from .peer import Peer

# Sessions remembered per checkpoint: enough to survive several lost writes.
HISTORY_SIZE = 10
# A cached remote checkpoint is read again at least this often (a hub may be restored from backup).
VERIFY_SECONDS = 6 * 3600
# A remote checkpoint is written at most this often during a run, and at its end
# (CouchDB's replicator checkpoints every 30 s too, not after every batch).
REMOTE_EVERY_SECONDS = 30.0


@dataclass
class Checkpointer:
    """Reads and writes one replication's checkpoints on its two peers.

    ``cache`` (kept by a long-lived caller such as the kiosk's scheduler) holds
    the last checkpoint read from or written to each remote peer. A cached one
    is used instead of a request while its session matches the other side's,
    and is re-read at least every ``VERIFY_SECONDS``, so an idle round costs no
    checkpoint traffic and a hub restored from a backup is still noticed.
    """

    rep_id: str
    source: Peer
    target: Peer
    cache: dict[str, Any] | None = None
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _docs: dict[str, dict | None] = field(default_factory=dict)
    _last_written: Any = None
    _written: dict[str, Any] = field(default_factory=dict)
    _stamps: dict[str, float] = field(default_factory=dict)
    _pending: bool = False
    # Background writes of a remote checkpoint: the thread per side, the failure of one.
    _threads: dict[str, threading.Thread] = field(default_factory=dict)
    _failure: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, fresh_target: bool = False) -> Any:
        """The sequence to start from: the common ancestor of both checkpoints, else 0.

        A remote checkpoint is not asked for when the answer cannot matter: the
        local side has none (or the target was created just now), so the start is 0
        whatever the remote one says. It is then read only if writing it conflicts.
        """
        sides = {"source": self.source, "target": self.target}
        local = [side for side, peer in sides.items() if not getattr(peer, "remote", True)]
        if fresh_target:
            self._docs["target"] = None
        for side in local:
            if side not in self._docs:
                self._docs[side] = sides[side].get_local(self.rep_id)
        for side in sides.keys() - self._docs.keys():
            others = [self._docs[s] for s in local]
            if local and all(doc is None for doc in others):
                self._docs[side] = None  # nothing shared can come of it: start from 0
                continue
            self._docs[side] = self._remote_doc(sides[side], others)
        return common_seq(self._docs["source"], self._docs["target"])

    def _remote_doc(self, peer: Peer, others: list[dict | None]) -> dict | None:
        key = f"{peer.name}|{self.rep_id}"
        cached = (self.cache or {}).get(key)
        if cached and time.time() - cached[0] < VERIFY_SECONDS and _agrees(cached[1], others):
            return cached[1]
        doc = peer.get_local(self.rep_id)
        self._remember(peer, doc)
        return doc

    def _remember(self, peer: Peer, doc: dict | None, verified: float | None = None) -> None:
        if self.cache is not None and getattr(peer, "remote", True):
            key = f"{peer.name}|{self.rep_id}"
            self.cache[key] = (verified or time.time(), doc)

    def write(self, seq: Any, stats: dict[str, int], final: bool = False) -> None:
        """Record ``seq`` for this session on both sides; a remote *target* at most every
        ``REMOTE_EVERY_SECONDS`` and at the end (``final``).

        On a push the source is local and resuming reads its checkpoint, which is
        written after every batch, so a lagging remote target costs nothing after
        a cut and saves a round trip per batch. A remote *source* (a pull) is
        written every batch: resuming takes the older of the two sides, and a
        lag there would mean reading batches again. After the run's first write
        it is written in the background, waiting for the previous write (so it
        lags by one batch at most); a failed background write is raised here.
        """
        if seq == self._last_written and not final:
            return
        if self._failure is not None:  # a background write failed: the run ends as if it were ours
            failure, self._failure = self._failure, None
            raise failure
        for side, peer in (("target", self.target), ("source", self.source)):
            remote = getattr(peer, "remote", True)
            throttled = side == "target" and remote and not getattr(self.source, "remote", True)
            if throttled and not final and self._recent(side):
                self._pending = True
                continue
            if remote and not final and not throttled and side in self._written:
                self._write_later(side, peer, seq, dict(stats))
                continue
            self._join(side)
            if self._written.get(side) != seq:
                self._docs[side] = self._write_side(peer, self._docs.get(side), seq, stats)
                self._written[side] = seq
                self._stamps[side] = time.monotonic()
        self._last_written = seq

    def flush(self, stats: dict[str, int]) -> None:
        """Wait for background writes; write any remote checkpoint that lags behind the last sequence.

        :raises: the failure of a background write (the link broke while it ran).
        """
        for side in list(self._threads):
            self._join(side)
        failure, self._failure = self._failure, None
        lagging = any(self._written.get(side) != self._last_written for side in ("source", "target"))
        if (self._pending or lagging) and self._last_written is not None:
            try:
                self.write(self._last_written, stats, final=True)
                self._pending = False
            except Exception:
                if failure is None:
                    raise
        if failure is not None:  # recorded what could be; the run still reports the broken write
            raise failure

    def _write_later(self, side: str, peer: Peer, seq: Any, stats: dict[str, int]) -> None:
        """Write ``seq`` on ``side`` in the background, once the previous write there is done."""
        self._join(side)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        thread = threading.Thread(target=self._background, args=(side, peer, seq, stats), name="checkpoint",
                                  daemon=True)
        with self._lock:
            self._threads[side] = thread
        thread.start()

    def _background(self, side: str, peer: Peer, seq: Any, stats: dict[str, int]) -> None:
        try:
            if self._written.get(side) != seq:
                self._docs[side] = self._write_side(peer, self._docs.get(side), seq, stats)
                self._written[side] = seq
                self._stamps[side] = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - raised in the replicating thread
            with self._lock:
                self._failure = exc
        finally:
            with self._lock:
                self._threads.pop(side, None)

    def _join(self, side: str) -> None:
        """Wait until no background write of ``side`` runs (only the replicating thread starts them)."""
        while True:
            with self._lock:
                thread = self._threads.get(side)
            if thread is None:
                return
            thread.join()

    def _recent(self, side: str) -> bool:
        stamp = self._stamps.get(side)
        return stamp is not None and time.monotonic() - stamp < REMOTE_EVERY_SECONDS

    def _write_side(self, peer: Peer, current: dict | None, seq: Any, stats: dict[str, int]) -> dict:
        entry = {"session_id": self.session_id, "recorded_seq": seq, "end_time": int(time.time()), **stats}
        for _ in range(3):
            # Built afresh on every try: after a conflict, on the history the peer has now.
            history = [h for h in (current or {}).get("history", []) if h.get("session_id") != self.session_id]
            doc: dict[str, Any] = {"session_id": self.session_id, "source_last_seq": seq, "version": 1,
                                   "history": [entry, *history][:HISTORY_SIZE]}
            if current and "_rev" in current:
                doc["_rev"] = current["_rev"]
            try:
                doc["_rev"] = peer.put_local(self.rep_id, doc)
                key = f"{peer.name}|{self.rep_id}"
                verified = (self.cache or {}).get(key, (time.time(), None))[0]
                self._remember(peer, doc, verified)
                return doc
            except Conflict:
                current = peer.get_local(self.rep_id)  # someone else wrote it (or it was lost): build on that
        raise Conflict(f"checkpoint {self.rep_id} on {peer.name} keeps conflicting")


def _agrees(cached: dict | None, others: list[dict | None]) -> bool:
    """A cached remote checkpoint still matches the local one (or neither side has one yet)."""
    if cached is None:
        return all(other is None for other in others)
    return any(other is not None and other.get("session_id") == cached.get("session_id") for other in others)


def common_seq(source_doc: dict | None, target_doc: dict | None) -> Any:
    """The sequence both checkpoints agree on (0 when they share no session)."""
    if not source_doc or not target_doc:
        return 0
    if source_doc.get("session_id") == target_doc.get("session_id") and "source_last_seq" in source_doc:
        return source_doc["source_last_seq"]
    target_sessions = {h.get("session_id"): h for h in target_doc.get("history", [])}
    for entry in source_doc.get("history", []):
        if entry.get("session_id") in target_sessions:
            return entry.get("recorded_seq", 0)
    return 0
