"""The province's nightly pull from a hub (our server, and a real Apache CouchDB 3) and the reports, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import couch_dump
import pytest
import yaml

from schemas.hierarchy import cell_db_name
from sync_server.handbook.generate import generate

pytestmark = pytest.mark.peers
MONTH = "2026-11"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(params=["ours", "couchdb"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Path, Any]:
    """A hub holding a generated small province's cell databases, and the province's config.yaml."""
    kiosk = request.getfixturevalue("kiosk" if request.param == "ours" else "couchdb")
    province = generate("small", seed=2, months=[MONTH])
    hierarchy = tmp_path / "hierarchy.csv"
    province.write_hierarchy(hierarchy)
    for cell, docs in province.cell_docs.items():
        couch_dump.create_db(kiosk.url, cell_db_name(cell))
        couch_dump.bulk_docs(kiosk.url, cell_db_name(cell), docs)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"data_dir": str(tmp_path / "province")},
        "province": {"hub_url": kiosk.url, "hierarchy": str(hierarchy), "report_dir": str(tmp_path / "reports")},
    }))
    return kiosk, config, province


def test_nightly_pulls_every_cell_and_reports_the_known_numbers(setup: Any, tmp_path: Path) -> None:
    hub, config, province = setup
    first = cli("report", "--now", "--month", MONTH, "--config", str(config))
    assert first.returncode == 0, first.stderr
    cells = len(province.cell_docs)
    assert f"pulled {cells} cells ({cells} changed" in first.stdout
    summary = json.loads((tmp_path / "reports" / MONTH / "summary.json").read_text())
    row, expected = summary["province"], province.expected
    for key in ("members", "smartphone", "installed", "registered"):
        assert row[key] == expected[key], key
    for key in ("cells_using", "meetings_held", "minutes_recorded", "feedback_received"):
        assert row[key] == expected[key][MONTH], key
    assert (tmp_path / "reports" / MONTH / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_second_night_pulls_only_what_changed(setup: Any) -> None:
    hub, config, province = setup
    assert cli("report", "--now", "--month", MONTH, "--config", str(config)).returncode == 0
    quiet = cli("report", "--now", "--month", MONTH, "--config", str(config))
    assert quiet.returncode == 0 and "(0 changed, 0 documents)" in quiet.stdout
    cell = next(iter(province.cell_docs))
    feedback = {"_id": f"feedback:{cell}:11111111-2222-4333-8444-555555555555", "type": "feedback", "cell": cell,
                "about": "software", "text": "Chữ trên màn hình hơi nhỏ.", "created_at": "2026-11-20T10:00:00+07:00"}
    couch_dump.bulk_docs(hub.url, cell_db_name(cell), [feedback])
    one = cli("report", "--now", "--month", MONTH, "--config", str(config))
    assert one.returncode == 0 and "(1 changed, 1 documents)" in one.stdout


def test_a_month_without_data_says_so(setup: Any) -> None:
    hub, config, province = setup
    proc = cli("report", "--now", "--month", "2025-01", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "of cells used the handbook" in proc.stdout and "no data" in proc.stdout


def test_report_refuses_a_bad_month(setup: Any) -> None:
    hub, config, province = setup
    proc = cli("report", "--now", "--month", "2026-13", "--config", str(config))
    assert proc.returncode != 0 and "--month must be YYYY-MM" in proc.stderr


def test_unreachable_cells_are_named_in_the_report(setup: Any, tmp_path: Path) -> None:
    hub, config, province = setup
    first_cell = next(iter(province.cell_docs))
    with __import__("httpx").Client(base_url=hub.url, trust_env=False) as http:
        assert http.delete(f"/{cell_db_name(first_cell)}").status_code == 200
    proc = cli("report", "--now", "--month", MONTH, "--config", str(config))
    assert proc.returncode == 1 and "INCOMPLETE: 1 cells" in proc.stderr
    summary = json.loads((tmp_path / "reports" / MONTH / "summary.json").read_text())
    assert summary["missing_cells"] == [first_cell]
    assert "could not be pulled" in (tmp_path / "reports" / MONTH / "report.html").read_text(encoding="utf-8")


def test_a_hub_that_is_down_stops_the_night_at_once(tmp_path: Path) -> None:
    from conftest import free_port

    province = generate("small", seed=2, months=[MONTH])
    hierarchy = tmp_path / "hierarchy.csv"
    province.write_hierarchy(hierarchy)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"server": {"data_dir": str(tmp_path / "p")},
                                      "province": {"hub_url": f"http://127.0.0.1:{free_port()}/", "hierarchy": str(hierarchy)}}))
    proc = cli("report", "--now", "--month", MONTH, "--config", str(config))
    assert proc.returncode != 0 and proc.stderr.startswith("Error:") and len(proc.stderr.strip().splitlines()) == 1
