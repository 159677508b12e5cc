"""Usage recorded from what members do at the kiosk, not typed in (issue 13).

The kiosk writes, as the server itself, into the member's cell database (so the records
go up to the hub with the cell's other records and the province's nightly report counts
them):

- pairing a phone writes a ``device`` record (``device:<cell>:<device id>``) and marks the
  member ``installed``; revoking it marks the record ``revoked`` (with ``revoked_at``) and
  the member is ``installed`` only while one of their devices is live;
- a member's first sign-in (a PIN checked, or a paired phone's token) marks them
  ``registered``, with ``registered_at`` (when);
- any request of a signed-in member (sign-in, sync, a check-in, reading the handbook)
  sets the member's ``last_active`` to now and adds the month to ``active_months`` (the
  last ``ACTIVE_MONTHS_KEPT``), at most once a day per member (kept in memory, so a busy
  phone costs one write a day, not one per request).

Only accounts that are members of a cell (``<cell>.<member no>`` with the ``member`` role)
and whose member record exists locally are counted; nothing else is written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..errors import NotFound
from ..security.auth import User, current_name, current_roles
from ..store import Server
from .members import cell_db_name
from .ownership import MEMBER_ROLE

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)
ACTIVE_MONTHS_KEPT = 24  # months of activity a member record keeps (the report's trend reads them)
# Reads one member may add to a day's counts: far above what a person reads, low enough that a
# phone replaying or scripting its counts cannot make a cell's reading figures mean nothing.
READS_PER_MEMBER_DAY = 200
READS_KEPT_DAYS = 62  # how long the per-member tallies are kept (the oldest date a count may carry, and more)


def _now() -> datetime:
    return datetime.now().astimezone()


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def member_of(user: User | None) -> tuple[str, str] | None:
    """(cell, member no) of a cell member's account, else None."""
    if user is None or not user.name or MEMBER_ROLE not in user.roles:
        return None
    cells = [r[5:] for r in user.roles if r.startswith("cell:")]
    if len(cells) != 1 or not user.name.startswith(cells[0] + "."):
        return None
    return cells[0], user.name[len(cells[0]) + 1:]


def _registered(member: dict, now: datetime) -> dict:
    """The member record, registered; the first registration also says when (``registered_at``).
    A member registered before the kiosk kept the date gets none: the report counts them for every month."""
    if member.get("registered") is True:
        return dict(member)
    return {**member, "registered": True, "registered_at": _stamp(now)}


