"""Checkpoints: where a replication got to, kept in ``_local/<replication id>`` on both peers.

Each run is a session with its own id. Both peers keep the same history of
sessions (newest first, capped). When the two last sessions differ (one write
was lost, or a peer was restored from a backup), the newest session both
histories share gives the sequence to resume from, never 0 unless nothing is
shared (CouchDB's "find common ancestry" step).

Between a local and a remote peer, resuming trusts the *local* side's sequence
(``trusted_side``): the local checkpoint is written only after its batch landed,
so the remote one need only share the session. The remote one is written first
at the session's first write, then in the background at most every
``REMOTE_EVERY_SECONDS``, and at the end; that last write goes out ahead
(``write_ahead``), while the last batches still travel, instead of costing a
round trip after them. CouchDB and PouchDB trust the source's record
(``compare_replication_logs``); they write both sides after each batch, so
either side would do for them. Between two remote (or two local) peers this
trusts the source, as they do.
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
    # Sides whose final sequence was sent ahead of the run's end (write_ahead), and those where it
    # was recorded (later writes of the run skip them).
    _ahead: set[str] = field(default_factory=set)
    _final: set[str] = field(default_factory=set)
    # One write at a time per side, whichever thread asks.
    _side_locks: dict[str, threading.Lock] = field(
        default_factory=lambda: {"source": threading.Lock(), "target": threading.Lock()})
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
        return common_seq(self._docs["source"], self._docs["target"], trusted=self.trusted_side())

    def trusted_side(self) -> str:
        """The side whose sequence a resume trusts: the only local one, else the source (as CouchDB)."""
        local = [side for side, peer in (("source", self.source), ("target", self.target))
                 if not getattr(peer, "remote", True)]
        return local[0] if len(local) == 1 else "source"

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
        """Record ``seq`` for this session on both sides.

        Between a local and a remote peer, resuming reads the local side, written
        here after every batch; the remote side only has to share the session. So
        the remote side is written first at the session's first write (a local
        checkpoint must find its session there, or the next run could not resume
        from it), then in the background at most every ``REMOTE_EVERY_SECONDS``,
        and at the end (``final``, or ahead of it: ``write_ahead``). That saves a
        round trip per batch on the link. Between two remote peers both are written
        every batch, the source in the background after its first write (so it lags
        by one batch at most: resuming from the older side reads it again). A failed
        background write is raised here.
        """
        if seq == self._last_written and not final:
            return
        if self._failure is not None:  # a background write failed: the run ends as if it were ours
            failure, self._failure = self._failure, None
            raise failure
        sides = [("target", self.target), ("source", self.source)]
        sides.sort(key=lambda item: not (getattr(item[1], "remote", True) and item[0] not in self._written))
        for side, peer in sides:
            if side in self._final:
                continue  # the run's last sequence is recorded there already
            if not final and side in self._written and getattr(peer, "remote", True):
                untrusted = self._untrusted(side)
                if untrusted and self._recent(side):
                    self._pending = True  # flush writes it at the end
                    continue
                if untrusted or side == "source":
                    self._write_later(side, peer, seq, dict(stats))
                    continue
            self._join(side)
            self._store(side, peer, seq, stats)
        self._last_written = seq

    def _untrusted(self, side: str) -> bool:
        """``side`` is the remote one of a local and a remote peer (resuming does not read its sequence)."""
        peers = {"source": self.source, "target": self.target}
        remote = {name: getattr(peer, "remote", True) for name, peer in peers.items()}
        return remote[side] and sum(remote.values()) == 1

    def write_ahead(self, seq: Any, stats: dict[str, int]) -> None:
        """Record the run's last sequence on the remote side now, in the background.

        Called when the last batch is under way, so the checkpoint's round trip
        overlaps that batch's transfer instead of following it. Safe because a resume
        trusts the local side (``trusted_side``), written only once a batch landed: if
        the run fails after this, the next one resumes from the local sequence (same
        session) or from the last session both sides share. Only between one local
        and one remote peer; after a failed write here, ``flush`` writes it again and
        raises the failure (the link broke: the run is not reported complete).
        """
        side = "target" if self.trusted_side() == "source" else "source"
        if not self._untrusted(side):
            return
        peer = self.target if side == "target" else self.source
        with self._lock:
            if side in self._ahead:
                return
            self._ahead.add(side)
            thread = threading.Thread(target=self._background_ahead, args=(side, peer, seq, dict(stats)),
                                      name="checkpoint-ahead", daemon=True)
            self._threads[side + "-ahead"] = thread
        thread.start()

    def _background_ahead(self, side: str, peer: Peer, seq: Any, stats: dict[str, int]) -> None:
        try:
            self._store(side, peer, seq, stats, ahead=True)
            with self._lock:
                self._final.add(side)
        except BaseException as exc:  # noqa: BLE001 - flush writes it again, then reports the failure
            with self._lock:
                self._failure = self._failure or exc
        finally:
            with self._lock:
                self._threads.pop(side + "-ahead", None)

    def _store(self, side: str, peer: Peer, seq: Any, stats: dict[str, int], ahead: bool = False) -> None:
        """Write ``seq`` on ``side`` unless it is there, or a later one was sent ahead."""
        with self._side_locks[side]:
            if not ahead and side in self._final:
                return
            if self._written.get(side) != seq:
                self._docs[side] = self._write_side(side, peer, self._docs.get(side), seq, stats)
                self._written[side] = seq
                self._stamps[side] = time.monotonic()

    def flush(self, stats: dict[str, int]) -> None:
        """Wait for background writes; write any remote checkpoint that lags behind the last sequence.

        :raises: the failure of a background write (the link broke while it ran).
        """
        for side in list(self._threads):
            self._join(side)
        failure, self._failure = self._failure, None
        lagging = any(self._written.get(side) != self._last_written for side in ("source", "target")
                      if side not in self._final)
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
            self._store(side, peer, seq, stats)
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

    def _write_side(self, side: str, peer: Peer, current: dict | None, seq: Any, stats: dict[str, int]) -> dict:
        entry = {"session_id": self.session_id, "recorded_seq": seq, "end_time": int(time.time()), **stats}
        for _ in range(3):
            # Built afresh on every try: after a conflict, on the history the peer has now.
            history = [h for h in (current or {}).get("history", []) if h.get("session_id") != self.session_id]
            if self._untrusted(side):
                # Only sessions the local side recorded can ever be common: a run that failed before
                # its first local write (its end was sent ahead) must not push those out of the cap.
                trusted = self._docs.get(self.trusted_side()) or {}
                known = {h.get("session_id") for h in trusted.get("history", [])}
                history = [h for h in history if h.get("session_id") in known]
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


def common_seq(source_doc: dict | None, target_doc: dict | None, trusted: str = "source") -> Any:
    """The sequence both checkpoints agree on (0 when they share no session).

    The sequence is read from the ``trusted`` side's record; the other side only has
    to share its session (the latest, else one in both histories, newest first).
    """
    if not source_doc or not target_doc:
        return 0
    mine, other = (source_doc, target_doc) if trusted == "source" else (target_doc, source_doc)
    if mine.get("session_id") == other.get("session_id") and "source_last_seq" in mine:
        return mine["source_last_seq"]
    other_sessions = {h.get("session_id") for h in other.get("history", [])}
    for entry in mine.get("history", []):
        if entry.get("session_id") in other_sessions:
            return entry.get("recorded_seq", 0)
    return 0
