"""Reports over hand-built merged records whose every number is known."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.hierarchy import Hierarchy, parse_hierarchy
from sync_server.handbook import reports
from sync_server.handbook.report_html import NO_DATA, fmt_int, fmt_pct, pct_whole, render
from sync_server.handbook.reports import Report, compute, write_reports
from sync_server.store import Database, Server

HIERARCHY = """code,name,level,parent
TQ,Tuyên Quang,province,
TQ.A,Huyện An Bình,district,TQ
TQ.A.X,Xã Xuân Lập,commune,TQ.A
TQ.A.X.C1,Chi bộ thôn Nà Héc,cell,TQ.A.X
TQ.A.X.C2,Chi bộ thôn Bản Lằn,cell,TQ.A.X
TQ.A.Y,Xã Yên Hoa,commune,TQ.A
TQ.A.Y.C1,Chi bộ thôn Khuổi Phầy,cell,TQ.A.Y
TQ.B,Huyện Bắc Sơn,district,TQ
TQ.B.Z,Xã Thượng Lâm,commune,TQ.B
TQ.B.Z.C1,Chi bộ bản Phiêng Mỏ,cell,TQ.B.Z
"""
C1, C2, C3, C4 = "TQ.A.X.C1", "TQ.A.X.C2", "TQ.A.Y.C1", "TQ.B.Z.C1"
M1, M2, M3, M4, M5, M6, M7, M8 = (f"meeting:{c}:{n}" for c, n in
                                  [(C1, "m1"), (C1, "m2"), (C1, "m3"), (C2, "m4"), (C2, "m5"), (C1, "m6"), (C3, "m7"),
                                   (C3, "m8")])


def person(cell: str, no: str, smartphone: bool, *, paired: str | None = None, revoked: str | None = None,
           registered_at: str | None = None, born: int | None = None, active: tuple[str, ...] = (),
           status: str = "active", **flags: bool) -> list[dict]:
    """A member and what they did: a phone paired (and revoked), a first sign-in, the months they used it.
    The flags ``installed``/``registered`` are what usage.py would write, unless given: the report ignores
    ``installed`` and reads ``registered`` only when no date says when."""
    doc = {"_id": f"member:{cell}:{no}", "type": "member", "cell": cell, "member_no": no, "name": "Nguyễn Văn An",
           "status": status, "smartphone": smartphone,
           "installed": flags.get("installed", paired is not None and revoked is None),
           "registered": flags.get("registered", paired is not None or registered_at is not None)}
    if born is not None:
        doc["born"] = born
    if registered_at is not None or (paired is not None and "registered" not in flags):
        doc["registered_at"] = registered_at or paired  # the kiosk writes when the first sign-in was
    if active:
        doc["active_months"] = list(active)
        doc["last_active"] = f"{active[-1]}-15T19:30:00+07:00"
    docs = [doc]
    if paired is not None:
        device = {"_id": f"device:{cell}:d{no}", "type": "device", "cell": cell, "member": doc["_id"],
                  "paired_at": paired, "label": "Điện thoại", "revoked": revoked is not None}
        if revoked is not None:
            device["revoked_at"] = revoked
        docs.append(device)
    return docs


def meeting(meeting_id: str, scheduled: str, status: str, kind: str = "regular", agenda: list[str] | None = None) -> dict:
    doc = {"_id": meeting_id, "type": "meeting", "cell": meeting_id.split(":")[1], "kind": kind,
           "scheduled": scheduled, "status": status}
    if agenda is not None:
        doc["agenda"] = agenda
    return doc


def attendance(meeting_id: str, no: str, status: str, checked_in: bool = False) -> dict:
    cell = meeting_id.split(":")[1]
    doc = {"_id": f"attendance:{meeting_id}:{no}", "type": "attendance", "cell": cell, "meeting": meeting_id,
           "member": f"member:{cell}:{no}", "status": status}
    if checked_in:
        doc["checked_in_at"] = "2026-11-05T19:25:00+07:00"
    return doc


def minutes(meeting_id: str, text: str = "Biên bản") -> dict:
    return {"_id": f"minutes:{meeting_id}", "type": "minutes", "cell": meeting_id.split(":")[1],
            "meeting": meeting_id, "text": text, "written_at": "2026-11-06T09:00:00+07:00"}


def feedback(cell: str, n: str, created_at: str) -> dict:
    return {"_id": f"feedback:{cell}:{n}", "type": "feedback", "cell": cell, "about": "software",
            "text": "Chữ nhỏ quá.", "created_at": created_at}


def reading(cell: str, date: str, counts: dict[str, int]) -> dict:
    return {"_id": f"reading:{cell}:{date}:k1", "type": "reading", "cell": cell, "date": date, "counts": counts}


T = "T08:00:00+07:00"
DIEU_LE, NGHI_QUYET = "article:dieu-le", "article:nghi-quyet"
# Written in this order: C2's attendance comes before its meeting in the changes feed.
DOCS: list[dict] = [
    *parse_hierarchy(HIERARCHY).unit_docs(),
    {"_id": DIEU_LE, "type": "article", "title": "Điều lệ Đảng", "body": "...", "category": "charter",
     "language": "vi", "audience": ["TQ"], "published_at": "2026-10-01T08:00:00+07:00"},
    # C1: 4 active members, 2 with a smartphone; one moved and one deleted (not counted)
    *person(C1, "001", True, paired="2026-09-20" + T, registered_at="2026-09-20" + T, born=1990,
            active=("2026-10", "2026-11")),
    *person(C1, "002", True, born=1950),
    *person(C1, "003", False, paired="2026-10-05" + T, born=1975, active=("2026-11",)),
    # a phone paired in October, revoked (lost) in November: installed in October only, registered since
    *person(C1, "004", False, paired="2026-10-01" + T, revoked="2026-11-15" + T, born=1960),
    *person(C1, "005", True, paired="2026-09-01" + T, status="moved"), *person(C1, "006", True, paired="2026-09-01" + T),
    # held, and members checked in through the app: the cell uses the handbook
    meeting(M1, "2026-11-05T19:30:00+07:00", "held"),
    meeting(M2, "2026-11-20T19:30:00+07:00", "scheduled", "thematic"),
    meeting(M3, "2026-10-07T08:00:00+07:00", "held"),  # its minutes name an article: using in October
    meeting(M6, "2026-12-01T00:30:00+07:00", "held", agenda=[f"Học tập Điều lệ Đảng ({DIEU_LE})"]),
    attendance(M1, "001", "present", checked_in=True), attendance(M1, "002", "present"),
    attendance(M1, "003", "present"), attendance(M1, "004", "absent"),
    attendance(M2, "001", "present", checked_in=True),  # a meeting not held: not counted
    attendance(M3, "001", "present"), attendance(M3, "002", "present"), attendance(M3, "003", "absent"),
    attendance(M3, "004", "excused"),
    minutes(M1), minutes(M3, f"Chi bộ học tập {DIEU_LE}."),
    feedback(C1, "f1", "2026-11-10T08:00:00+07:00"), feedback(C1, "f2", "2026-10-31T23:30:00+07:00"),
    feedback(C1, "f3", "2026-11-30T23:59:00+07:00"),
    reading(C1, "2026-11-03", {DIEU_LE: 3, NGHI_QUYET: 1}), reading(C1, "2026-11-04", {DIEU_LE: 2}),
    # C2: 3 active members, 2 with a smartphone, 3 installed (one outside the target group), nobody active
    *person(C2, "001", True, paired="2026-11-02" + T, born=1995), *person(C2, "002", True, paired="2026-10-10" + T,
                                                                          born=1980),
    *person(C2, "003", False, paired="2026-10-10" + T),
    attendance(M4, "001", "present"), attendance(M4, "002", "present"), attendance(M4, "003", "excused"),
    # held without check-ins, but its agenda links an article: using
    meeting(M4, "2026-11-02T08:00:00+07:00", "held", agenda=["Thu đảng phí", f"Nghị quyết mới ({NGHI_QUYET})"]),
    meeting(M5, "2026-11-25T08:00:00+07:00", "cancelled"),
    reading(C2, "2026-10-30", {NGHI_QUYET: 4}),
    # C3: no smartphone, nothing installed (the flag on 003 says otherwise: nothing backs it); 001 signed in
    # at the kiosk's screen in November; 002's account is older than the dates (a flag without a date)
    *person(C3, "001", False, registered_at="2026-11-03" + T, born=1940, active=("2026-11",)),
    *person(C3, "002", False, born=1945, registered=True), *person(C3, "003", False, born=1998, installed=True),
    meeting(M7, "2026-11-12T08:00:00+07:00", "cancelled"),
    # held and recorded, but nobody checked in through the app and nothing links the handbook: not using
    meeting(M8, "2026-11-19T08:00:00+07:00", "held", agenda=["Thu đảng phí"]),
    attendance(M8, "001", "present"), attendance(M8, "002", "present"), attendance(M8, "003", "absent"),
    minutes(M8, "Chi bộ họp bình thường."),
    # C4: nothing at all. A cell that is not in the hierarchy:
    *person("TQ.Q.Q.C9", "001", True, registered_at="2026-11-01" + T),
    meeting("meeting:TQ.Q.Q.C9:x", "2026-11-03T08:00:00+07:00", "held"),
]


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    return parse_hierarchy(HIERARCHY, "test")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    server = Server(tmp_path_factory.mktemp("reports"))
    database = server.create("province")
    results = database.bulk_docs([dict(d) for d in DOCS])
    assert all("error" not in r for r in results), results
    rev = next(r["rev"] for r in results if r["id"] == f"member:{C1}:006")
    assert "error" not in database.bulk_docs([{"_id": f"member:{C1}:006", "_rev": rev, "_deleted": True}])[0]
    yield database
    database.close()


@pytest.fixture(scope="module")
def november(db: Database, hierarchy: Hierarchy) -> Report:
    return compute(db, hierarchy, "2026-11", generated_at="2026-12-01T02:00:00+07:00")


def counts(report: Report, code: str) -> dict[str, Any]:
    row = report.row(code).to_dict()
    return {k: row[k] for k in ("members", "smartphone", "installed", "registered", "install_rate_all",
                                "install_rate_target", "cells", "cells_using", "share_using", "meets_goal",
                                "meetings_held", "attendance_records", "attendance_present", "attendance_rate",
                                "minutes_recorded", "feedback_received")}


def expect(members: int, smartphone: int, installed: int, registered: int, cells: int, using: int,
           share: float | None, held: int, present: int, records: int, minutes_: int, fb: int) -> dict[str, Any]:
    return {"members": members, "smartphone": smartphone, "installed": installed, "registered": registered,
            "install_rate_all": installed / members if members else None,
            "install_rate_target": installed / smartphone if smartphone else None,
            "cells": cells, "cells_using": using, "share_using": share,
            "meets_goal": None if share is None else share > 0.80, "meetings_held": held,
            "attendance_records": records, "attendance_present": present,
            "attendance_rate": present / records if records else None,
            "minutes_recorded": minutes_, "feedback_received": fb}


NOVEMBER = {
    C1: expect(4, 2, 2, 3, 1, 1, 1.0, 1, 3, 4, 1, 2),
    C2: expect(3, 2, 3, 3, 1, 1, 1.0, 1, 2, 3, 0, 0),
    C3: expect(3, 0, 0, 2, 1, 0, 0.0, 1, 2, 3, 1, 0),
    C4: expect(0, 0, 0, 0, 1, 0, None, 0, 0, 0, 0, 0),
    "TQ.A.X": expect(7, 4, 5, 6, 2, 2, 1.0, 2, 5, 7, 1, 2),
    "TQ.A.Y": expect(3, 0, 0, 2, 1, 0, 0.0, 1, 2, 3, 1, 0),
    "TQ.B.Z": expect(0, 0, 0, 0, 1, 0, None, 0, 0, 0, 0, 0),
    "TQ.A": expect(10, 4, 5, 8, 3, 2, 2 / 3, 3, 7, 10, 2, 2),
    "TQ.B": expect(0, 0, 0, 0, 1, 0, None, 0, 0, 0, 0, 0),
    "TQ": expect(10, 4, 5, 8, 4, 2, 0.5, 3, 7, 10, 2, 2),
}
OCTOBER = {
    C1: expect(4, 2, 3, 3, 1, 1, 1.0, 1, 2, 4, 1, 1),
    C2: expect(3, 2, 2, 2, 1, 0, None, 0, 0, 0, 0, 0),
    C3: expect(3, 0, 0, 1, 1, 0, None, 0, 0, 0, 0, 0),
    "TQ.A.X": expect(7, 4, 5, 5, 2, 1, 0.5, 1, 2, 4, 1, 1),
    "TQ.A.Y": expect(3, 0, 0, 1, 1, 0, None, 0, 0, 0, 0, 0),
    "TQ.A": expect(10, 4, 5, 6, 3, 1, 1 / 3, 1, 2, 4, 1, 1),
    "TQ.B": expect(0, 0, 0, 0, 1, 0, None, 0, 0, 0, 0, 0),
    "TQ": expect(10, 4, 5, 6, 4, 1, 0.25, 1, 2, 4, 1, 1),
}


@pytest.mark.parametrize("code", list(NOVEMBER))
def test_november_every_metric(november: Report, code: str) -> None:
    assert counts(november, code) == pytest.approx(NOVEMBER[code])


@pytest.mark.parametrize("code", list(OCTOBER))
def test_october_every_metric(db: Database, hierarchy: Hierarchy, code: str) -> None:
    assert counts(compute(db, hierarchy, "2026-10"), code) == pytest.approx(OCTOBER[code])


def test_usage_follows_behaviour_not_flags(november: Report, db: Database, hierarchy: Hierarchy) -> None:
    # active: from the months the kiosk wrote; C2 installed everything and used nothing
    assert [november.row(c).active for c in (C1, C2, C3, C4)] == [2, 0, 1, 0]
    october = compute(db, hierarchy, "2026-10")
    assert [october.row(c).active for c in (C1, C2, C3)] == [1, 0, 0]
    # the revoked phone (C1 004) counts in October, not in November; C3 003's installed flag never
    assert october.row(C1).installed == 3 and november.row(C1).installed == 2 and november.row(C3).installed == 0
    # "uses the handbook": C1 by check-ins, C2 by its agenda's article; C3 held a meeting without either
    assert [november.row(c).cells_using for c in (C1, C2, C3)] == [1, 1, 0]
    assert november.row(C3).meetings_held == 1 and november.row(C3).cells_with_meetings == 1
    assert october.row(C1).cells_using == 1  # its minutes name an article


def test_cells_to_help_and_age_bands(november: Report) -> None:
    assert [(r.code, r.help) for r in november.to_help()] == [(C2, ["inactive"]), (C3, ["no_app", "not_using"])]
    assert november.province.cells_to_help == 2 and november.row("TQ.A.Y").cells_to_help == 1
    assert november.row(C4).help == []  # no members: nobody to help
    c1 = november.row(C1)
    assert c1.band("35_49") == {"members": 1, "installed": 1, "registered": 1, "active": 1}
    assert c1.band("50_64") == {"members": 1, "installed": 1, "registered": 1, "active": 1}
    assert c1.band("65_plus") == {"members": 2, "installed": 0, "registered": 1, "active": 0}
    assert november.row(C2).band("unknown") == {"members": 1, "installed": 1, "registered": 1, "active": 0}
    province = november.province
    for i, name in enumerate(("members", "installed", "registered", "active")):
        assert sum(counts[i] for counts in province.bands.values()) == getattr(province, name), name
    assert province.band("65_plus") == {"members": 4, "installed": 0, "registered": 3, "active": 1}


def test_reads_per_cell_and_month(november: Report, db: Database, hierarchy: Hierarchy) -> None:
    assert [november.row(c).reads for c in (C1, C2, C3)] == [6, 0, 0] and november.province.reads == 6
    assert november.top_articles("TQ") == [(DIEU_LE, 5), (NGHI_QUYET, 1)]
    assert november.top_articles(C1) == november.top_articles("TQ.A.X") == november.top_articles("TQ")
    assert november.top_articles(C2) == [] and november.title(DIEU_LE) == "Điều lệ Đảng"
    assert november.title(NGHI_QUYET) == NGHI_QUYET  # not in the merged records: its id
    assert compute(db, hierarchy, "2026-10").row(C2).reads == 4
    assert november.row(C2, "2026-10").reads == 4  # the trend has the same rows
    assert november.months == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    assert compute(db, hierarchy, "2026-11", trend=1).months == ["2026-11"]


def test_offsets_are_read_as_written(db: Database, hierarchy: Hierarchy) -> None:
    december = compute(db, hierarchy, "2026-12")
    assert december.row(C1).meetings_held == 1 and december.row(C1).share_using == 1.0
    assert december.row(C1).attendance_rate is None  # held, but nobody checked in: no data, not 0%
    assert december.province.share_using == 0.25


def test_a_month_without_data_gives_none_not_zero(db: Database, hierarchy: Hierarchy) -> None:
    report = compute(db, hierarchy, "2027-01")
    for row in (r for rows in report.rows.values() for r in rows):
        assert row.share_using is None and row.meets_goal is None and row.attendance_rate is None
        assert row.meetings_held == row.cells_using == row.minutes_recorded == row.feedback_received == 0
    # Membership is the members' current status: still known.
    assert report.province.install_rate_all == 0.5 and report.province.install_rate_target == 1.25
    assert report.row("TQ.B").install_rate_all is None


def test_rates_above_one_against_the_target_group(november: Report) -> None:
    assert november.row(C2).install_rate_target == 1.5
    assert round(100 * november.province.install_rate_target) == 125


def test_unattributed_and_scan_counts(november: Report) -> None:
    assert november.unattributed == {"member": 1, "meeting": 1}
    assert november.docs_scanned == len(DOCS)  # the deleted member is seen once, and skipped
    assert november.month == "2026-11" and november.goal == 0.80 and november.database == "province"
    assert [r.code for r in november.level("district")] == ["TQ.A", "TQ.B"]
    assert [r.code for r in november.children("TQ.A")] == ["TQ.A.X", "TQ.A.Y"]
    assert november.children(C1) == []
    assert november.row(C1).district == "TQ.A" and november.row(C1).commune == "TQ.A.X"


def test_one_streaming_pass_each_document_parsed_once(db: Database, hierarchy: Hierarchy,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []
    parsed: list[str] = []

    class Spy:
        name = "province"

        def changes(self, since: int = 0, **kwargs: Any) -> Any:
            calls.append((since, kwargs))
            return db.changes(since, **kwargs)

        def __getattr__(self, attr: str) -> Any:
            raise AssertionError(f"compute used db.{attr}")

    def loads(text: str) -> Any:
        doc = json.loads(text)
        parsed.append(doc["_id"])
        return doc

    monkeypatch.setattr(reports, "json", SimpleNamespace(loads=loads, dumps=json.dumps))
    report = compute(Spy(), hierarchy, "2026-11")
    assert calls == [(0, {"include_docs": True})]
    assert len(parsed) == len(set(parsed))
    # Units and deleted documents are not even parsed (articles are, for their titles).
    assert not [i for i in parsed if i.startswith("unit:")]
    assert DIEU_LE in parsed and f"device:{C1}:d001" in parsed
    assert f"member:{C1}:006" not in parsed
    assert report.province.members == 10


def test_bad_month(db: Database, hierarchy: Hierarchy) -> None:
    for bad in ("2026-13", "2026-1", "November", ""):
        with pytest.raises(ValueError):
            compute(db, hierarchy, bad)


def test_formatting() -> None:
    assert fmt_int(57597) == "57.597" and fmt_int(0) == "0" and fmt_int(1234567) == "1.234.567"
    assert fmt_pct(48597 / 57597) == "84,4%" and fmt_pct(48597 / 46728) == "104,0%"
    assert fmt_pct(12.345) == "1.234,5%" and fmt_pct(0.0) == "0,0%"
    assert pct_whole(48597 / 57597) == "84%" and pct_whole(48597 / 46728) == "104%" and pct_whole(0.625) == "63%"
    assert fmt_pct(None) == pct_whole(None) == NO_DATA == "không có dữ liệu (no data)"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_write_reports(november: Report, tmp_path: Path) -> None:
    written = write_reports(november, tmp_path / "out")
    assert set(written) == {"province.csv", "districts.csv", "communes.csv", "cells.csv", "trend.csv", "help.csv",
                            "reading.csv", "summary.json", "report.html"}
    assert written["cells.csv"].read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets show diacritics
    province = read_csv(written["province.csv"])
    assert len(province) == 1
    assert province[0]["members"] == "10" and province[0]["install_rate_all"] == "0.5000"
    assert province[0]["install_rate_target"] == "1.2500" and province[0]["share_using"] == "0.5000"
    assert province[0]["meets_goal"] == "no" and province[0]["attendance_rate"] == "0.7000"
    districts = read_csv(written["districts.csv"])
    assert [d["code"] for d in districts] == ["TQ.A", "TQ.B"]
    assert districts[0]["name"] == "Huyện An Bình" and districts[0]["share_using"] == "0.6667"
    b = districts[1]
    assert b["members"] == "0" and b["parent"] == "TQ"
    for column in ("install_rate_all", "install_rate_target", "share_using", "attendance_rate", "meets_goal"):
        assert b[column] == "no data", column
    communes = read_csv(written["communes.csv"])
    assert [(c["code"], c["district"], c["share_using"], c["meets_goal"]) for c in communes] == [
        ("TQ.A.X", "TQ.A", "1.0000", "yes"), ("TQ.A.Y", "TQ.A", "0.0000", "no"),
        ("TQ.B.Z", "TQ.B", "no data", "no data")]
    cells = read_csv(written["cells.csv"])
    assert [(c["code"], c["commune"], c["cells_using"]) for c in cells] == [
        (C1, "TQ.A.X", "1"), (C2, "TQ.A.X", "1"), (C3, "TQ.A.Y", "0"), (C4, "TQ.B.Z", "0")]
    assert cells[0]["name"] == "Chi bộ thôn Nà Héc"
    assert [(c["active"], c["reads"], c["help"]) for c in cells] == [
        ("2", "6", ""), ("0", "0", "inactive"), ("1", "0", "no_app;not_using"), ("0", "0", "")]
    assert cells[0]["age_65_plus_members"] == "2" and cells[0]["age_65_plus_registered"] == "1"
    trend = read_csv(written["trend.csv"])
    assert len(trend) == 10 * 6  # every unit, six months
    province_trend = [(t["month"], t["installed"], t["registered"], t["cells_using"], t["share_using"])
                      for t in trend if t["code"] == "TQ"]
    assert province_trend[-2:] == [("2026-10", "5", "6", "1", "0.2500"), ("2026-11", "5", "8", "2", "0.5000")]
    assert province_trend[0] == ("2026-06", "0", "1", "0", "no data")  # 002's dateless registration
    helped = read_csv(written["help.csv"])
    assert [(h["code"], h["help"], h["members"], h["installed"], h["active"]) for h in helped] == [
        (C2, "inactive", "3", "3", "0"), (C3, "no_app;not_using", "3", "0", "1")]
    assert helped[1]["age_65_plus_members"] == "2" and helped[1]["age_under_35_members"] == "1"
    reading_rows = read_csv(written["reading.csv"])
    assert [(r["code"], r["article"], r["title"], r["reads"]) for r in reading_rows if r["level"] == "province"] == [
        ("TQ", DIEU_LE, "Điều lệ Đảng", "5"), ("TQ", NGHI_QUYET, "", "1")]

    summary = json.loads(written["summary.json"].read_text(encoding="utf-8"))
    assert summary["month"] == "2026-11" and summary["goal"] == 0.8
    assert summary["generated_at"] == "2026-12-01T02:00:00+07:00"
    assert summary["province"]["install_rate_target"] == 1.25 and summary["province"]["members"] == 10
    assert summary["districts"][1]["share_using"] is None and summary["districts"][1]["install_rate_all"] is None
    assert summary["unattributed"] == {"member": 1, "meeting": 1}
    assert summary["units"] == {"province": 1, "district": 2, "commune": 3, "cell": 4}
    assert [t["month"] for t in summary["trend"]] == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10",
                                                       "2026-11"]
    assert summary["cells_to_help"] == [C2, C3]
    assert summary["top_articles"][0] == {"article": DIEU_LE, "title": "Điều lệ Đảng", "reads": 5}

    html = written["report.html"].read_text(encoding="utf-8")
    assert html == render(november)
    assert "Huyện Bắc Sơn" in html and "Chi bộ bản Phiêng Mỏ" in html
    assert NO_DATA in html and 'class="n nodata">không có dữ liệu (no data)</td>' in html
    assert "50%" in html and "125%" in html  # the province's headline rates
    helped = html.split('id="help"', 1)[1].split('id="reading"', 1)[0]
    assert re.findall(r'<tr data-code="([^"]+)">', helped) == [C2, C3]
    assert "installed but inactive" in helped and "nobody installed" in helped and "(by age band)" in helped
    trend = html.split('id="trend-table"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-month="([^"]+)"', trend) == november.months
    top = html.split('id="top-articles"', 1)[1].split("</table>", 1)[0]
    assert top.index("Điều lệ Đảng") < top.index(NGHI_QUYET)
    lowered = html.lower()
    for fetching in ("<script", "<link", "src=", "href=", "url(", "@import", "<iframe", "<img"):
        assert fetching not in lowered, fetching


def test_no_data_is_never_printed_as_zero(db: Database, hierarchy: Hierarchy) -> None:
    html = render(compute(db, hierarchy, "2027-01"))
    headline = html.split('<section class="cards"', 1)[1].split("</section>", 1)[0]
    assert headline.count(NO_DATA) == 3  # share using, whether the goal is met, attendance rate
    values = re.findall(r'<div class="value[^"]*">([^<]*)</div>', headline)
    # then counts: minutes recorded, members active, cells to help (nobody recorded a meeting)
    assert values == ["50%", "125%", NO_DATA, NO_DATA, "0", "0", "3"]
    chart = html.split('id="chart-share"', 1)[1].split("</svg>", 1)[0]
    assert "<rect" not in chart.split('class="legend"')[0]  # no bars, "no data" instead
    assert chart.count(f">{NO_DATA}</text>") == 2
