"""The province's nightly reports, per cell, commune, district and province.

    report = compute(db, load_hierarchy("hierarchy.csv"), "2026-11")
    write_reports(report, "out/2026-11")   # cells.csv communes.csv districts.csv province.csv summary.json report.html

``db`` is a store ``Database`` holding the merged records (every cell's documents in
one database, as the nightly merge leaves them; unit documents and articles may be
there too and are ignored: the hierarchy passed in is the authority). No HTTP.

Counting (``schemas/MODEL.md``; ``month`` is ``YYYY-MM``):

* members: ``member`` documents with status ``active``; smartphone (the target group),
  installed, registered: active members with that field ``true``; active: active members
  whose ``last_active`` (written by the kiosk, at most daily) falls in the month. These are the
  members' current status, whatever the month;
* install_rate_all = installed / members; install_rate_target = installed / smartphone
  (above 1 when members outside the target group installed the app);
* a meeting is "in the month" when its ``scheduled`` time (RFC 3339, read as written,
  i.e. in its own offset) falls in the month; a cell *uses the handbook* when at least
  one of its meetings in the month has status ``held``; cells_using counts them and
  share_using = cells_using / cells, against the goal (``GOAL`` = 0.80, met when above);
* meetings_held: meetings in the month with status ``held``; attendance_rate: ``present``
  records over all ``attendance`` records of those meetings; minutes_recorded: ``minutes``
  documents of those meetings; feedback_received: ``feedback`` whose ``created_at`` falls
  in the month.

"No data" is ``None``, never 0: a rate whose denominator is 0 is ``None``: no members, no
smartphone owners, no attendance records; share_using is ``None`` when the unit has no
meeting at all (of any status) in the month, since then nothing was recorded to judge by.
The renderers write "no data" (``không có dữ liệu``) for it.

One streaming pass over ``changes(0, include_docs=True)``; each relevant document's JSON
is parsed once (ids of other types are skipped unparsed) and dropped. Memory grows with
the number of units and of meetings (a few small counters each), never with the number
of documents. Deleted documents and those of cells not in the hierarchy do not count;
the latter are tallied in ``Report.unattributed``.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.hierarchy import LEVELS, Hierarchy

GOAL = 0.80
MONTH_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
COUNTED_TYPES = ("member", "meeting", "attendance", "minutes", "feedback")
_PREFIXES = tuple(t + ":" for t in COUNTED_TYPES)
NO_DATA = "no data"
CSV_FILES = {"province": "province.csv", "district": "districts.csv", "commune": "communes.csv",
             "cell": "cells.csv"}
COUNTS = ("members", "smartphone", "installed", "registered", "active", "cells", "cells_using", "cells_with_meetings",
          "meetings_held", "attendance_records", "attendance_present", "minutes_recorded", "feedback_received")
RATES = ("install_rate_all", "install_rate_target", "share_using", "attendance_rate")
CSV_COLUMNS = ("level", "code", "name", "parent", "district", "commune", "members", "smartphone", "installed",
               "registered", "active", "install_rate_all", "install_rate_target", "cells", "cells_using",
               "cells_with_meetings", "share_using", "meets_goal", "meetings_held", "attendance_records",
               "attendance_present", "attendance_rate", "minutes_recorded", "feedback_received")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class Row:
    """One unit's counts; the rates are computed from them (``None`` when there is no data)."""

    level: str
    code: str
    name: str
    parent: str | None
    district: str | None = None
    commune: str | None = None
    goal: float = GOAL
    members: int = 0
    smartphone: int = 0
    installed: int = 0
    registered: int = 0
    active: int = 0  # active members whose last_active falls in the month (schemas/MODEL.md)
    cells: int = 0
    cells_using: int = 0
    cells_with_meetings: int = 0
    meetings_held: int = 0
    attendance_records: int = 0
    attendance_present: int = 0
    minutes_recorded: int = 0
    feedback_received: int = 0

    @property
    def install_rate_all(self) -> float | None:
        """installed / members."""
        return _ratio(self.installed, self.members)

    @property
    def install_rate_target(self) -> float | None:
        """installed / smartphone owners (the target group)."""
        return _ratio(self.installed, self.smartphone)

    @property
    def share_using(self) -> float | None:
        """cells_using / cells; None when no cell of the unit has a meeting in the month."""
        return _ratio(self.cells_using, self.cells) if self.cells_with_meetings else None

    @property
    def attendance_rate(self) -> float | None:
        """present / all attendance records of the month's held meetings."""
        return _ratio(self.attendance_present, self.attendance_records)

    @property
    def meets_goal(self) -> bool | None:
        """Whether share_using is above the goal (None when there is no data)."""
        share = self.share_using
        return None if share is None else share > self.goal

    def add(self, other: Row) -> None:
        """Add another row's counts to this one."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, Any]:
        """Every field, counts and rates (``None`` for no data)."""
        out: dict[str, Any] = {"level": self.level, "code": self.code, "name": self.name, "parent": self.parent,
                               "district": self.district, "commune": self.commune}
        out.update({name: getattr(self, name) for name in COUNTS})
        out.update({name: getattr(self, name) for name in RATES})
        out["meets_goal"] = self.meets_goal
        return out


@dataclass
class Report:
    """Rows per level (in hierarchy order) for one month."""

    month: str
    goal: float
    generated_at: str
    database: str
    rows: dict[str, list[Row]]
    docs_scanned: int = 0
    unattributed: dict[str, int] = field(default_factory=dict)
    missing_cells: list[str] = field(default_factory=list)  # cells the nightly pull could not reach

    def __post_init__(self) -> None:
        self._by_code = {row.code: row for rows in self.rows.values() for row in rows}

    @property
    def province(self) -> Row:
        """The province's row."""
        return self.rows["province"][0]

    def row(self, code: str) -> Row:
        """The row of one unit."""
        return self._by_code[code]

    def level(self, level: str) -> list[Row]:
        """The rows of one level, in hierarchy order."""
        return self.rows[level]

    def children(self, code: str) -> list[Row]:
        """The rows whose parent is ``code``."""
        row = self.row(code)
        if row.level == "cell":
            return []
        level = LEVELS[LEVELS.index(row.level) + 1]
        return [r for r in self.rows[level] if r.parent == code]

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: the month, the province and district rows, the scan's counts."""
        return {"month": self.month, "goal": self.goal, "generated_at": self.generated_at,
                "database": self.database, "docs_scanned": self.docs_scanned,
                "unattributed": dict(self.unattributed), "missing_cells": list(self.missing_cells),
                "units": {level: len(rows) for level, rows in self.rows.items()},
                "province": self.province.to_dict(),
                "districts": [r.to_dict() for r in self.rows["district"]]}


