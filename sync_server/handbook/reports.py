"""The province's nightly reports, per cell, commune, district and province, a month and its trend.

    report = compute(db, load_hierarchy("hierarchy.csv"), "2026-11")
    write_reports(report, "out/2026-11")   # cells.csv ... trend.csv help.csv reading.csv summary.json report.html

``db`` is a store ``Database`` holding the merged records (every cell's documents in
one database, as the nightly merge leaves them; unit documents may be there too and are
ignored: the hierarchy passed in is the authority; article documents only give titles).
No HTTP.

Counting (``schemas/MODEL.md``, "Counting, for the province's reports"; ``month`` is
``YYYY-MM``); the usage figures come from what members did, never from flags typed in:

* members: ``member`` documents with status ``active`` (their current status, whatever the
  month); smartphone (the target group): those with ``smartphone: true``;
* installed in a month: active members with a ``device`` record paired by the end of the
  month and not revoked by then (the member's ``installed`` flag is ignored);
* registered by a month: active members whose first sign-in (``registered_at``; a
  ``registered: true`` written without a date counts for every month) or first paired
  device falls in or before the month;
* active in a month: active members whose ``last_active`` or ``active_months`` (written by
  the kiosk at most once a day) name the month;
* install_rate_all = installed / members; install_rate_target = installed / smartphone
  (above 1 when members outside the target group installed the app);
* a meeting is "in the month" when its ``scheduled`` time (RFC 3339, read as written,
  i.e. in its own offset) falls in the month; a cell *uses the handbook in its activities*
  when at least one of its meetings in the month has status ``held`` and either a
  ``present`` attendance record of it carries ``checked_in_at`` (checked in through the
  app) or its agenda or its minutes name a handbook article (``article:<slug>``);
  cells_using counts them and share_using = cells_using / cells, against the goal
  (``GOAL`` = 0.80, met when above);
* a cell *to help* in a month: it has active members and nobody has the app installed
  (``no_app``), or fewer than half of those who installed it were active (``inactive``),
  or it recorded no meeting (``no_meeting``), or its meetings did not use the handbook
  (``not_using``); ``Row.help`` names the reasons, cells_to_help counts such cells;
* age bands (``AGE_BANDS``, age = the month's year - ``born``): members, installed,
  registered and active per band, for every unit;
* reads: the article reads the kiosk counted per cell and day (``reading`` documents, no
  person named) whose ``date`` falls in the month; ``Report.articles`` has the month's
  reads per article for every unit that read anything;
* meetings_held: meetings in the month with status ``held``; attendance_rate: ``present``
  records over all ``attendance`` records of those meetings; minutes_recorded: ``minutes``
  documents of those meetings; feedback_received: ``feedback`` whose ``created_at`` falls
  in the month.

The trend is the same rows for the ``trend`` months ending with ``month`` (``Report.history``),
from the same records: a past month's installed, registered and active figures follow from
the dates in them.

"No data" is ``None``, never 0: a rate whose denominator is 0 is ``None``: no members, no
smartphone owners, no attendance records; share_using is ``None`` when the unit has no
meeting at all (of any status) in the month, since then nothing was recorded to judge by.
The renderers write "no data" (``không có dữ liệu``) for it.

One streaming pass over ``changes(0, include_docs=True)``; each relevant document's JSON
is parsed once (ids of other types are skipped unparsed) and dropped. Memory grows with
the number of units, of active members (a few small values each) and of meetings, never
with the number of documents. Deleted documents and those of cells not in the hierarchy
do not count; the latter are tallied in ``Report.unattributed``.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.hierarchy import LEVELS, Hierarchy

from ..private_file import write_atomic

GOAL = 0.80
TREND_MONTHS = 6
MONTH_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
ARTICLE_LINK = re.compile(r"article:[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?")
CELL_TYPES = ("member", "device", "meeting", "attendance", "minutes", "feedback", "reading")
_PREFIXES = tuple(t + ":" for t in (*CELL_TYPES, "article"))
AGE_BANDS = ("under_35", "35_49", "50_64", "65_plus", "unknown")
BAND_COUNTS = ("members", "installed", "registered", "active")
HELP_REASONS = ("no_app", "inactive", "no_meeting", "not_using")
NO_DATA = "no data"
CSV_FILES = {"province": "province.csv", "district": "districts.csv", "commune": "communes.csv",
             "cell": "cells.csv"}
COUNTS = ("members", "smartphone", "installed", "registered", "active", "cells", "cells_using", "cells_with_meetings",
          "meetings_held", "attendance_records", "attendance_present", "minutes_recorded", "feedback_received",
          "reads", "cells_to_help")
RATES = ("install_rate_all", "install_rate_target", "share_using", "attendance_rate")
BAND_COLUMNS = tuple(f"age_{band}_{count}" for band in AGE_BANDS for count in BAND_COUNTS)
CSV_COLUMNS = ("level", "code", "name", "parent", "district", "commune", "members", "smartphone", "installed",
               "registered", "active", "install_rate_all", "install_rate_target", "cells", "cells_using",
               "cells_with_meetings", "share_using", "meets_goal", "meetings_held", "attendance_records",
               "attendance_present", "attendance_rate", "minutes_recorded", "feedback_received", "reads",
               "cells_to_help", "help", *BAND_COLUMNS)
TREND_COLUMNS = ("level", "code", "name", "month", "members", "smartphone", "installed", "registered", "active",
                 "install_rate_all", "install_rate_target", "cells", "cells_using", "share_using", "meets_goal",
                 "cells_to_help", "reads")
HELP_COLUMNS = ("code", "name", "commune", "district", "help", "members", "smartphone", "installed", "registered",
                "active", "meetings_held", "reads", *BAND_COLUMNS)
READING_COLUMNS = ("level", "code", "name", "article", "title", "reads")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def age_band(born: object, year: int) -> str:
    """The age band (``AGE_BANDS``) of a member born in ``born``, in ``year``."""
    if not isinstance(born, int) or isinstance(born, bool):
        return "unknown"
    age = year - born
    return "under_35" if age < 35 else "35_49" if age < 50 else "50_64" if age < 65 else "65_plus"


def _bands() -> dict[str, list[int]]:
    return {band: [0] * len(BAND_COUNTS) for band in AGE_BANDS}


@dataclass
class Row:
    """One unit's counts for one month; the rates are computed from them (``None`` when there is no data)."""

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
    active: int = 0
    cells: int = 0
    cells_using: int = 0
    cells_with_meetings: int = 0
    meetings_held: int = 0
    attendance_records: int = 0
    attendance_present: int = 0
    minutes_recorded: int = 0
    feedback_received: int = 0
    reads: int = 0
    cells_to_help: int = 0
    help: list[str] = field(default_factory=list)  # a cell's reasons to help it (HELP_REASONS)
    bands: dict[str, list[int]] = field(default_factory=_bands)  # band -> [members, installed, registered, active]

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

    def band(self, band: str) -> dict[str, int]:
        """One age band's counts by name (``BAND_COUNTS``)."""
        return dict(zip(BAND_COUNTS, self.bands[band]))

    def add(self, other: Row) -> None:
        """Add another row's counts to this one."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for band, counts in other.bands.items():
            mine = self.bands[band]
            for i, value in enumerate(counts):
                mine[i] += value

    def to_dict(self) -> dict[str, Any]:
        """Every field, counts and rates (``None`` for no data), the help reasons joined by ``;``."""
        out: dict[str, Any] = {"level": self.level, "code": self.code, "name": self.name, "parent": self.parent,
                               "district": self.district, "commune": self.commune}
        out.update({name: getattr(self, name) for name in COUNTS})
        out.update({name: getattr(self, name) for name in RATES})
        out["meets_goal"] = self.meets_goal
        out["help"] = ";".join(self.help)
        for band, counts in self.bands.items():
            out.update({f"age_{band}_{name}": value for name, value in zip(BAND_COUNTS, counts)})
        return out


@dataclass
class Report:
    """Rows per level (in hierarchy order) for one month, and the same for the trend's months."""

    month: str
    goal: float
    generated_at: str
    database: str
    rows: dict[str, list[Row]]
    docs_scanned: int = 0
    unattributed: dict[str, int] = field(default_factory=dict)
    missing_cells: list[str] = field(default_factory=list)  # cells the nightly pull could not reach
    history: dict[str, dict[str, list[Row]]] = field(default_factory=dict)  # month -> rows, oldest first
    articles: dict[str, Counter[str]] = field(default_factory=dict)  # unit code -> the month's reads per article
    titles: dict[str, str] = field(default_factory=dict)  # article id -> title (when the merged records have it)

    def __post_init__(self) -> None:
        self._by_code = {row.code: row for rows in self.rows.values() for row in rows}
        if not self.history:
            self.history = {self.month: self.rows}

    @property
    def months(self) -> list[str]:
        """The trend's months, oldest first (the report's month last)."""
        return list(self.history)

    @property
    def province(self) -> Row:
        """The province's row."""
        return self.rows["province"][0]

    def row(self, code: str, month: str | None = None) -> Row:
        """The row of one unit (for ``month`` of the trend; default: the report's month)."""
        if month is None or month == self.month:
            return self._by_code[code]
        return next(r for rows in self.history[month].values() for r in rows if r.code == code)

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

    def to_help(self) -> list[Row]:
        """The cells to help this month, in hierarchy order."""
        return [r for r in self.rows["cell"] if r.help]

    def top_articles(self, code: str, limit: int = 10) -> list[tuple[str, int]]:
        """A unit's most read articles of the month: (article id, reads), most first."""
        counts = self.articles.get(code)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit] if counts else []

    def title(self, article: str) -> str:
        """An article's title, or its id when the merged records do not have it."""
        return self.titles.get(article, article)

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: the month, the province and district rows, the trend, the scan's counts."""
        trend_keys = ("members", "smartphone", "installed", "registered", "active", "install_rate_all",
                      "install_rate_target", "cells", "cells_using", "share_using", "meets_goal", "cells_to_help",
                      "reads")
        trend = []
        for month, rows in self.history.items():
            row = rows["province"][0].to_dict()
            trend.append({"month": month, **{k: row[k] for k in trend_keys}})
        return {"month": self.month, "goal": self.goal, "generated_at": self.generated_at,
                "database": self.database, "docs_scanned": self.docs_scanned,
                "unattributed": dict(self.unattributed), "missing_cells": list(self.missing_cells),
                "units": {level: len(rows) for level, rows in self.rows.items()},
                "province": self.province.to_dict(),
                "districts": [r.to_dict() for r in self.rows["district"]],
                "trend": trend, "cells_to_help": [r.code for r in self.to_help()],
                "top_articles": [{"article": a, "title": self.title(a), "reads": n}
                                 for a, n in self.top_articles(self.province.code)]}


