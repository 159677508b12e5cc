"""The province's nightly job: pull every cell's database into one merged replica, then report.

The pull is incremental: each cell is its own checkpointed replication into the
merged database, so a cell where nothing changed costs one ``_changes``
request (plus a checkpoint read). The reports are then computed from the merged
replica alone (``sync_server.handbook.reports``), with no HTTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replication.http_peer import Connection
from replication.local_peer import LocalPeer
from replication.replicator import Replicator
from schemas.hierarchy import cell_db_name, load_hierarchy
from sync_server.errors import PeerUnavailable, StartupError
from sync_server.handbook import reports
from sync_server.settings import Settings
from sync_server.store import Server


@dataclass
class Nightly:
    """What one nightly run did."""

    month: str
    cells: int = 0
    cells_changed: int = 0
    docs_written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell, error)
    seconds: float = 0.0
    report: Any = None
    files: dict[str, Path] = field(default_factory=dict)


def current_month() -> str:
    return time.strftime("%Y-%m", time.localtime())


def run_nightly(settings: Settings, server: Server, month: str | None = None,
                checkpoint_cache: dict[str, Any] | None = None) -> Nightly:
    """Pull every cell from the hub into the merged database, then write the month's reports.

    A cell that cannot be pulled is recorded and the others go on; the report
    then says which cells are missing from it.
    """
    province = settings.province
    if not province.hub_url or not province.hierarchy:
        raise StartupError("province.hub_url and province.hierarchy must be set in config.yaml")
    hierarchy = load_hierarchy(province.hierarchy)
    done = Nightly(month or current_month())
    started = time.monotonic()
    merged = LocalPeer(server, province.merged_db)
    # One connection for every cell: one link, the hub's uuid asked once.
    with Connection(province.hub_url, timeout=settings.sync.timeout_seconds, ca_bundle=settings.sync.ca_bundle) as hub:
        hub.welcome()  # a hub that is down stops the night here
        cells = hierarchy.cells()
        for index, cell in enumerate(cells):
            done.cells += 1
            result = Replicator(hub.peer(cell_db_name(cell.code)), merged, checkpoint_cache=checkpoint_cache).run()
            if result.ok:
                done.cells_changed += bool(result.docs_written)
                done.docs_written += result.docs_written
                continue
            done.failed.append((cell.code, result.error or "unknown error"))
            if not _hub_answers(hub):  # the hub went away: do not spend hours retrying every cell
                done.failed += [(c.code, "not tried: the hub stopped answering") for c in cells[index + 1:]]
                break
    merged_db = server.get_or_create(province.merged_db)
    done.report = reports.compute(merged_db, hierarchy, done.month)
    done.report.missing_cells = [code for code, _ in done.failed]
    done.files = reports.write_reports(done.report, Path(province.report_dir) / done.month)
    done.seconds = time.monotonic() - started
    return done


def _hub_answers(hub: Connection) -> bool:
    try:
        hub.request("GET", "/")
        return True
    except PeerUnavailable:
        return False
