"""Checkpoints: where a replication got to, kept in ``_local/<replication id>`` on both peers.

Each run is a session with its own id. Both peers keep the same history of
sessions (newest first, capped). When the two last sessions differ (one write
was lost, or a peer was restored from a backup), the newest session both
histories share gives the sequence to resume from, never 0 unless nothing is
shared (CouchDB's "find common ancestry" step).
"""

from __future__ import annotations

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

    def read(self) -> Any:
        """The sequence to start from: the common ancestor of both checkpoints, else 0."""
        sides = {"source": self.source, "target": self.target}
        local = [side for side, peer in sides.items() if not getattr(peer, "remote", True)]
        for side in local:
            self._docs[side] = sides[side].get_local(self.rep_id)
        for side in sides.keys() - set(local):
            self._docs[side] = self._remote_doc(sides[side], [self._docs[s] for s in local])
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
        lag there would mean reading batches again.
        """
        if seq == self._last_written and not final:
            return
        for side, peer in (("target", self.target), ("source", self.source)):
            throttled = side == "target" and getattr(peer, "remote", True) and not getattr(self.source, "remote", True)
            if throttled and not final and self._recent(side):
                self._pending = True
                continue
            if self._written.get(side) != seq:
                self._docs[side] = self._write_side(peer, self._docs.get(side), seq, stats)
                self._written[side] = seq
                self._stamps[side] = time.monotonic()
        self._last_written = seq

    def flush(self, stats: dict[str, int]) -> None:
        """Write any remote checkpoint that lags behind the last recorded sequence."""
        if self._pending and self._last_written is not None:
            self.write(self._last_written, stats, final=True)

    def _recent(self, side: str) -> bool:
        stamp = self._stamps.get(side)
        return stamp is not None and time.monotonic() - stamp < REMOTE_EVERY_SECONDS

    def _write_side(self, peer: Peer, current: dict | None, seq: Any, stats: dict[str, int]) -> dict:
        history = [h for h in (current or {}).get("history", []) if h.get("session_id") != self.session_id]
        entry = {"session_id": self.session_id, "recorded_seq": seq, "end_time": int(time.time()), **stats}
        doc: dict[str, Any] = {"session_id": self.session_id, "source_last_seq": seq, "version": 1,
                               "history": [entry, *history][:HISTORY_SIZE]}
        for _ in range(3):
            doc.pop("_rev", None)
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
