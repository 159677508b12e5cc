"""The sample-province generator: deterministic, realistic, and exact where the report needs it."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas.hierarchy import cell_db_name, load_hierarchy
from sync_server.handbook.generate import Province, generate, write_hierarchy, write_to_store
from sync_server.handbook.report_html import pct_whole
from sync_server.handbook.reports import Report, compute
from sync_server.handbook.usage import Usage
from sync_server.store import Server

TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00")
DISTRICT_NAMES = ["Thành phố Tuyên Quang", "Huyện Lâm Bình", "Huyện Na Hang", "Huyện Chiêm Hóa", "Huyện Hàm Yên",
                  "Huyện Yên Sơn", "Huyện Sơn Dương"]


def test_same_seed_same_province() -> None:
    a = generate("small", seed=7, months=["2026-10", "2026-11"])
    b = generate("small", seed=7, months=["2026-10", "2026-11"])
    assert a.hierarchy_csv == b.hierarchy_csv
    assert a.cell_docs == b.cell_docs and a.articles == b.articles and a.expected == b.expected
    c = generate("small", seed=8, months=["2026-10", "2026-11"])
    assert c.cell_docs != a.cell_docs


def test_small_province() -> None:
    p = generate("small", seed=1, months=["2026-11"])
    h = p.hierarchy
    assert [u.name for u in h.districts()] == ["Huyện Na Hang"]
    assert len(h.communes()) == 2 and len(h.cells()) == 4
    assert p.units == h.unit_docs() and p.units[0]["_id"] == "unit:TQ"
    assert set(p.cell_docs) == {c.code for c in h.cells()}
    members = [d for d in p.docs() if d["type"] == "member"]
    active = [m for m in members if m["status"] == "active"]
    assert len(active) == 100 and len(members) == 103  # 2 moved and 1 inactive besides
    assert sum(m["smartphone"] for m in active) == 81 and sum(m["installed"] for m in active) == 84
    assert sum(m["registered"] for m in active) == 90
    assert all(m["registered"] for m in active if m["installed"])  # pairing a phone is a sign-in
    # the flags are what the records say, as the kiosk writes them: a live device, a first sign-in
    live = Counter(d["member"] for d in p.docs() if d["type"] == "device" and not d["revoked"])
    assert all(m["installed"] == (live[m["_id"]] > 0) for m in members)
    assert all(m["registered"] == ("registered_at" in m) for m in members)
    revoked = {d["member"] for d in p.docs() if d["type"] == "device" and d["revoked"]}
    assert any(m["_id"] in revoked and not m["installed"] for m in active)  # a lost phone
    assert any(m["installed"] and not m["smartphone"] for m in active)  # outside the target group
    assert p.expected["members"] == 100 and p.expected["cells_using"] == {"2026-11": 2}


def test_documents_follow_the_model() -> None:
    p = generate("small", seed=3, months=["2026-10", "2026-11"])
    ids = [d["_id"] for d in p.docs()]
    assert len(ids) == len(set(ids))
    held: dict[str, str] = {}
    for cell, docs in p.cell_docs.items():
        for doc in docs:
            kind = doc["type"]
            assert doc["_id"].startswith(f"{kind}:")
            assert doc["cell"] == cell
            if kind in ("member", "meeting", "feedback", "device", "reading"):
                assert doc["_id"].split(":")[1] == cell
            if kind == "member":
                assert doc["_id"] == f"member:{cell}:{doc['member_no']}"
                assert doc["status"] in ("active", "moved", "inactive") and doc["gender"] in ("male", "female")
                assert re.fullmatch(r"\d{4}-\d\d-\d\d", doc["joined"]) and 1930 < doc["born"] < 2010
                assert doc["last_active"] is None or TIME_RE.fullmatch(doc["last_active"])
                assert doc.get("active_months", []) == sorted(set(doc.get("active_months", [])))
                if doc["last_active"]:
                    assert doc["last_active"][:7] == doc["active_months"][-1]
            elif kind == "device":
                assert doc["member"].startswith(f"member:{cell}:") and TIME_RE.fullmatch(doc["paired_at"])
                assert not doc["revoked"] or doc["revoked_at"] > doc["paired_at"]
            elif kind == "reading":
                assert doc["_id"] == f"reading:{cell}:{doc['date']}:kiosk" and doc["date"][:7] in p.months
                assert all(a.startswith("article:") and n > 0 for a, n in doc["counts"].items())
            elif kind == "meeting":
                assert doc["kind"] in ("regular", "thematic", "extraordinary")
                assert doc["status"] in ("scheduled", "held", "cancelled")
                assert TIME_RE.fullmatch(doc["scheduled"]) and doc["scheduled"][:7] in p.months
                if doc["status"] == "held":
                    held[doc["_id"]] = cell
                    assert TIME_RE.fullmatch(doc["held_at"])
            elif kind == "attendance":
                assert doc["_id"] == f"attendance:{doc['meeting']}:{doc['member'].rsplit(':', 1)[1]}"
                assert doc["status"] in ("present", "absent", "excused")
            elif kind == "minutes":
                assert doc["_id"] == f"minutes:{doc['meeting']}" and TIME_RE.fullmatch(doc["written_at"])
            elif kind == "feedback":
                assert doc["about"] in ("software", "content", "training", "other") and 1 <= doc["rating"] <= 5
            else:
                pytest.fail(f"unexpected type {kind}")
    # One attendance document per active member per held meeting, and only for held meetings.
    attendance = Counter(d["meeting"] for d in p.docs() if d["type"] == "attendance")
    active = Counter(d["cell"] for d in p.docs() if d["type"] == "member" and d["status"] == "active")
    assert set(attendance) == set(held)
    assert all(attendance[m] == active[cell] for m, cell in held.items())
    assert {d["meeting"] for d in p.docs() if d["type"] == "minutes"} <= set(held)
    for article in p.articles:
        assert article["_id"].startswith("article:") and article["language"] == "vi"
        assert article["category"] in ("resolution", "directive", "charter", "study", "training", "news")
        assert article["audience"] and all(a in p.hierarchy for a in article["audience"])


def test_vietnamese_names() -> None:
    p = generate("small", seed=1)
    names = [d["name"] for d in p.docs() if d["type"] == "member"]
    assert all(len(n.split()) == 3 for n in names)  # family, middle, given
    assert sum(n != n.encode("ascii", "ignore").decode() for n in names) > len(names) / 2  # diacritics
    assert any(n.split()[1] == "Thị" for n in names)


def test_using_share_is_exact_and_per_month() -> None:
    p = generate("small", seed=2, months=["2026-10", "2026-11"], using_share={"2026-10": 0.25, "2026-11": 1.0})
    assert p.expected["cells_using"] == {"2026-10": 1, "2026-11": 4}
    for month, using in p.expected["cells_using"].items():
        cells = {d["cell"] for d in p.docs() if d["type"] == "meeting" and d["status"] == "held"
                 and d["scheduled"].startswith(month)}
        assert len(cells) == using
    with pytest.raises(ValueError):
        generate("small", using_share=1.5)
    with pytest.raises(ValueError):
        generate("small", months=["2026-13"])
    with pytest.raises(ValueError):
        generate("huge")


def test_small_province_in_the_store(tmp_path: Path) -> None:
    p = generate("small", seed=1, months=["2026-11"])
    server = Server(tmp_path)
    db = write_to_store(p, server, cell_dbs=True, handbook_db="handbook")
    assert db.doc_count == len(p.units) + p.doc_count()
    for code, docs in p.cell_docs.items():
        assert server.get(cell_db_name(code)).doc_count == len(docs)
    assert server.get("handbook").doc_count == len(p.units) + len(p.articles)
    report = compute(db, p.hierarchy, "2026-11")
    assert report.province.members == 100 and report.province.cells_using == p.expected["cells_using"]["2026-11"]
    assert pct_whole(report.province.install_rate_all) == "84%"
    assert pct_whole(report.province.install_rate_target) == "104%"
    for key in ("meetings_held", "attendance_records", "attendance_present", "minutes_recorded",
                "feedback_received"):
        assert getattr(report.province, key) == p.expected[key]["2026-11"], key


def test_the_figures_follow_behaviour(tmp_path: Path) -> None:
    """More check-ins: more cells using the handbook; a revoked phone: fewer installed. Done the way the
    kiosk does it (the attendance a member writes, ``Usage.revoked``), on the cells' own databases."""
    p = generate("small", seed=3, months=["2026-11"], using_share=0.5)  # seed 3: a cell met without the app
    server = Server(tmp_path)
    write_to_store(p, server, cell_dbs=True)
    hierarchy, month = p.hierarchy, "2026-11"

    def report(code: str) -> Report:
        return compute(server.get(cell_db_name(code)), hierarchy, month)

    before = {code: report(code).row(code) for code in p.cell_docs}
    assert sum(r.cells_using for r in before.values()) == p.expected["cells_using"][month] == 2
    assert sum(r.installed for r in before.values()) == 84
    # a cell that held its meeting without the app: its members now check in through the app
    paper = next(code for code, row in before.items() if row.meetings_held and not row.cells_using)
    db = server.get(cell_db_name(paper))
    meeting = next(d for d in p.cell_docs[paper] if d["type"] == "meeting" and d["status"] == "held")
    present = [d for d in p.cell_docs[paper] if d["type"] == "attendance" and d["meeting"] == meeting["_id"]
               and d["status"] == "present"]
    assert not any("checked_in_at" in d for d in present)
    checked = {**db.get(present[0]["_id"]), "checked_in_at": meeting["held_at"]}
    assert "error" not in db.bulk_docs([checked])[0]
    after = report(paper).row(paper)
    assert after.cells_using == 1 and after.share_using == 1.0 and "not_using" not in after.help
    # a member loses their phone: the kiosk admin revokes it
    code = next(c for c, row in before.items() if row.installed)
    device = next(d for d in p.cell_docs[code] if d["type"] == "device" and not d["revoked"])
    october = compute(server.get(cell_db_name(code)), hierarchy, "2026-10").row(code).installed
    Usage(server, clock=lambda: datetime(2026, 11, 20, 10, 0, tzinfo=timezone(timedelta(hours=7)))).revoked(
        code, device["_id"].rsplit(":", 1)[1])
    assert report(code).row(code).installed == before[code].installed - 1
    assert server.get(cell_db_name(code)).get(device["member"])["installed"] is False
    # October's figure keeps the phone: it was revoked in November
    assert compute(server.get(cell_db_name(code)), hierarchy, "2026-10").row(code).installed == october


