"""The kiosk's sync round: push the cell's records, pull them back, pull the handbook.

With ``server.public_name`` set, the round also carries the kiosk's side of the
certificate round (``certificates.kiosk_step``): before the legs, a request for its
certificate is written into the cell's database when needed (the push takes it up);
after them, a certificate the province returned (the pull brought it) is checked and
installed. That step reads and writes only local files and the local database, so a
kiosk that cannot reach the hub still serves the certificate it has.

Plain functions over the settings and an open store; the scheduler only decides
when to call them. There is no separate probe: the round's first request to
the hub is it. A push with nothing new sends nothing (its checkpoints are
cached), so on an idle round that first request is the cell pull's
``_changes``, and when the hub does not answer nothing else is tried.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from replication.http_peer import Connection, HttpPeer, split_url
from replication.local_peer import LocalPeer
from replication.replicator import Options, Progress, Replicator, Result
from sync_server.errors import SyncError
from sync_server.jobs.certificates import KioskState, kiosk_step
from sync_server.jobs.local_dbs import ensure_local_dbs
from sync_server.security.audit import audit_for
from sync_server.security.secrets_source import read_secret, with_credentials
from sync_server.settings import Settings
from sync_server.store import Server
from sync_server.sync_status import SyncStatus, add_bytes, add_refused

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leg:
    """One replication of a round: a local database, its hub database, a direction."""

    local: str
    remote: str
    direction: str  # "push" or "pull"
    selector: dict | None = None


@dataclass
class Round:
    """What one round did."""

    ok: bool
    results: list[tuple[Leg, Result]] = field(default_factory=list)
    error: str | None = None
    certificate: KioskState | None = None


def legs(settings: Settings, round_number: int) -> list[Leg]:
    """The replications of round ``round_number`` (0-based): push the cell, pull it, pull the handbook."""
    sync = settings.sync
    found = []
    if sync.cell_db:
        remote = sync.hub_cell_db or sync.cell_db
        found += [Leg(sync.cell_db, remote, "push"), Leg(sync.cell_db, remote, "pull")]
    if sync.handbook_db and round_number % sync.handbook_every == 0:
        found.append(Leg(sync.handbook_db, sync.handbook_db, "pull", sync.handbook_selector))
    return found


def hub_display(url: str) -> str:
    """The hub's URL without credentials, for status screens."""
    root = split_url(url.rstrip("/") + "/x")[0]
    return root + "/"