def _check_month(month: str) -> str:
    if not isinstance(month, str) or not MONTH_RE.fullmatch(month):
        raise ValueError(f"a month is YYYY-MM, got {month!r}")
    return month


def months_ending(month: str, count: int) -> list[str]:
    """The ``count`` months ending with ``month``, oldest first."""
    index = int(month[:4]) * 12 + int(month[5:]) - 1
    return [f"{k // 12:04d}-{k % 12 + 1:02d}" for k in range(index - count + 1, index + 1)]


def _month_of(value: object) -> str | None:
    return value[:7] if isinstance(value, str) and MONTH_RE.fullmatch(value[:7]) else None


def _links_article(texts: object) -> bool:
    """Whether a string, or a list of strings, names a handbook article (``article:<slug>``)."""
    if isinstance(texts, str):
        return ARTICLE_LINK.search(texts) is not None
    return isinstance(texts, list) and any(isinstance(t, str) and ARTICLE_LINK.search(t) for t in texts)


@dataclass
class _Member:
    cell: str
    born: object
    smartphone: bool
    registered: str | None          # month of the first sign-in ("0000-00": before any date was kept)
    active: frozenset[str]          # months the member was active in


@dataclass
class _Meeting:
    cell: str
    month: str
    held: bool
    linked: bool                    # its agenda names an article


