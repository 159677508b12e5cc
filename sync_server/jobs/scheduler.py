"""APScheduler wiring for the kiosk's sync: when to run a round, nothing else.

One interval job (``sync.interval_seconds``, ``max_instances=1``, coalesced).
After a failed round the next one is moved to an exponential back-off with
jitter; after a good one, a live (longpoll) sync runs while the link holds if
``sync.live_seconds`` is set.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from replication import backoff
from sync_server.settings import Settings
from sync_server.store import Server

from .kiosk_sync import Syncer

log = logging.getLogger(__name__)
JOB_ID = "sync-with-hub"


class SyncScheduler:
    """Runs the kiosk's sync rounds in a background thread of the server process."""

    def __init__(self, settings: Settings, server: Server) -> None:
        self.settings = settings
        self.syncer = Syncer(settings, server)
        self.failures = 0
        self._scheduler = BackgroundScheduler(daemon=True)

    def start(self) -> None:
        """Schedule the job; the first round runs at once."""
        self._scheduler.add_job(self.tick, "interval", seconds=self.settings.sync.interval_seconds, id=JOB_ID,
                                max_instances=1, coalesce=True, next_run_time=datetime.now())
        self._scheduler.start()

    def tick(self) -> None:
        """One scheduled round, then the live sync or the back-off."""
        done = self.syncer.run_round()
        if done.ok and self.settings.sync.live_seconds:
            done = self.syncer.run_live()
        if done.ok:
            self.failures = 0
            return
        self.failures += 1
        wait = backoff.delay(self.failures, self.settings.sync.backoff_seconds, self.settings.sync.backoff_max_seconds)
        log.warning("sync failed (%s); next attempt in %.0f s", done.error, wait)
        when = datetime.now() + timedelta(seconds=wait)
        self.syncer.status.update(lambda s: s.update(next_attempt=int(time.time() + wait)))
        if self._scheduler.running:
            self._scheduler.modify_job(JOB_ID, next_run_time=when)

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)
        self.syncer.close()


class NightlyScheduler:
    """The province's nightly pull and reports, as an APScheduler cron job."""

    def __init__(self, settings: Settings, server: Server) -> None:
        self.settings, self.server = settings, server
        self.checkpoints: dict[str, Any] = {}
        self._scheduler = BackgroundScheduler(daemon=True)

    def start(self) -> None:
        hour, minute = (int(part) for part in self.settings.province.report_time.split(":"))
        self._scheduler.add_job(self.run, "cron", hour=hour, minute=minute, id="nightly-report",
                                max_instances=1, coalesce=True)
        self._scheduler.start()

    def run(self) -> None:
        from .nightly import run_nightly

        try:
            done = run_nightly(self.settings, self.server, checkpoint_cache=self.checkpoints)
            log.warning("nightly: %d cells pulled (%d changed), %d failed, %.0f s",
                        done.cells, done.cells_changed, len(done.failed), done.seconds)
        except Exception:  # a failed night must not stop the scheduler; the next night resumes
            log.exception("nightly report failed")

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)


class CertificateScheduler:
    """The province's certificate job (issue #19): every ``province.cert_interval_seconds``, answer the
    kiosks' pending certificate requests on the hub."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._scheduler = BackgroundScheduler(daemon=True)
        self._issuer: Any = None

    def start(self) -> None:
        self._scheduler.add_job(self.run, "interval", seconds=self.settings.province.cert_interval_seconds,
                                id="kiosk-certificates", max_instances=1, coalesce=True, next_run_time=datetime.now())
        self._scheduler.start()

    def run(self) -> None:
        from .certificates import issue_pending, issuer_for

        try:
            self._issuer = self._issuer or issuer_for(self.settings)  # one ACME account session for every run
            done = issue_pending(self.settings, self._issuer)
            if done.pending:
                log.warning("certificates: %d pending, %d issued, %d failed", done.pending, len(done.issued),
                            len(done.failed))
        except Exception:  # a failed run must not stop the scheduler; the next one tries again
            log.exception("certificate job failed")

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)


def start_if_configured(settings: Settings, server: Server) -> list[Any]:
    """Start the kiosk's sync, the province's nightly job and its certificate job, as configured; returns them."""
    started: list[Any] = []
    if settings.sync.hub_url:
        started.append(SyncScheduler(settings, server))
    if settings.province.hub_url:
        started.append(NightlyScheduler(settings, server))
    if settings.province.hub_url and settings.province.acme_directory:
        started.append(CertificateScheduler(settings))
    for scheduler in started:
        scheduler.start()
    return started
