"""A bundle as a peer: one replication's worth of changes carried in a file (#6).

Design (README "Bundles: sync by USB stick"):

- **Export** runs the ordinary ``Replicator`` from the real source into a
  ``BundleWriter``: a peer whose identity is the *real* target's (``<uuid>/<db>``,
  so the replication id is the one the network sync uses), whose ``revs_diff``
  answers "missing" for everything except revisions the target itself sent in a
  bundle (``_local/bundle-known``: every leaf its ``_changes`` rows listed; so a
  document is not echoed back), the replicator reading ``_changes`` only after the
  checkpoint both sides share; whose ``bulk_docs`` collects documents
  and whose ``get_local`` is the target's checkpoint as last *acknowledged* (kept
  in the source database as ``_local/bundle-ack-<replication id>``). The source's
  ``_changes`` rows are recorded with their sequences, and the source's own
  checkpoint (a new session S written by that run) goes into the bundle.
- **Import** runs the ordinary ``Replicator`` from a ``BundleReader`` (``_changes``
  and ``_bulk_get`` served from the file, ``get_local`` the carried source
  checkpoint) into the real target: revision trees, conflicts, schema and
  signature checks and per-document refusals are the network's own. Then the
  target *adopts* session S at the bundle's last sequence, so the two real
  checkpoints share S: a later network sync resumes after what the bundle
  carried (checkpoint.common_seq: same session on both sides).
- **Acknowledgements**: a bundle also carries the sender's checkpoints of the
  replications it *receives*; the recipient stores them as ``bundle-ack`` docs,
  so its next export starts where the other side confirmed (a round trip
  village -> district -> village leaves both knowing what the other has).
- Idempotent by construction: revisions already present are skipped by the
  target's ``_revs_diff``; an old bundle after a newer one starts from the newest
  session both sides share, so it changes nothing beyond the union.
- A lost bundle loses nothing: exports start from the *acknowledged* checkpoint,
  so the next bundle carries again whatever was never confirmed. (The session
  history is capped at ``checkpoint.HISTORY_SIZE``: after ten exports with no
  acknowledgement the next one starts from 0 and carries the whole database.)
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync_server.errors import BundleError, Forbidden, NotFound

from .checkpoint import Checkpointer
from .local_peer import LocalPeer
from .peer import ChangesPage, Peer, PeerInfo, Traffic
from .replication_id import replication_id
from .replicator import Options, Replicator, Result

ACK_PREFIX = "bundle-ack-"
# ``_local`` doc of revisions received by bundle, per sending database: they need not go back.
KNOWN_ID = "bundle-known"


@dataclass(frozen=True)
class Route:
    """One one-way replication between the two sides, as the network replicator names it."""

    source_root: str
    source_db: str
    target_root: str
    target_db: str
    selector: dict[str, Any] | None = None

    @property
    def source(self) -> str:
        return f"{self.source_root}/{self.source_db}"

    @property
    def target(self) -> str:
        return f"{self.target_root}/{self.target_db}"

    @property
    def rep_id(self) -> str:
        return replication_id(self.source, self.target, None, self.selector)


def routes_for(legs: list[list[Any]], kiosk_root: str, hub_root: str) -> list[Route]:
    """The replications of a kiosk's sync legs ([local db, hub db, "push"|"pull", selector])."""
    found = []
    for local, remote, direction, selector in legs:
        if direction == "push":
            found.append(Route(kiosk_root, local, hub_root, remote))
        else:
            found.append(Route(hub_root, remote, kiosk_root, local, selector))
    return found


@dataclass
class Side:
    """The replica this process works on: its identity root and a peer per database."""

    root: str
    open_peer: Callable[[str], Peer]

    @classmethod
    def local(cls, server: Any) -> Side:
        return cls(server.uuid, lambda db: LocalPeer(server, db))

    @classmethod
    def http(cls, url: str) -> Side:
        from .http_peer import HttpPeer

        probe = HttpPeer(url.rstrip("/") + "/_bundle_probe")
        try:
            identity = probe.info().identity
        finally:
            probe.close()
        return cls(identity[: -len("/_bundle_probe")], lambda db: HttpPeer(url.rstrip("/") + "/" + db))