class Syncer:
    """Runs sync rounds for one kiosk; keeps peers and checkpoint caches between rounds."""

    def __init__(self, settings: Settings, server: Server, status: SyncStatus | None = None) -> None:
        if not settings.sync.hub_url:
            raise ValueError("sync.hub_url is not set")
        self.settings, self.server = settings, server
        self.status = status or SyncStatus(server.data_dir)
        self.rounds = 0
        self.hub_url = settings.sync.hub_url
        if settings.sync.hub_credentials:
            self.hub_url = with_credentials(self.hub_url, read_secret(settings.sync.hub_credentials))
        self._connection: Connection | None = None  # one link to the hub for every database
        self._peers: dict[str, HttpPeer] = {}
        self._checkpoints: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _hub(self, db: str) -> HttpPeer:
        if self._connection is None:
            self._connection = Connection(self.hub_url, timeout=self.settings.sync.timeout_seconds,
                                          ca_bundle=self.settings.sync.ca_bundle)
        if db not in self._peers:
            self._peers[db] = self._connection.peer(db)
        return self._peers[db]

    def _options(self, leg: Leg, continuous: bool = False) -> Options:
        sync = self.settings.sync
        return Options(selector=leg.selector, batch_size=sync.batch_size, batch_bytes=sync.batch_bytes,
                       continuous=continuous, idle_seconds=sync.live_seconds or None,
                       poll_seconds=min(25.0, float(sync.live_seconds or 25)))

    def _replicator(self, leg: Leg, progress: Progress | None, continuous: bool = False) -> Replicator:
        local, hub = LocalPeer(self.server, leg.local), self._hub(leg.remote)
        source, target = (hub, local) if leg.direction == "pull" else (local, hub)
        return Replicator(source, target, self._options(leg, continuous), progress,
                          checkpoint_cache=self._checkpoints)

    def run_round(self, progress: Progress | None = None, now: datetime.datetime | None = None) -> Round:
        """One round: every leg in order; stops at the first leg that cannot reach the hub.

        :param now: the clock of the certificate step's renewal decision (tests fake it).
        """
        with self._lock:
            started = time.time()
            self.status.update(lambda s: s.update(running=True, pid=os.getpid(), round_started=int(started),
                                                  hub=hub_display(self.settings.sync.hub_url or "")))
            done = Round(ok=True)
            try:
                ensure_local_dbs(self.settings, self.server)  # a missing cell database is pulled, not pushed (#13)
                self._certificate(done, now)
                for leg in legs(self.settings, self.rounds):
                    result = self._replicator(leg, progress).run()
                    done.results.append((leg, result))
                    if not result.ok:
                        done.ok, done.error = False, f"{leg.direction} {leg.local}: {result.error}"
                        break
                    if leg.direction == "pull" and result.docs_written and self._pushes(leg):
                        # What the hub sent changed the cell after the push's checkpoint, and the status
                        # counts documents changed since that checkpoint as waiting to go up. Push again
                        # now (the next round would: the hub answers one _revs_diff with "have them all"),
                        # so its checkpoint passes them; a record a phone wrote meanwhile goes up with it.
                        push = Leg(leg.local, leg.remote, "push")
                        again = self._replicator(push, progress).run()
                        done.results.append((push, again))
                        if not again.ok:
                            done.ok, done.error = False, f"push {leg.local}: {again.error}"
                            break
                if self._certificate(done, now) and done.ok and self.settings.sync.cell_db:
                    # a request written after the pull (a returned certificate was refused) goes up now
                    push = Leg(self.settings.sync.cell_db, self.settings.sync.hub_cell_db or self.settings.sync.cell_db,
                               "push")
                    again = self._replicator(push, progress).run()
                    done.results.append((push, again))
                    if not again.ok:
                        done.ok, done.error = False, f"push {push.local}: {again.error}"
            finally:
                self.rounds += 1
                self._record(done, started)
            return done

    def _certificate(self, done: Round, now: datetime.datetime | None) -> bool:
        """The kiosk's side of the certificate round; whether it wrote a request. Its failure is logged and
        never stops the sync."""
        try:
            state = kiosk_step(self.settings, self.server, now)
        except SyncError as exc:
            log.error("certificate round: %s", exc)
            return False
        wrote = state is not None and state.requested is not None
        if state is not None:
            if done.certificate is not None:  # the step after the legs keeps what the one before did
                state.requested = state.requested or done.certificate.requested
                state.installed = state.installed or done.certificate.installed
            done.certificate = state
        return wrote

    def _pushes(self, pull: Leg) -> bool:
        """A push leg goes with this pull (the cell's database)."""
        return any(leg.direction == "push" and leg.local == pull.local for leg in legs(self.settings, self.rounds))

    def run_live(self) -> Round:
        """Push and pull the cell live (longpoll) until idle for ``live_seconds`` or the link drops."""
        cell = [leg for leg in legs(self.settings, 1) if leg.local == self.settings.sync.cell_db]
        replicators = [self._replicator(leg, None, continuous=True) for leg in cell]
        results: list[Result] = [Result() for _ in replicators]
        threads = [threading.Thread(target=lambda i=i, r=r: results.__setitem__(i, r.run()), daemon=True)
                   for i, r in enumerate(replicators)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = Round(ok=all(r.ok for r in results), results=list(zip(cell, results)))
        done.error = next((r.error for r in results if not r.ok), None)
        self._record(done, time.time())
        return done

    def _record(self, done: Round, started: float) -> None:
        def change(status: dict[str, Any]) -> None:
            now = int(time.time())
            status.update(running=False, pid=None)
            status["last_round"] = {"started": int(started), "finished": now, "ok": done.ok, "error": done.error,
                                    "legs": [_leg_summary(leg, r) for leg, r in done.results]}
            for leg, result in done.results:
                add_bytes(status, result.bytes_sent, result.bytes_received)
                add_refused(status, leg.local, result.errors)
                if result.ok:
                    status.setdefault(f"last_{leg.direction}_ok", {})[leg.local] = now
                    if leg.direction == "push":
                        status.setdefault("pushed_seq", {})[leg.local] = str(result.last_seq)
            if done.ok:
                status["failures"] = 0
            else:
                status["failures"] = status.get("failures", 0) + 1
                status["last_error"] = {"time": now, "message": done.error}

        self.status.update(change)
        audit_for(self.server.data_dir).record(
            "sync", ok=done.ok, error=done.error,
            legs=[f"{leg.direction} {leg.local}: {r.docs_written} docs, {r.doc_write_failures} refused"
                  for leg, r in done.results])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _leg_summary(leg: Leg, result: Result) -> dict[str, Any]:
    return {"db": leg.local, "direction": leg.direction, "ok": result.ok, "docs_written": result.docs_written,
            "refused": result.doc_write_failures, "bytes_sent": result.bytes_sent,
            "bytes_received": result.bytes_received, "requests": result.requests, "error": result.error}
