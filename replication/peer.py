"""What the replicator needs of a peer: the CouchDB replication endpoints, as methods.

Two implementations: ``LocalPeer`` (a database of this process's store) and
``HttpPeer`` (any CouchDB-protocol URL: Apache CouchDB 3, pouchdb-server, or
this project's server). The replicator reaches peers only through this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Traffic:
    """Bytes and requests a peer has exchanged (zero for a local peer)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    requests: int = 0

    def snapshot(self) -> tuple[int, int, int]:
        return self.bytes_sent, self.bytes_received, self.requests


@dataclass
class ChangesPage:
    """One read of ``_changes``: rows (id, revs, deleted, seq) and where it ended."""

    rows: list[dict[str, Any]]
    last_seq: Any
    pending: int | None = None


@dataclass
class PeerInfo:
    """What identifies a peer's database for replication ids and checkpoints."""

    identity: str
    update_seq: Any
    extra: dict[str, Any] = field(default_factory=dict)


class Peer(Protocol):
    """A database reachable with the CouchDB replication protocol."""

    name: str
    remote: bool  # reached over a network (its checkpoints may be cached between runs)
    traffic: Traffic

    def info(self, create: bool = False) -> PeerInfo:
        """The database's identity (``uuid``/name or URL) and update sequence; create it when asked."""

    def changes(self, since: Any, limit: int, *, doc_ids: list[str] | None = None,
                selector: dict | None = None, wait: float = 0.0) -> ChangesPage:
        """``_changes?style=all_docs`` after ``since``; with ``wait`` > 0, longpoll that long."""

    def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, dict]:
        """``_revs_diff``: what the peer lacks."""

    def bulk_get(self, wanted: list[dict], attachments: bool = False) -> list[dict]:
        """Documents with ``_revisions``; attachments as stubs, or with data newer than ``atts_since``."""

    def attachment(self, doc_id: str, rev: str, name: str, offset: int = 0) -> bytes:
        """One attachment's data from ``offset`` on."""

    def bulk_docs(self, docs: list[dict]) -> list[dict]:
        """``_bulk_docs`` with ``new_edits: false``; returns the failed rows only."""

    def get_local(self, local_id: str) -> dict | None:
        """A ``_local`` document, or None."""

    def put_local(self, local_id: str, doc: dict) -> str:
        """Write a ``_local`` document; returns its new ``_rev``."""

    def close(self) -> None:
        """Release connections."""
