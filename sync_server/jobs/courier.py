"""Carrying bundles between a kiosk and its hub: who sends what, and what is refused (#6).

``export_bundle`` and ``import_bundle`` wrap the carried replications of
``bundle.py`` in an envelope (bundle id, a number per sender, the cell, the
acknowledgements) sealed by ``sync_server.security.bundle_crypto``. Every check happens
before anything is written: the file's integrity and signer, that it is meant for
this side's key and cell, that it was not imported before, and that each carried
replication is one this side takes from that sender (a kiosk may send only its
own cell's records; a hub only what the kiosk's legs pull).

Roles follow the cards (``bundle_crypto.Card``): a kiosk's card lists its sync
legs, a hub's does not. A kiosk exports its push legs and acknowledges its pull
legs; the hub, ``--for`` a cell, exports that kiosk's pull legs and acknowledges
its push legs.

Replays: importing the same bundle twice is refused ("already imported"). An
older bundle after a newer one is applied and changes nothing beyond what the
newer one carried: revisions already present are skipped and checkpoints resume
from the newest session both sides share.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from replication.bundle import Route, Side, apply, collect, routes_for
from replication.replicator import Result
from sync_server.errors import BundleError
from sync_server.security.bundle_crypto import Card, KeyStore, fingerprint

# Version of the payload inside the sealed file.
PAYLOAD_FORMAT = 1


@dataclass
class Exported:
    """What an export wrote."""

    data: bytes
    number: int
    docs: int
    legs: list[tuple[str, int]] = field(default_factory=list)  # (source db, documents)
    acks: int = 0


@dataclass
class Imported:
    """What an import did."""

    sender: str
    number: int
    results: list[tuple[Route, Result]] = field(default_factory=list)
    acks: int = 0

    @property
    def ok(self) -> bool:
        return all(result.ok for _, result in self.results)


def split_routes(side: Side, legs: list[list[Any]], kiosk_root: str, hub_root: str) -> tuple[list[Route], list[Route]]:
    """(outgoing, incoming) routes of this side."""
    routes = routes_for(legs, kiosk_root, hub_root)
    return [r for r in routes if r.source_root == side.root], [r for r in routes if r.target_root == side.root]


def export_bundle(store: KeyStore, side: Side, *, own_legs: list[list[Any]] | None = None,
                  own_cell: str | None = None, for_cell: str | None = None,
                  dbs: list[str] | None = None) -> Exported:
    """A sealed bundle of what the other side has not acknowledged.

    Without ``for_cell`` this side is a kiosk (``own_legs``, ``own_cell``) writing for
    the trusted ``hub``; with it, a hub or district office writing for that cell's kiosk.
    :param dbs: only these local source databases (acknowledgements always go).
    :raises BundleError: when a source cannot be read; StartupError for a missing key or peer.
    """
    if for_cell is None:
        if not own_legs or not own_cell:
            raise BundleError("this replica has no cell to sync (set sync.cell_db), or give --for CELL")
        recipient = store.peer("hub")
        legs, kiosk_root, hub_root, cell = own_legs, side.root, recipient.root, own_cell
    else:
        recipient = store.peer(for_cell)
        legs, kiosk_root, hub_root, cell = recipient.legs or [], recipient.root, side.root, for_cell
    outgoing, incoming = split_routes(side, legs, kiosk_root, hub_root)
    if dbs is not None:
        unknown = set(dbs) - {r.source_db for r in outgoing}
        if unknown:
            raise BundleError(f"no replication to {recipient.name} from {', '.join(sorted(unknown))}")
        outgoing = [r for r in outgoing if r.source_db in dbs]
    carried, acks = collect(side, outgoing, incoming)
    number = store.next_number()
    payload = {"format": PAYLOAD_FORMAT, "id": uuid.uuid4().hex, "number": number, "created": int(time.time()),
               "sender": store.key_id, "recipient": recipient.key_id, "cell": cell, "legs": carried, "acks": acks}
    return Exported(store.seal(payload, recipient), number, sum(len(leg["docs"]) for leg in carried),
                    [(_db(leg["source"]), len(leg["docs"])) for leg in carried], len(acks))


def import_bundle(store: KeyStore, side: Side, data: bytes, *, own_legs: list[list[Any]] | None = None,
                  own_cell: str | None = None) -> Imported:
    """Check a bundle as a whole, then apply it through the replicator and record its number.

    :raises BundleError: for a refused bundle; nothing has been applied then.
    """
    sender, payload = store.open(data)
    legs, kiosk_root, hub_root = _roles(sender, side, payload, own_legs, own_cell)
    if payload.get("format") != PAYLOAD_FORMAT or payload.get("recipient") != store.key_id:
        raise BundleError("bundle payload is not for this side or of an unknown format")
    number = int(payload.get("number", 0))
    if store.imported(sender.key_id, number):
        raise BundleError(f"bundle number {number} from key {fingerprint(sender.key_id)} was already imported; "
                          "nothing applied")
    outgoing, incoming = split_routes(side, legs, kiosk_root, hub_root)
    results = apply(side, payload.get("legs") or [], payload.get("acks") or [], incoming, outgoing)
    done = Imported(sender.name, number, results, len(payload.get("acks") or []))
    if done.ok:
        store.mark_imported(sender.key_id, number)
    return done


def _roles(sender: Card, side: Side, payload: dict, own_legs: list[list[Any]] | None,
           own_cell: str | None) -> tuple[list[list[Any]], str, str]:
    """(legs, kiosk root, hub root) for a bundle from ``sender``, after the cell check."""
    cell = payload.get("cell")
    if sender.legs is not None:  # from a kiosk: this side is its hub
        if cell != sender.cell:
            raise BundleError(f"bundle is meant for cell {cell}, but its signer's key belongs to cell {sender.cell}")
        return sender.legs, sender.root, side.root
    if not own_legs or not own_cell:
        raise BundleError("bundle comes from a hub, but this replica has no cell to sync (set sync.cell_db)")
    if cell != own_cell:
        raise BundleError(f"bundle is meant for cell {cell}, not {own_cell}")
    return own_legs, side.root, sender.root


def _db(identity: str) -> str:
    return identity.rsplit("/", 1)[-1]