def _check_month(month: str) -> str:
    if not isinstance(month, str) or not MONTH_RE.fullmatch(month):
        raise ValueError(f"a month is YYYY-MM, got {month!r}")
    return month


def compute(db: Any, hierarchy: Hierarchy, month: str, *, goal: float = GOAL,
            generated_at: str | None = None) -> Report:
    """Count the merged records of ``db`` for ``month`` (``YYYY-MM``), per unit of ``hierarchy``."""
    _check_month(month)
    cells: dict[str, Row] = {}
    for unit in hierarchy.cells():
        district = hierarchy.ancestor_at(unit.code, "district")
        cells[unit.code] = Row("cell", unit.code, unit.name, unit.parent, district.code if district else None,
                               unit.parent, goal, cells=1)
    using: set[str] = set()
    with_meetings: set[str] = set()
    held: dict[str, str] = {}                 # held meeting in the month -> its cell
    attendance: dict[str, list[int]] = {}     # meeting id -> [present, records]
    minuted: set[str] = set()                 # meeting ids that have minutes
    unattributed: dict[str, int] = {}
    scanned = 0
    for change in db.changes(0, include_docs=True):
        scanned += 1
        if change.deleted or not change.id.startswith(_PREFIXES) or change.doc_json is None:
            continue
        doc = json.loads(change.doc_json)
        kind = doc.get("type")
        if kind not in COUNTED_TYPES:
            continue
        row = cells.get(doc.get("cell"))
        if row is None:
            unattributed[kind] = unattributed.get(kind, 0) + 1
            continue
        if kind == "member":
            if doc.get("status") == "active":
                row.members += 1
                row.smartphone += doc.get("smartphone") is True
                row.installed += doc.get("installed") is True
                row.registered += doc.get("registered") is True
                row.active += str(doc.get("last_active") or "")[:7] == month
        elif kind == "attendance":
            counts = attendance.get(doc.get("meeting"))
            if counts is None:
                counts = attendance[str(doc.get("meeting"))] = [0, 0]
            counts[0] += doc.get("status") == "present"
            counts[1] += 1
        elif kind == "meeting":
            scheduled = doc.get("scheduled")
            if isinstance(scheduled, str) and scheduled[:7] == month:
                with_meetings.add(row.code)
                if doc.get("status") == "held":
                    row.meetings_held += 1
                    using.add(row.code)
                    held[doc["_id"]] = row.code
        elif kind == "minutes":
            minuted.add(str(doc.get("meeting")))
        else:  # feedback
            created = doc.get("created_at")
            if isinstance(created, str) and created[:7] == month:
                row.feedback_received += 1
    for meeting_id, code in held.items():
        row = cells[code]
        counts = attendance.get(meeting_id)
        if counts is not None:
            row.attendance_present += counts[0]
            row.attendance_records += counts[1]
        row.minutes_recorded += meeting_id in minuted
    for code in using:
        cells[code].cells_using = 1
    for code in with_meetings:
        cells[code].cells_with_meetings = 1
    return Report(month, goal, generated_at or _now(), getattr(db, "name", ""),
                  _roll_up(hierarchy, cells, goal), scanned, unattributed)


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _roll_up(hierarchy: Hierarchy, cells: dict[str, Row], goal: float) -> dict[str, list[Row]]:
    """Rows of every unit, each higher level the sum of the cells below it."""
    rows: dict[str, Row] = {}
    for unit in hierarchy:
        if unit.level == "cell":
            rows[unit.code] = cells[unit.code]
        else:
            district = hierarchy.ancestor_at(unit.code, "district")
            rows[unit.code] = Row(unit.level, unit.code, unit.name, unit.parent,
                                  district.code if district else None, None, goal)
    for code, cell in cells.items():
        for ancestor in hierarchy.ancestors(code):
            rows[ancestor.code].add(cell)
    return {level: [rows[u.code] for u in hierarchy.at_level(level)] for level in LEVELS}


# -- writing ---------------------------------------------------------------------------

def csv_value(value: Any) -> str:
    """A CSV field: floats with 4 decimals, booleans yes/no, ``None`` empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_reports(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``province.csv``, ``districts.csv``, ``communes.csv``, ``cells.csv``, ``summary.json``
    and ``report.html`` into ``out_dir`` (created if missing); returns their paths by name.

    The CSV files are UTF-8 with a byte-order mark (so spreadsheet programs show the
    diacritics), one row per unit, columns ``CSV_COLUMNS``; a rate with no data, and
    meets_goal then, is written "no data"; an empty parent/district/commune means none.
    """
    from .report_html import render

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for level, filename in CSV_FILES.items():
        path = out / filename
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            for row in report.rows[level]:
                data = row.to_dict()
                writer.writerow([NO_DATA if data[c] is None and (c in RATES or c == "meets_goal")
                                 else csv_value(data[c]) for c in CSV_COLUMNS])
        written[filename] = path
    summary = report.summary()
    summary["files"] = [*written, "summary.json", "report.html"]
    path = out / "summary.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    written["summary.json"] = path
    path = out / "report.html"
    path.write_text(render(report), encoding="utf-8")
    written["report.html"] = path
    return written