class _Scan:
    """What one pass over the merged records keeps, then turns into rows per month."""

    def __init__(self, hierarchy: Hierarchy, months: list[str]) -> None:
        self.cells = {unit.code for unit in hierarchy.cells()}
        self.months, self.window = months, set(months)
        self.members: dict[str, _Member] = {}
        self.devices: dict[str, list[tuple[str, str | None]]] = {}  # member id -> [(paired, revoked month)]
        self.meetings: dict[str, _Meeting] = {}                    # meetings of the window
        self.with_meetings: set[tuple[str, str]] = set()           # (cell, month)
        self.attendance: dict[str, list[int]] = {}                 # meeting id -> [present, records, checked in]
        self.minutes: dict[str, bool] = {}                         # meeting id -> its minutes name an article
        self.feedback: Counter[tuple[str, str]] = Counter()
        self.reads: Counter[tuple[str, str]] = Counter()
        self.articles: dict[str, Counter[str]] = {}                # cell -> reads per article, the report's month
        self.titles: dict[str, str] = {}
        self.unattributed: dict[str, int] = {}
        self.scanned = 0

    def add(self, doc: dict[str, Any], month: str) -> None:
        kind = doc.get("type")
        if kind == "article":
            if isinstance(doc.get("title"), str):
                self.titles[str(doc.get("_id"))] = doc["title"]
            return
        if kind not in CELL_TYPES:
            return
        cell = doc.get("cell")
        if cell not in self.cells:
            self.unattributed[str(kind)] = self.unattributed.get(str(kind), 0) + 1
            return
        getattr(self, "_" + str(kind))(doc, cell, month)

    def _member(self, doc: dict[str, Any], cell: str, month: str) -> None:
        if doc.get("status") != "active":
            return
        registered = _month_of(doc.get("registered_at"))
        if registered is None and doc.get("registered") is True:
            registered = "0000-00"
        active = {m for m in doc.get("active_months") or () if isinstance(m, str)}
        last = _month_of(doc.get("last_active"))
        if last is not None:
            active.add(last)
        self.members[str(doc["_id"])] = _Member(cell, doc.get("born"), doc.get("smartphone") is True, registered,
                                                frozenset(active & self.window))

    def _device(self, doc: dict[str, Any], cell: str, month: str) -> None:
        paired = _month_of(doc.get("paired_at"))
        if paired is None:
            return
        revoked = (_month_of(doc.get("revoked_at")) or "0000-00") if doc.get("revoked") is True else None
        self.devices.setdefault(str(doc.get("member")), []).append((paired, revoked))

    def _meeting(self, doc: dict[str, Any], cell: str, month: str) -> None:
        scheduled = _month_of(doc.get("scheduled"))
        if scheduled not in self.window:
            return
        self.with_meetings.add((cell, scheduled))
        self.meetings[str(doc["_id"])] = _Meeting(cell, scheduled, doc.get("status") == "held",
                                                  _links_article(doc.get("agenda")))

    def _attendance(self, doc: dict[str, Any], cell: str, month: str) -> None:
        counts = self.attendance.get(str(doc.get("meeting")))
        if counts is None:
            counts = self.attendance[str(doc.get("meeting"))] = [0, 0, 0]
        present = doc.get("status") == "present"
        counts[0] += present
        counts[1] += 1
        counts[2] += present and isinstance(doc.get("checked_in_at"), str)

    def _minutes(self, doc: dict[str, Any], cell: str, month: str) -> None:
        self.minutes[str(doc.get("meeting"))] = _links_article(doc.get("text")) or _links_article(doc.get("decisions"))

    def _feedback(self, doc: dict[str, Any], cell: str, month: str) -> None:
        created = _month_of(doc.get("created_at"))
        if created in self.window:
            self.feedback[(cell, created)] += 1

    def _reading(self, doc: dict[str, Any], cell: str, month: str) -> None:
        day = _month_of(doc.get("date"))
        counts = doc.get("counts")
        if day not in self.window or not isinstance(counts, dict):
            return
        valid = {a: n for a, n in counts.items() if isinstance(n, int) and not isinstance(n, bool) and n > 0}
        self.reads[(cell, day)] += sum(valid.values())
        if day == month:
            self.articles.setdefault(cell, Counter()).update(valid)

    def cell_rows(self, hierarchy: Hierarchy, month: str, goal: float) -> dict[str, Row]:
        """Every cell's row for ``month``."""
        rows: dict[str, Row] = {}
        for unit in hierarchy.cells():
            district = hierarchy.ancestor_at(unit.code, "district")
            rows[unit.code] = Row("cell", unit.code, unit.name, unit.parent, district.code if district else None,
                                  unit.parent, goal, cells=1)
        year = int(month[:4])
        for member_id, member in self.members.items():
            row = rows[member.cell]
            devices = self.devices.get(member_id, ())
            installed = any(p <= month and (r is None or r > month) for p, r in devices)
            registered = (member.registered is not None and member.registered <= month) \
                or any(p <= month for p, _ in devices)
            active = month in member.active
            row.members += 1
            row.smartphone += member.smartphone
            row.installed += installed
            row.registered += registered
            row.active += active
            band = row.bands[age_band(member.born, year)]
            band[0] += 1
            band[1] += installed
            band[2] += registered
            band[3] += active
        for meeting_id, meeting in self.meetings.items():
            if meeting.month != month or not meeting.held:
                continue
            row = rows[meeting.cell]
            row.meetings_held += 1
            present, records, checked_in = self.attendance.get(meeting_id, (0, 0, 0))
            row.attendance_present += present
            row.attendance_records += records
            row.minutes_recorded += meeting_id in self.minutes
            if checked_in or meeting.linked or self.minutes.get(meeting_id):
                row.cells_using = 1
        for code, row in rows.items():
            row.cells_with_meetings = int((code, month) in self.with_meetings)
            row.feedback_received = self.feedback[(code, month)]
            row.reads = self.reads[(code, month)]
            row.help = _reasons(row)
            row.cells_to_help = int(bool(row.help))
        return rows


