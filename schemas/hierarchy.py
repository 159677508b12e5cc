"""The hierarchy of a province: province > district > commune > cell, loaded from a CSV file.

File format
-----------
UTF-8 text (a leading byte-order mark is allowed), one unit per line, comma-separated
as in RFC 4180 (a field holding a comma is quoted: ``"Tân Trào, Sơn Dương"``; a
quoted field cannot span lines). The first line that is neither blank nor a comment
is the header, and it must name the columns ``code``, ``name``, ``level`` and
``parent`` (in any order; further columns are allowed and ignored)::

    # Tuyên Quang, before 2025
    code,name,level,parent
    TQ,Tuyên Quang,province,
    TQ.NH,Na Hang,district,TQ
    TQ.NH.KH,Khâu Tinh,commune,TQ.NH
    TQ.NH.KH.C01,Chi bộ thôn Nà Khậu,cell,TQ.NH.KH

* a line whose first non-blank character is ``#`` is a comment; blank lines are skipped;
* ``code``: the parent's code, a dot and the unit's own part; parts are ``[A-Z0-9]{1,12}``
  (``TQ``, ``TQ.NH``, ``TQ.NH.KH``, ``TQ.NH.KH.C01``), unique in the file;
* ``name``: free text (Vietnamese with diacritics), not empty; surrounding spaces are trimmed;
* ``level``: ``province``, ``district``, ``commune`` or ``cell``;
* ``parent``: the parent's code; empty for the province and only for it. Exactly one
  province; a district's parent is the province, a commune's a district, a cell's a
  commune. A unit may be listed before its parent.

Every error raises :class:`HierarchyError` (a ``StartupError``) whose message starts
with ``<file>:<line>:`` and names the problem: a bad header or missing columns, a wrong
number of fields, a bad code pattern, an unknown level, an empty name, a duplicate
code, a missing parent, a cycle, a bad level order, a second (or no) province, a code
that is not ``parent + "." + part``.

Names on the hub (as ``schemas/MODEL.md`` says): :func:`cell_db_name` gives a cell's
database (``cell-tq-nh-kh-c01``), :func:`kiosk_account` its kiosk account
(``kiosk-tq-nh-kh-c01``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync_server.errors import StartupError

LEVELS = ("province", "district", "commune", "cell")
# The level a unit's parent must have.
PARENT_LEVEL = {"district": "province", "commune": "district", "cell": "commune"}
COLUMNS = ("code", "name", "level", "parent")
PART_RE = re.compile(r"[A-Z0-9]{1,12}")
CODE_RE = re.compile(r"[A-Z0-9]{1,12}(?:\.[A-Z0-9]{1,12})*")


class HierarchyError(StartupError):
    """A bad hierarchy file; ``path`` and ``line`` (1-based, 0 when about the whole file) say where."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True)
class Unit:
    """One node of the hierarchy; ``line`` is where the file defines it."""

    code: str
    name: str
    level: str
    parent: str | None
    line: int = 0

    def to_doc(self) -> dict[str, Any]:
        """The ``unit`` document of this unit, as MODEL.md defines it."""
        return {"_id": f"unit:{self.code}", "type": "unit", "code": self.code, "name": self.name,
                "level": self.level, "parent": self.parent}


def check_code(code: str) -> str:
    """Return ``code`` when it is a well-formed unit code, else raise ``ValueError``."""
    if not isinstance(code, str) or not CODE_RE.fullmatch(code):
        raise ValueError(f"not a unit code: {code!r} (parts are [A-Z0-9]{{1,12}} joined by dots)")
    return code


def cell_db_name(code: str) -> str:
    """The hub database of a cell: ``cell-`` + the code in lower case, dots as dashes."""
    return "cell-" + check_code(code).lower().replace(".", "-")


def kiosk_account(code: str) -> str:
    """The kiosk account of a cell: ``kiosk-`` + the code in lower case, dots as dashes."""
    return "kiosk-" + check_code(code).lower().replace(".", "-")


