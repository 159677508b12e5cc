"""Provisioning a hub from the hierarchy, against pouchdb-server, our own server and Apache CouchDB 3 as hub."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_server.handbook.generate import generate

pytestmark = pytest.mark.peers


@pytest.fixture(params=["pouchdb-server", "ours", "couchdb"])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The root URL (with admin credentials where needed) of an empty hub."""
    if request.param == "pouchdb-server":
        return request.getfixturevalue("pouchdb_server").url
    if request.param == "couchdb":
        return request.getfixturevalue("couchdb").url
    return request.getfixturevalue("kiosk").url


def seqs(hub: str) -> dict[str, str]:
    with httpx.Client(base_url=hub, trust_env=False, timeout=30) as http:
        names = [n for n in http.get("/_all_dbs").json() if not n.startswith("_replicator")]
        return {n: http.get(f"/{n.replace('/', '%2F')}").json()["update_seq"] for n in names}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=300)


def test_provision_sets_up_every_cell_and_is_idempotent(hub: str, tmp_path: Path) -> None:
    province = generate("small", seed=3)
    hierarchy = tmp_path / "hierarchy.csv"
    province.write_hierarchy(hierarchy)
    cells = [u.code for u in province.hierarchy.cells()]
    credentials = tmp_path / "kiosks.csv"
    first = run("provision", "--hub", hub, "--hierarchy", str(hierarchy), "--credentials", str(credentials))
    assert first.returncode == 0, first.stderr
    assert f"{len(cells)} kiosk accounts" in first.stdout
    with credentials.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["cell"] for r in rows) == sorted(cells) and all(len(r["password"]) >= 20 for r in rows)
    assert credentials.stat().st_mode & 0o777 == 0o600
    with httpx.Client(base_url=hub, trust_env=False, timeout=30) as http:
        for cell in cells:
            db = "cell-" + cell.lower().replace(".", "-")
            security = http.get(f"/{db}/_security").json()
            assert security["members"]["names"] == ["kiosk-" + cell.lower().replace(".", "-")]
            assert "validate_doc_update" in http.get(f"/{db}/_design/ownership").json()
            user = http.get(f"/_users/org.couchdb.user:kiosk-{cell.lower().replace('.', '-')}").json()
            assert "password" not in user and user["roles"] == ["kiosk"]
        units = http.post("/handbook/_all_docs", json={"keys": [f"unit:{u.code}" for u in province.hierarchy.units.values()]}).json()
        assert all("error" not in r for r in units["rows"])
    before = seqs(hub)
    again = run("provision", "--hub", hub, "--hierarchy", str(hierarchy), "--credentials", str(credentials))
    assert again.returncode == 0, again.stderr
    assert "0 databases created, 0 access rules set, 0 validation documents, 0 units, 0 kiosk accounts" in again.stdout
    assert seqs(hub) == before  # re-running changes nothing


def test_provision_refuses_a_bad_hierarchy_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "h.csv"
    bad.write_text("code,name,level,parent\nTQ,Tuyên Quang,province,\nTQ.NH,Na Hang,district,TQ\nTQ.NH,Na Hang,district,TQ\n",
                   encoding="utf-8")
    proc = run("provision", "--hub", "http://127.0.0.1:9/", "--hierarchy", str(bad))
    assert proc.returncode != 0
    assert ":4:" in proc.stderr and "duplicate" in proc.stderr.lower()


def test_provisioned_rules_refuse_another_cells_records(hub: str, tmp_path: Path) -> None:
    """On pouchdb-server the rendered validate_doc_update runs; on ours the same rule runs natively."""
    province = generate("small", seed=3)
    hierarchy = tmp_path / "hierarchy.csv"
    province.write_hierarchy(hierarchy)
    assert run("provision", "--hub", hub, "--hierarchy", str(hierarchy), "--credentials",
               str(tmp_path / "k.csv")).returncode == 0
    first, second = [u.code for u in province.hierarchy.cells()][:2]
    db = "cell-" + first.lower().replace(".", "-")

    def meeting(cell: str) -> dict:
        return {"_id": f"meeting:{cell}:00000000-0000-4000-8000-000000000001", "type": "meeting", "cell": cell,
                "kind": "regular", "scheduled": "2026-12-03T19:30:00+07:00", "status": "scheduled"}

    with httpx.Client(base_url=hub, trust_env=False, timeout=30) as http:
        good, bad = meeting(first), meeting(second)
        assert http.put(f"/{db}/{good['_id']}", json=good).status_code == 201
        refused = http.put(f"/{db}/{bad['_id']}", json=bad)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        assert "belongs to" in refused.json()["reason"]