def _reasons(row: Row) -> list[str]:
    """Why a cell needs help this month (``HELP_REASONS``); none for a cell without active members."""
    if not row.members:
        return []
    reasons = []
    if not row.installed:
        reasons.append("no_app")
    elif row.active * 2 < row.installed:
        reasons.append("inactive")
    if not row.cells_with_meetings:
        reasons.append("no_meeting")
    elif not row.cells_using:
        reasons.append("not_using")
    return reasons


def compute(db: Any, hierarchy: Hierarchy, month: str, *, goal: float = GOAL,
            generated_at: str | None = None, trend: int = TREND_MONTHS) -> Report:
    """Count the merged records of ``db`` for ``month`` (``YYYY-MM``) and the ``trend`` months
    ending with it, per unit of ``hierarchy``."""
    _check_month(month)
    months = months_ending(month, max(1, trend))
    scan = _Scan(hierarchy, months)
    for change in db.changes(0, include_docs=True):
        scan.scanned += 1
        if change.deleted or not change.id.startswith(_PREFIXES) or change.doc_json is None:
            continue
        scan.add(json.loads(change.doc_json), month)
    history = {m: _roll_up(hierarchy, scan.cell_rows(hierarchy, m, goal), goal) for m in months}
    articles: dict[str, Counter[str]] = {}
    for cell, counts in scan.articles.items():
        for code in (cell, *(a.code for a in hierarchy.ancestors(cell))):
            articles.setdefault(code, Counter()).update(counts)
    return Report(month, goal, generated_at or _now(), getattr(db, "name", ""), history[month], scan.scanned,
                  scan.unattributed, history=history, articles=articles, titles=scan.titles)


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