# -- the two peers --------------------------------------------------------------------

class BundleWriter:
    """The target of an export: says every revision is missing and keeps what it is sent."""

    def __init__(self, identity: str, acknowledged: dict | None, known: dict[str, list[str]] | None = None) -> None:
        self.identity, self.acknowledged = identity, acknowledged
        self.known = known or {}
        self.name, self.remote, self.traffic = f"bundle:{identity}", False, Traffic()
        self.docs: list[dict] = []
        self.checkpoint: dict | None = None
        self._lock = threading.Lock()  # the replicator may write several batches at once

    def info(self, create: bool = False) -> PeerInfo:
        return PeerInfo(self.identity, None)

    def changes(self, since: Any, limit: int, *, doc_ids: list[str] | None = None,
                selector: dict | None = None, wait: float = 0.0) -> ChangesPage:
        return ChangesPage([], since, 0)

    def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, dict]:
        """Everything is missing, except revisions that came from the target in a bundle."""
        found = {}
        for doc_id, wanted in revs.items():
            missing = [rev for rev in wanted if rev not in self.known.get(doc_id, ())]
            if missing:
                found[doc_id] = {"missing": missing}
        return found

    def bulk_get(self, wanted: list[dict], attachments: bool = False) -> list[dict]:
        return []

    def attachment(self, doc_id: str, rev: str, name: str, offset: int = 0) -> bytes:
        raise NotFound("a bundle being written serves no attachments")

    def bulk_docs(self, docs: list[dict]) -> list[dict]:
        copied = copy.deepcopy(docs)
        with self._lock:
            self.docs.extend(copied)
        return []

    def get_local(self, local_id: str) -> dict | None:
        return copy.deepcopy(self.acknowledged)

    def put_local(self, local_id: str, doc: dict) -> str:
        self.checkpoint = copy.deepcopy(doc)
        return "0-1"

    def close(self) -> None:
        pass


class BundleReader:
    """The source of an import: one carried replication, served from the bundle's payload."""

    def __init__(self, leg: dict[str, Any]) -> None:
        self.leg = leg
        self.name, self.remote, self.traffic = f"bundle:{leg['source']}", False, Traffic()
        self.rows = [_row(item) for item in leg["rows"]]
        self._docs = {(d["_id"], d["_rev"]): d for d in leg["docs"]}
        self._index = {_seq_key(row["seq"]): i for i, row in enumerate(self.rows)}
        self.written: dict | None = None

    def info(self, create: bool = False) -> PeerInfo:
        return PeerInfo(self.leg["source"], self.leg["last_seq"])

    def changes(self, since: Any, limit: int, *, doc_ids: list[str] | None = None,
                selector: dict | None = None, wait: float = 0.0) -> ChangesPage:
        start = self._start(since)
        rows = self.rows[start:start + limit]
        end = start + len(rows)
        last_seq = rows[-1]["seq"] if rows and end < len(self.rows) else self.leg["last_seq"]
        return ChangesPage(copy.deepcopy(rows), last_seq, len(self.rows) - end)

    def _start(self, since: Any) -> int:
        """Index of the first row after ``since`` (a sequence of the bundle's source)."""
        if _seq_key(since) == _seq_key(self.leg["last_seq"]):
            return len(self.rows)
        if _seq_key(since) in self._index:
            return self._index[_seq_key(since)] + 1
        number = _seq_number(since)
        if number is None or _seq_key(since) == _seq_key(self.leg["start_seq"]):
            return 0
        # A sequence between the bundle's rows (the target had synced part of it by network):
        # compare by the numeric prefix that CouchDB, pouchdb-server and this server all give.
        for i, row in enumerate(self.rows):
            row_number = _seq_number(row["seq"])
            if row_number is None or row_number > number:
                return i
        return len(self.rows)

    def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, dict]:
        return {}

    def bulk_get(self, wanted: list[dict], attachments: bool = False) -> list[dict]:
        return [copy.deepcopy(self._docs[key]) for key in ((w["id"], w["rev"]) for w in wanted) if key in self._docs]

    def attachment(self, doc_id: str, rev: str, name: str, offset: int = 0) -> bytes:
        try:
            return base64.b64decode(self._docs[(doc_id, rev)]["_attachments"][name]["data"])[offset:]
        except KeyError:
            raise NotFound(f"the bundle carries no data for {doc_id}/{name}") from None

    def bulk_docs(self, docs: list[dict]) -> list[dict]:
        raise Forbidden("a bundle is read-only")

    def get_local(self, local_id: str) -> dict | None:
        if local_id == self.leg["rep_id"] and self.leg.get("checkpoint"):
            return copy.deepcopy(self.leg["checkpoint"])
        return None

    def put_local(self, local_id: str, doc: dict) -> str:
        self.written = copy.deepcopy(doc)
        return "0-1"

    def close(self) -> None:
        pass