class Usage:
    """Writes the usage records of one store."""

    def __init__(self, server: Server, clock: Clock = _now, delay: float = 0.0) -> None:
        self.server, self.clock, self.delay = server, clock, delay
        self._seen: dict[str, str] = {}  # account -> the day its activity was last written
        self._pending: dict[tuple[str, str], datetime] = {}  # (cell, member no) -> when, waiting for the next flush
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._day, self._day_ends = "", 0.0  # today, and until when (time.time()) that holds
        self._tallies: dict[tuple[str, str], int] = {}  # (account, date) -> reads counted for it

    def _as_server(self, db: Any, docs: list[dict]) -> list[dict]:
        """Write as the server itself, whoever's request this runs in."""
        roles, name = current_roles.set(None), current_name.set(None)
        try:
            return db.bulk_docs(docs)
        finally:
            current_roles.reset(roles)
            current_name.reset(name)

    def _member_doc(self, cell: str, number: str) -> tuple[Any, dict] | None:
        db_name = cell_db_name(cell)
        if not self.server.exists(db_name):
            return None
        db = self.server.get(db_name)
        try:
            return db, db.get(f"member:{cell}:{number}")
        except NotFound:
            return None

    def active(self, user: User | None) -> None:
        """A request of ``user``: registered (first time) and last_active (once a day).

        With ``delay`` the mark waits that many seconds for others, so a meeting's burst of
        sign-ins is one write to the cell's database (which every live phone then pulls once),
        not one per member; ``flush`` writes what waits (the server calls it when it stops).
        """
        found = member_of(user)
        if found is None:
            return
        if self.clock is _now and time.time() < self._day_ends and self._seen.get(user.name or "") == self._day:  # type: ignore[union-attr]
            return  # the common case, every request of an active member: no clock, no lock
        now = self.clock()
        day = now.date().isoformat()
        with self._lock:
            self._day, self._day_ends = day, time.time() + 60  # at most a minute of yesterday after midnight
            if self._seen.get(user.name or "") == day:  # type: ignore[union-attr]
                return
            self._seen[user.name or ""] = day  # type: ignore[union-attr]
            self._pending[found] = now
            if self.delay > 0:
                if self._timer is None:
                    self._timer = threading.Timer(self.delay, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def flush(self) -> None:
        """Write the waiting marks: one write per cell database."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        by_cell: dict[str, dict[str, datetime]] = {}
        for (cell, number), when in pending.items():
            by_cell.setdefault(cell, {})[number] = when
        for cell, marks in by_cell.items():
            try:
                self._write_marks(cell, marks)
            except Exception:  # usage is counted, never a reason to fail: the next day marks again
                log.exception("usage of cell %s not recorded", cell)

    def _write_marks(self, cell: str, marks: dict[str, datetime]) -> None:
        db_name = cell_db_name(cell)
        if not self.server.exists(db_name):
            return
        db = self.server.get(db_name)
        updates = []
        for number, now in marks.items():
            try:
                member = db.get(f"member:{cell}:{number}")
            except NotFound:
                continue
            day = now.date().isoformat()
            months = [m for m in member.get("active_months") or [] if isinstance(m, str)]
            if member.get("registered") is True and str(member.get("last_active") or "")[:10] == day \
                    and day[:7] in months:
                continue
            updates.append({**_registered(member, now), "last_active": _stamp(now),
                            "active_months": sorted({*months, day[:7]})[-ACTIVE_MONTHS_KEPT:]})
        if updates:
            self._as_server(db, updates)

    def paired(self, user: User | None, device_id: str, label: str) -> None:
        """A phone was paired for ``user``: its device record, and the member is installed."""
        found = member_of(user)
        opened = self._member_doc(*found) if found else None
        if found is None or opened is None:
            return
        cell, number = found
        db, member = opened
        device = {"_id": f"device:{cell}:{device_id}", "type": "device", "cell": cell, "member": member["_id"],
                  "paired_at": _stamp(self.clock()), "label": (label or "phone")[:200], "revoked": False}
        self._as_server(db, [device, {**_registered(member, self.clock()), "installed": True}])

    def revoked(self, cell: str, device_id: str) -> None:
        """A device was revoked: its record says so; the member stays installed only with another live device."""
        db_name = cell_db_name(cell)
        if not self.server.exists(db_name):
            return
        db = self.server.get(db_name)
        try:
            device = db.get(f"device:{cell}:{device_id}")
        except NotFound:
            return
        changes = [{**device, "revoked": True, "revoked_at": _stamp(self.clock())}]
        prefix = f"device:{cell}:"
        live = [row["doc"] for row in db.all_docs(start=prefix, end=prefix + "\ufff0", include_docs=True)
                if row["doc"]["member"] == device["member"] and row["id"] != device["_id"]
                and not row["doc"].get("revoked")]
        try:
            member = db.get(device["member"])
        except NotFound:
            member = None
        if member is not None and not live and member.get("installed") is not False:
            changes.append({**member, "installed": False})
        self._as_server(db, changes)

    def read(self, user: User | None, reads: dict[str, dict[str, int]]) -> int:
        """Article reads a member's app counted (date -> article id -> times), added to the cell's
        ``reading:<cell>:<date>:<kiosk>`` documents. Only the counts are kept: no document says who read.
        A member adds at most ``READS_PER_MEMBER_DAY`` reads to a day; past it the rest is dropped
        (the tallies are kept in memory: a restart of the kiosk forgets them, which a member cannot cause).
        Returns how many reads were added; nothing is written for an account that is not a cell member."""
        found = member_of(user)
        if found is None:
            return 0
        cell, number = found
        db_name = cell_db_name(cell)
        if not self.server.exists(db_name):
            return 0
        db = self.server.get(db_name)
        kiosk = self.server.uuid[:16].lower()
        added = 0
        with self._lock:  # one writer per document: read, add, write without a conflict
            changes, tallies = [], {}
            for date, counts in sorted(reads.items()):
                key = (f"{cell}.{number}", date)
                left = READS_PER_MEMBER_DAY - self._tallies.get(key, 0)
                if left <= 0:
                    continue
                doc_id = f"reading:{cell}:{date}:{kiosk}"
                try:
                    doc = db.get(doc_id)
                except NotFound:
                    doc = {"_id": doc_id, "type": "reading", "cell": cell, "date": date, "counts": {}}
                merged = dict(doc.get("counts") or {})
                for article, times in sorted(counts.items()):
                    times = min(times, left)
                    if times <= 0:
                        break
                    merged[article] = merged.get(article, 0) + times
                    added, left = added + times, left - times
                tallies[key] = READS_PER_MEMBER_DAY - left
                changes.append({**doc, "counts": dict(sorted(merged.items()))})
            if changes:
                self._as_server(db, changes)
                self._tallies.update(tallies)
                self._forget_old_tallies()
        return added

    def _forget_old_tallies(self) -> None:
        oldest = (self.clock().date() - timedelta(days=READS_KEPT_DAYS)).isoformat()
        for key in [k for k in self._tallies if k[1] < oldest]:
            del self._tallies[key]