def test_write_hierarchy(tmp_path: Path) -> None:
    path = write_hierarchy(tmp_path / "tq.csv", size="small", seed=1)
    assert load_hierarchy(path).unit_docs() == generate("small", seed=1).units
    path = write_hierarchy(tmp_path / "tq-full.csv")  # only the hierarchy: fast
    h = load_hierarchy(path)
    assert [u.name for u in h.districts()] == DISTRICT_NAMES
    assert path.read_text(encoding="utf-8").startswith("# ")


# -- the full province -----------------------------------------------------------------

@pytest.fixture(scope="module")
def full() -> tuple[Province, float]:
    start = time.monotonic()
    province = generate("full", seed=1, months=["2026-11"], using_share=0.62)
    return province, time.monotonic() - start


def test_full_province_counts(full: tuple[Province, float]) -> None:
    p, seconds = full
    print(f"generating the full province took {seconds:.1f} s")  # timed by bench/, never asserted: the machine is shared
    h = p.hierarchy
    assert [u.name for u in h.districts()] == DISTRICT_NAMES
    assert 130 <= len(h.communes()) <= 150
    assert len(h.cells()) == 2000
    active = [d for d in p.docs() if d["type"] == "member" and d["status"] == "active"]
    installed = sum(m["installed"] for m in active)
    target = sum(m["smartphone"] for m in active)
    assert len(active) == 57_597 and installed == 48_597 and target == 46_728
    assert round(100 * installed / len(active)) == 84 and round(100 * installed / target) == 104
    assert sum(m["installed"] and not m["smartphone"] for m in active) > 0
    assert p.expected["cells_using"]["2026-11"] == 1240


