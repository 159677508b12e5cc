"""The kiosk's sync status: what the last rounds did, kept in ``DATA_DIR/sync-status.json``.

The replicator's jobs write it (atomically: temp file, then rename); the HTTP
API and ``sync-server status`` read it. "Synced" is only ever claimed when the
last round finished without error and nothing is waiting to go up, so a round
that timed out never shows as synced.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .private_file import write_atomic

# Refused documents remembered (newest first): enough to show and fix, bounded.
REFUSED_KEPT = 100
# Days of byte counts kept.
DAYS_KEPT = 31
FILE_NAME = "sync-status.json"


def today() -> str:
    return time.strftime("%Y-%m-%d", time.localtime())


class SyncStatus:
    """Read and update the status file of one data directory."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        """The stored status ({} before the first round)."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the stored status and write it back atomically."""
        with self._lock:
            status = self.read()
            change(status)
            write_atomic(self.path, json.dumps(status, ensure_ascii=False, indent=1))
            return status


def add_bytes(status: dict[str, Any], sent: int, received: int) -> None:
    """Count bytes on the wire for today, dropping days older than DAYS_KEPT."""
    days = status.setdefault("bytes", {})
    day = days.setdefault(today(), {"sent": 0, "received": 0})
    day["sent"] += sent
    day["received"] += received
    for old in sorted(days)[:-DAYS_KEPT]:
        del days[old]


def add_refused(status: dict[str, Any], db: str, errors: list[dict[str, Any]]) -> None:
    """Remember documents the other side refused, newest first, bounded."""
    stamped = [{"db": db, "time": int(time.time()), **e} for e in errors]
    status["refused"] = (stamped + status.get("refused", []))[:REFUSED_KEPT]


def summary(status: dict[str, Any], waiting_up: dict[str, int], quarantined: int = 0) -> dict[str, Any]:
    """The status as shown to people and the API: stored facts plus what is derived from them."""
    last = status.get("last_round") or {}
    running = bool(status.get("running")) and _alive(status.get("pid"))
    day = status.get("bytes", {}).get(today(), {"sent": 0, "received": 0})
    return {
        "configured": bool(status.get("hub")),
        "hub": status.get("hub"),
        "running": running,
        "synced": bool(last.get("ok")) and not running and not any(waiting_up.values()),
        "last_round": last or None,
        "last_push_ok": status.get("last_push_ok", {}),
        "last_pull_ok": status.get("last_pull_ok", {}),
        "waiting_up": waiting_up,
        "refused": status.get("refused", []),
        "quarantined": quarantined,
        "last_error": status.get("last_error"),
        "failures": status.get("failures", 0),
        "next_attempt": status.get("next_attempt"),
        "bytes_today": day,
        "bytes_by_day": status.get("bytes", {}),
    }


def waiting_up(server: Any, status: dict[str, Any], cell_db: str | None) -> dict[str, int]:
    """Documents of the cell changed since the last good push (all of them before any push)."""
    if not cell_db or not server.exists(cell_db):
        return {}
    db = server.get(cell_db)
    pushed = status.get("pushed_seq", {}).get(cell_db)
    return {cell_db: db.count_since(db.parse_since(pushed) if pushed else 0)}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