class _Recorder:
    """A source peer that remembers the ``_changes`` rows it served: their sequences go in the bundle."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.rows: list[dict] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.peer, name)

    def changes(self, since: Any, limit: int, **kwargs: Any) -> ChangesPage:
        page = self.peer.changes(since, limit, **kwargs)
        self.rows.extend(page.rows)
        return page


# -- export and import of the carried replications ------------------------------------

def collect(side: Side, outgoing: list[Route], incoming: list[Route]) -> tuple[list[dict], list[dict]]:
    """Export: the legs (what each outgoing route's target lacks) and the acks of incoming routes.

    :raises BundleError: when a source cannot be read to the end.
    """
    legs = []
    for route in outgoing:
        leg = _export_leg(side.open_peer(route.source_db), route)
        if leg is not None:
            legs.append(leg)
    acks = []
    for route in incoming:
        peer = side.open_peer(route.target_db)
        try:
            doc = peer.get_local(route.rep_id)
        finally:
            peer.close()
        if doc:
            acks.append({"rep_id": route.rep_id, "source": route.source, "target": route.target, "doc": _bare(doc)})
    return legs, acks


def _export_leg(source: Peer, route: Route) -> dict | None:
    try:
        try:
            source.info()
        except NotFound:
            return None  # nothing written there yet: nothing to carry
        acknowledged = source.get_local(ACK_PREFIX + route.rep_id)
        known_doc = source.get_local(KNOWN_ID) or {}
        known = (known_doc.get("by_source") or {}).get(route.target, {})
        recorder = _Recorder(source)
        writer = BundleWriter(route.target, _bare(acknowledged) if acknowledged else None, known)
        result = Replicator(recorder, writer, Options(selector=route.selector)).run()
        if not result.ok:
            raise BundleError(f"cannot read {route.source_db} to the end: {result.error}")
        _prune_known(source, known_doc, route.target, {row["id"] for row in recorder.rows})
        if not recorder.rows:
            return None
        checkpoint = source.get_local(route.rep_id)
    finally:
        source.close()
    return {"rep_id": route.rep_id, "source": route.source, "target": route.target, "selector": route.selector,
            "start_seq": result.start_seq, "last_seq": result.last_seq,
            "checkpoint": _bare(checkpoint) if checkpoint else None,
            "rows": [[r["seq"], r["id"], [c["rev"] for c in r["changes"]], bool(r.get("deleted"))]
                     for r in recorder.rows],
            "docs": writer.docs}


def check(legs: list[dict], acks: list[dict], incoming: list[Route], outgoing: list[Route]) -> None:
    """Refuse the whole bundle when it carries a replication this side does not take from its sender.

    :raises BundleError: naming the replication; run before anything is applied.
    """
    takes = {r.rep_id: r for r in incoming}
    for leg in legs:
        route = takes.get(str(leg.get("rep_id")))
        if route is None or (leg.get("source"), leg.get("target")) != (route.source, route.target):
            raise BundleError(f"bundle carries a replication this replica does not take from its sender "
                              f"({leg.get('source')} -> {leg.get('target')})")
    gives = {r.rep_id for r in outgoing}
    for ack in acks:
        if ack.get("rep_id") not in gives:
            raise BundleError(f"bundle acknowledges a replication this replica does not send "
                              f"({ack.get('source')} -> {ack.get('target')})")


def apply(side: Side, legs: list[dict], acks: list[dict], incoming: list[Route],
          outgoing: list[Route]) -> list[tuple[Route, Result]]:
    """Import: replicate each carried leg into this side, adopt its session, store the acks."""
    check(legs, acks, incoming, outgoing)
    by_rep = {r.rep_id: r for r in incoming}
    done = []
    for leg in legs:
        route = by_rep[leg["rep_id"]]
        target = side.open_peer(route.target_db)
        try:
            reader = BundleReader(leg)
            result = Replicator(reader, target, Options(selector=route.selector)).run()
            if result.ok and _seq_key(result.last_seq) == _seq_key(leg["last_seq"]):
                _adopt(route.rep_id, reader, target, result)
                _remember_known(target, leg)
        finally:
            target.close()
        done.append((route, result))
    gives = {r.rep_id: r for r in outgoing}
    for ack in acks:
        peer = side.open_peer(gives[ack["rep_id"]].source_db)
        try:
            _record_ack(peer, ack["rep_id"], ack["doc"])
        finally:
            peer.close()
    return done


def _adopt(rep_id: str, reader: BundleReader, target: Peer, result: Result) -> None:
    """Record the sender's session on the target too, so both real checkpoints share it."""
    session = (reader.leg.get("checkpoint") or {}).get("session_id")
    current = target.get_local(rep_id)
    if not session or any(h.get("session_id") == session for h in (current or {}).get("history", [])):
        return
    checkpointer = Checkpointer(rep_id, reader, target, session_id=session)
    checkpointer.read()
    checkpointer.write(reader.leg["last_seq"], result.stats(), final=True)


def _remember_known(target: Peer, leg: dict) -> None:
    """Note the revisions the sender has (its ``_changes`` rows list every leaf it holds):
    an export back to it skips them."""
    doc = target.get_local(KNOWN_ID) or {}
    mine = doc.setdefault("by_source", {}).setdefault(leg["source"], {})
    for _, doc_id, leaves, _ in leg["rows"]:
        revs = mine.setdefault(doc_id, [])
        revs.extend(rev for rev in leaves if rev not in revs)
    target.put_local(KNOWN_ID, doc)


def _prune_known(source: Peer, doc: dict, target: str, exported_ids: set[str]) -> None:
    """Forget received revisions of documents that did not change since the acknowledged checkpoint.

    An export reads every change after that checkpoint: a document it did not read
    has nothing the other side lacks, whatever it received before.
    """
    mine = (doc.get("by_source") or {}).get(target)
    if not mine:
        return
    kept = {doc_id: revs for doc_id, revs in mine.items() if doc_id in exported_ids}
    if len(kept) != len(mine):
        doc["by_source"][target] = kept
        source.put_local(KNOWN_ID, doc)


def _record_ack(peer: Peer, rep_id: str, doc: dict) -> None:
    """Keep the other side's checkpoint as acknowledged, unless a newer one is kept already."""
    local_id = ACK_PREFIX + rep_id
    current = peer.get_local(local_id)
    if current and doc.get("session_id") in {h.get("session_id") for h in current.get("history", [])}:
        return
    body = _bare(doc)
    if current and "_rev" in current:
        body["_rev"] = current["_rev"]
    try:
        peer.put_local(local_id, body)
    except NotFound:
        pass  # the database is gone here: nothing to acknowledge


def _bare(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("_id", "_rev")}


def _row(item: list[Any]) -> dict[str, Any]:
    seq, doc_id, revs, deleted = item
    return {"seq": seq, "id": doc_id, "changes": [{"rev": r} for r in revs], **({"deleted": True} if deleted else {})}


def _seq_key(seq: Any) -> str:
    return json.dumps(seq)


def _seq_number(seq: Any) -> int | None:
    if isinstance(seq, int) and not isinstance(seq, bool):
        return seq
    try:
        return int(str(seq).split("-", 1)[0])
    except ValueError:
        return None
