"""The replicator: CouchDB-protocol replication between any two peers.

``replicate(source, target)`` is the whole public API; a peer is a database URL
(credentials may be in it) or the name of a database in a local store.
"""

from __future__ import annotations

from sync_server.store import Server

from .http_peer import HttpPeer
from .local_peer import LocalPeer
from .peer import Peer
from .replicator import Options, Progress, Replicator, Result

__all__ = ["Options", "Result", "open_peer", "replicate"]


def open_peer(spec: str, server: Server | None = None, ca_bundle: str | None = None) -> Peer:
    """A peer for a URL (HTTPS checked against ``ca_bundle`` when given), or a database name in ``server``."""
    if spec.startswith(("http://", "https://")):
        return HttpPeer(spec, ca_bundle=ca_bundle)
    if server is None:
        raise ValueError(f"{spec!r} is not a URL; give a data directory for local database names")
    return LocalPeer(server, spec)


def replicate(source: Peer, target: Peer, options: Options | None = None,
              progress: Progress | None = None) -> Result:
    """Replicate ``source`` into ``target`` once (or continuously, per ``options``)."""
    return Replicator(source, target, options, progress).run()