@pytest.fixture(scope="module")
def full_db(full: tuple[Province, float], tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    db = write_to_store(full[0], Server(tmp_path_factory.mktemp("full")))
    yield db
    db.close()


def test_full_province_report(full: tuple[Province, float], full_db: object) -> None:
    p = full[0]
    start = time.monotonic()
    report = compute(full_db, p.hierarchy, "2026-11")
    seconds = time.monotonic() - start
    print(f"computing the report took {seconds:.1f} s")  # timed by bench/, never asserted: the machine is shared
    row = report.province
    assert (row.members, row.installed, row.smartphone) == (57_597, 48_597, 46_728)
    assert pct_whole(row.install_rate_all) == "84%" and pct_whole(row.install_rate_target) == "104%"
    assert round(100 * row.install_rate_all) == 84 and round(100 * row.install_rate_target) == 104
    assert row.cells == 2000 and row.cells_using == 1240 and row.share_using == 0.62 and row.meets_goal is False
    for key in ("meetings_held", "attendance_records", "attendance_present", "minutes_recorded",
                "feedback_received"):
        assert getattr(row, key) == p.expected[key]["2026-11"], key
    assert row.registered == p.expected["registered"]
    assert row.active == p.expected["active"]["2026-11"] and row.reads == p.expected["reads"]["2026-11"]
    # the help list: the cells not using the handbook in their meetings, with why
    assert row.cells_to_help == len(report.to_help()) >= row.cells - row.cells_using
    assert all({"no_meeting", "not_using"} & set(c.help) for c in report.to_help() if not c.cells_using)
    bands = report.province.bands  # older members struggle: fewer of them installed
    assert bands["65_plus"][1] / bands["65_plus"][0] < bands["35_49"][1] / bands["35_49"][0]
    districts = report.level("district")
    assert sum(d.members for d in districts) == 57_597
    shares = [d.share_using for d in districts]
    assert max(shares) - min(shares) > 0.1  # districts differ (mountain districts lower)
    assert report.unattributed == {}