def _cell(data: dict[str, Any], column: str) -> str:
    return NO_DATA if data[column] is None and (column in RATES or column == "meets_goal") \
        else csv_value(data[column])


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[list[str]]) -> Path:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return write_atomic(path, text.getvalue().encode("utf-8-sig"))


def write_reports(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``province.csv``, ``districts.csv``, ``communes.csv``, ``cells.csv``, ``trend.csv``,
    ``help.csv``, ``reading.csv``, ``summary.json`` and ``report.html`` into ``out_dir`` (created if
    missing); returns their paths by name.

    The CSV files are UTF-8 with a byte-order mark (so spreadsheet programs show the
    diacritics). The level files have one row per unit, columns ``CSV_COLUMNS``; ``trend.csv``
    one row per unit and month of the trend (``TREND_COLUMNS``); ``help.csv`` one row per cell
    to help (``HELP_COLUMNS``, with the age bands); ``reading.csv`` one row per unit and
    article read in the month (``READING_COLUMNS``). A rate with no data, and meets_goal
    then, is written "no data"; an empty parent/district/commune means none.
    """
    from .report_html import render

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for level, filename in CSV_FILES.items():
        dicts = [row.to_dict() for row in report.rows[level]]
        written[filename] = _write_csv(out / filename, CSV_COLUMNS, [[_cell(d, c) for c in CSV_COLUMNS]
                                                                    for d in dicts])
    trend = []
    for level in LEVELS:
        for index in range(len(report.rows[level])):
            for month, rows in report.history.items():
                one = {**rows[level][index].to_dict(), "month": month}
                trend.append([_cell(one, c) for c in TREND_COLUMNS])
    written["trend.csv"] = _write_csv(out / "trend.csv", TREND_COLUMNS, trend)
    helped = [r.to_dict() for r in report.to_help()]
    written["help.csv"] = _write_csv(out / "help.csv", HELP_COLUMNS, [[_cell(d, c) for c in HELP_COLUMNS]
                                                                     for d in helped])
    reading = []
    for level in LEVELS:
        for row in report.rows[level]:
            for article, reads in report.top_articles(row.code, limit=len(report.articles.get(row.code, ()))):
                reading.append([level, row.code, row.name, article, report.titles.get(article, ""), str(reads)])
    written["reading.csv"] = _write_csv(out / "reading.csv", READING_COLUMNS, reading)
    summary = report.summary()
    summary["files"] = [*written, "summary.json", "report.html"]
    summary_json = json.dumps(summary, ensure_ascii=False, indent=2) + "\n"
    written["summary.json"] = write_atomic(out / "summary.json", summary_json)
    written["report.html"] = write_atomic(out / "report.html", render(report))
    return written
