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


@dataclass
class Checkpointer:
    """Reads and writes one replication's checkpoints on its two peers."""

    rep_id: str
    source: Peer
    target: Peer
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _docs: dict[str, dict | None] = field(default_factory=dict)
    _last_written: Any = None

    def read(self) -> Any:
        """The sequence to start from: the common ancestor of both checkpoints, else 0."""
        source_doc = self.source.get_local(self.rep_id)
        target_doc = self.target.get_local(self.rep_id)
        self._docs = {"source": source_doc, "target": target_doc}
        return common_seq(source_doc, target_doc)

    def write(self, seq: Any, stats: dict[str, int]) -> None:
        """Record ``seq`` for this session on the target, then the source."""
        if seq == self._last_written:
            return
        for side, peer in (("target", self.target), ("source", self.source)):
            self._docs[side] = self._write_side(peer, self._docs.get(side), seq, stats)
        self._last_written = seq

    def _write_side(self, peer: Peer, current: dict | None, seq: Any, stats: dict[str, int]) -> dict:
        history = [h for h in (current or {}).get("history", []) if h.get("session_id") != self.session_id]
        entry = {"session_id": self.session_id, "recorded_seq": seq, "end_time": int(time.time()), **stats}
        doc: dict[str, Any] = {"session_id": self.session_id, "source_last_seq": seq, "version": 1,
                               "history": [entry, *history][:HISTORY_SIZE]}
        for _ in range(3):
            if current and "_rev" in current:
                doc["_rev"] = current["_rev"]
            try:
                doc["_rev"] = peer.put_local(self.rep_id, doc)
                return doc
            except Conflict:
                current = peer.get_local(self.rep_id)  # someone else wrote it: build on theirs
        raise Conflict(f"checkpoint {self.rep_id} on {peer.name} keeps conflicting")


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
