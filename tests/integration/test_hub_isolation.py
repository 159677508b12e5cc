"""On the hub, a kiosk's account opens only its own cell's database and reads the handbook (#5).

Provisioned by `sync-server provision`, against pouchdb-server, our own server and Apache CouchDB 3 as hub.
"""

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
def provisioned(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, dict[str, tuple[str, str]]]:
    """(hub with admin credentials, hub without, cell -> (account, password))."""
    if request.param == "pouchdb-server":
        admin_url = request.getfixturevalue("pouchdb_server").url
        base = admin_url
    else:
        hub = request.getfixturevalue("kiosk" if request.param == "ours" else "couchdb")
        admin_url, base = hub.url, hub.base
    province = generate("small", seed=4)
    hierarchy = tmp_path / "h.csv"
    province.write_hierarchy(hierarchy)
    credentials = tmp_path / "k.csv"
    proc = subprocess.run([sys.executable, "-m", "sync_server", "provision", "--hub", admin_url, "--hierarchy",
                           str(hierarchy), "--credentials", str(credentials)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with credentials.open(encoding="utf-8") as handle:
        accounts = {row["cell"]: (row["account"], row["password"]) for row in csv.DictReader(handle)}
    return admin_url, base, accounts


def db_of(cell: str) -> str:
    return "cell-" + cell.lower().replace(".", "-")


def test_a_kiosk_account_opens_only_its_own_cell(provisioned: Any) -> None:
    admin_url, base, accounts = provisioned
    (cell_a, login_a), (cell_b, _) = list(accounts.items())[:2]
    meeting = {"_id": f"meeting:{cell_b}:00000000-0000-4000-8000-000000000001", "type": "meeting", "cell": cell_b,
               "kind": "regular", "scheduled": "2026-12-03T19:30:00+07:00", "status": "scheduled"}
    with httpx.Client(base_url=admin_url, trust_env=False, timeout=30) as admin:
        assert admin.put(f"/{db_of(cell_b)}/{meeting['_id']}", json=meeting).status_code == 201
    with httpx.Client(base_url=base, auth=login_a, trust_env=False, timeout=30) as kiosk_a:
        assert kiosk_a.get(f"/{db_of(cell_a)}").status_code == 200
        assert kiosk_a.get(f"/{db_of(cell_a)}/_changes").status_code == 200
        for path in (f"/{db_of(cell_b)}", f"/{db_of(cell_b)}/_changes", f"/{db_of(cell_b)}/_all_docs",
                     f"/{db_of(cell_b)}/{meeting['_id']}"):
            assert kiosk_a.get(path).status_code in (401, 403), path
        forged = dict(meeting, _id=f"meeting:{cell_b}:00000000-0000-4000-8000-000000000002")
        assert kiosk_a.put(f"/{db_of(cell_b)}/{forged['_id']}", json=forged).status_code in (401, 403)
        assert kiosk_a.get("/handbook/_all_docs").status_code == 200
        unit = {"_id": "unit:XX", "type": "unit", "code": "XX", "name": "X", "level": "province", "parent": None}
        assert kiosk_a.put("/handbook/unit:XX", json=unit).status_code in (401, 403)
    with httpx.Client(base_url=base, auth=(login_a[0], "wrong"), trust_env=False, timeout=30) as wrong:
        assert wrong.get(f"/{db_of(cell_a)}").status_code == 401