class Hierarchy:
    """Units by code (in file order), with their children and ancestors."""

    def __init__(self, units: list[Unit], source: str = "<hierarchy>") -> None:
        self.source = source
        self.units: dict[str, Unit] = {u.code: u for u in units}
        self._children: dict[str, list[Unit]] = {u.code: [] for u in units}
        for unit in units:
            if unit.parent is not None:
                self._children[unit.parent].append(unit)
        self.province: Unit = next(u for u in units if u.level == "province")

    def __len__(self) -> int:
        return len(self.units)

    def __contains__(self, code: object) -> bool:
        return code in self.units

    def __iter__(self) -> Iterator[Unit]:
        return iter(self.units.values())

    def __getitem__(self, code: str) -> Unit:
        return self.units[code]

    def children(self, code: str) -> list[Unit]:
        """The units whose parent is ``code``, in file order."""
        return list(self._children[code])

    def at_level(self, level: str) -> list[Unit]:
        """Every unit of one level, in file order."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}")
        return [u for u in self.units.values() if u.level == level]

    def districts(self) -> list[Unit]:
        """Every district, in file order."""
        return self.at_level("district")

    def communes(self) -> list[Unit]:
        """Every commune, in file order."""
        return self.at_level("commune")

    def cells(self) -> list[Unit]:
        """Every cell, in file order."""
        return self.at_level("cell")

    def ancestors(self, code: str) -> list[Unit]:
        """The unit's parent, grandparent, ... up to the province (nearest first; not the unit itself)."""
        found: list[Unit] = []
        parent = self.units[code].parent
        while parent is not None:
            unit = self.units[parent]
            found.append(unit)
            parent = unit.parent
        return found

    def ancestor_at(self, code: str, level: str) -> Unit | None:
        """The unit itself or its ancestor at ``level``, or None when above the unit."""
        unit = self.units[code]
        if unit.level == level:
            return unit
        return next((u for u in self.ancestors(code) if u.level == level), None)

    def descendants(self, code: str) -> list[Unit]:
        """Every unit below ``code`` (depth first, file order among siblings)."""
        found: list[Unit] = []
        stack = list(reversed(self._children[code]))
        while stack:
            unit = stack.pop()
            found.append(unit)
            stack.extend(reversed(self._children[unit.code]))
        return found

    def unit_docs(self) -> list[dict[str, Any]]:
        """The ``unit`` documents of every unit, in file order."""
        return [u.to_doc() for u in self.units.values()]

    def to_csv(self) -> str:
        """The hierarchy in the file format above (header and one line per unit)."""
        return format_csv(self.units.values())


