"""The sample-province generator: deterministic, realistic, and exact where the report needs it."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.hierarchy import cell_db_name, load_hierarchy
from sync_server.handbook.generate import Province, generate, write_hierarchy, write_to_store
from sync_server.handbook.report_html import pct_whole
from sync_server.handbook.reports import compute
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
    assert sum(m["registered"] for m in active) == 78
    assert all(m["installed"] for m in active if m["registered"])
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
            if kind in ("member", "meeting", "feedback"):
                assert doc["_id"].split(":")[1] == cell
            if kind == "member":
                assert doc["_id"] == f"member:{cell}:{doc['member_no']}"
                assert doc["status"] in ("active", "moved", "inactive") and doc["gender"] in ("male", "female")
                assert re.fullmatch(r"\d{4}-\d\d-\d\d", doc["joined"]) and 1930 < doc["born"] < 2010
                assert doc["last_active"] is None or TIME_RE.fullmatch(doc["last_active"])
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
    assert seconds < 30, f"generating the full province took {seconds:.1f} s"
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
    assert seconds < 30, f"computing the report took {seconds:.1f} s"
    row = report.province
    assert (row.members, row.installed, row.smartphone) == (57_597, 48_597, 46_728)
    assert pct_whole(row.install_rate_all) == "84%" and pct_whole(row.install_rate_target) == "104%"
    assert round(100 * row.install_rate_all) == 84 and round(100 * row.install_rate_target) == 104
    assert row.cells == 2000 and row.cells_using == 1240 and row.share_using == 0.62 and row.meets_goal is False
    for key in ("meetings_held", "attendance_records", "attendance_present", "minutes_recorded",
                "feedback_received"):
        assert getattr(row, key) == p.expected[key]["2026-11"], key
    assert row.registered == p.expected["registered"]
    districts = report.level("district")
    assert sum(d.members for d in districts) == 57_597
    shares = [d.share_using for d in districts]
    assert max(shares) - min(shares) > 0.1  # districts differ (mountain districts lower)
    assert report.unattributed == {}