def format_csv(units: Any, comment: str | None = None) -> str:
    """Write units in the hierarchy file format; ``comment`` becomes leading ``#`` lines."""
    import io

    out = io.StringIO()
    if comment:
        for line in comment.splitlines():
            out.write(f"# {line}\n" if line else "#\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for unit in units:
        writer.writerow([unit.code, unit.name, unit.level, unit.parent or ""])
    return out.getvalue()


def load_hierarchy(path: str | Path) -> Hierarchy:
    """Read and check a hierarchy file.

    :raises HierarchyError: (a ``StartupError``) with the file name and line number.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise HierarchyError(name, 0, f"cannot read the hierarchy file: {exc.strerror or exc}") from None
    return parse_hierarchy(data, name)


def parse_hierarchy(data: str | bytes, source: str = "<hierarchy>") -> Hierarchy:
    """Parse and check hierarchy text (or UTF-8 bytes); ``source`` names it in errors."""
    units = _read_units(data, source)
    _check_structure(units, source)
    return Hierarchy(units, source)


def _lines(data: str | bytes, source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line, decoding UTF-8 line by line."""
    raw: list[str] | list[bytes] = data.split(b"\n") if isinstance(data, bytes) else data.split("\n")
    for number, item in enumerate(raw, start=1):
        if isinstance(item, bytes):
            if number == 1 and item.startswith(b"\xef\xbb\xbf"):
                item = item[3:]
            try:
                line = item.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HierarchyError(source, number, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        else:
            line = str(item).removeprefix("\ufeff") if number == 1 else str(item)
        yield number, line.removesuffix("\r")


def _fields(line: str, number: int, source: str) -> list[str]:
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error as exc:
        raise HierarchyError(source, number, f"bad CSV: {exc}") from None
    if len(rows) != 1:
        raise HierarchyError(source, number, "bad CSV: a quoted field may not span lines")
    return [f.strip() for f in rows[0]]


def _read_units(data: str | bytes, source: str) -> list[Unit]:
    """The per-line checks: header, field count, code pattern, level, name, duplicates."""
    columns: dict[str, int] | None = None
    width = 0
    units: list[Unit] = []
    seen: dict[str, int] = {}
    for number, line in _lines(data, source):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _fields(line, number, source)
        if columns is None:
            header = [f.lower() for f in fields]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise HierarchyError(source, number, f"the header misses the column(s) {', '.join(missing)}: "
                                     f"expected {','.join(COLUMNS)}, got {line.strip()!r}")
            doubled = sorted({c for c in header if header.count(c) > 1 and c in COLUMNS})
            if doubled:
                raise HierarchyError(source, number, f"the header repeats the column(s) {', '.join(doubled)}")
            columns, width = {c: header.index(c) for c in COLUMNS}, len(fields)
            continue
        if len(fields) != width:
            raise HierarchyError(source, number, f"expected {width} fields ({','.join(COLUMNS)}), got {len(fields)}")
        code, name, level, parent = (fields[columns[c]] for c in COLUMNS)
        if not CODE_RE.fullmatch(code):
            raise HierarchyError(source, number, f"bad code {code!r}: parts are [A-Z0-9]{{1,12}} joined by dots")
        if level not in LEVELS:
            raise HierarchyError(source, number, f"unit {code}: unknown level {level!r} (one of {', '.join(LEVELS)})")
        if not name:
            raise HierarchyError(source, number, f"unit {code}: empty name")
        if parent and not CODE_RE.fullmatch(parent):
            raise HierarchyError(source, number, f"unit {code}: bad parent code {parent!r}")
        if code in seen:
            raise HierarchyError(source, number, f"duplicate code {code} (first defined on line {seen[code]})")
        seen[code] = number
        units.append(Unit(code, name, level, parent or None, number))
    if columns is None:
        raise HierarchyError(source, 1, f"no header: expected the columns {','.join(COLUMNS)}")
    if not units:
        raise HierarchyError(source, 1, "no units: the file defines no province")
    return units


def _check_structure(units: list[Unit], source: str) -> None:
    """Checks across lines, in this order: parents exist, no cycle, one province, level order, code = parent.part."""
    by_code = {u.code: u for u in units}
    for unit in units:
        if unit.parent is not None and unit.parent not in by_code:
            raise HierarchyError(source, unit.line, f"unit {unit.code}: parent {unit.parent} is not in the file")
    _check_cycles(units, by_code, source)
    provinces = [u for u in units if u.parent is None]
    for unit in provinces:
        if unit.level != "province":
            raise HierarchyError(source, unit.line, f"unit {unit.code}: a {unit.level} needs a parent "
                                 "(only the province has an empty parent)")
    if len(provinces) > 1:
        first, second = provinces[0], provinces[1]
        raise HierarchyError(source, second.line, f"a second province {second.code} "
                             f"(the province {first.code} is on line {first.line}): exactly one is allowed")
    if not provinces:
        raise HierarchyError(source, units[0].line, "no province: exactly one unit must have level province "
                             "and an empty parent")
    for unit in units:
        if unit.parent is None:
            continue
        parent = by_code[unit.parent]
        expected = PARENT_LEVEL.get(unit.level)
        if parent.level != expected:
            wanted = f"a {expected}" if expected else "none (a province has an empty parent)"
            raise HierarchyError(source, unit.line, f"bad level order: {unit.level} {unit.code} has the "
                                 f"{parent.level} {parent.code} as parent; its parent must be {wanted}")
        part = unit.code[len(unit.parent) + 1:]
        if not unit.code.startswith(unit.parent + ".") or not PART_RE.fullmatch(part):
            raise HierarchyError(source, unit.line, f"code {unit.code} is not its parent's code {unit.parent} "
                                 f"+ '.' + one part (e.g. {unit.parent}.{unit.code.rsplit('.', 1)[-1]})")
    for unit in provinces:
        if "." in unit.code:
            raise HierarchyError(source, unit.line, f"the province's code {unit.code} must be one part (no dots)")


def _check_cycles(units: list[Unit], by_code: dict[str, Unit], source: str) -> None:
    """Raise at the first line (in file order) of a unit that lies on a parent cycle."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = known to reach a root
    for start in units:
        path: list[str] = []
        code: str | None = start.code
        while code is not None and state.get(code) != 2:
            if state.get(code) == 1:
                cycle = path[path.index(code):]
                where = min(cycle, key=lambda c: by_code[c].line)
                ring = cycle[cycle.index(where):] + cycle[:cycle.index(where)] + [where]
                raise HierarchyError(source, by_code[where].line, f"cycle in parents: {' -> '.join(ring)}")
            state[code] = 1
            path.append(code)
            code = by_code[code].parent
        for seen in path:
            state[seen] = 2
