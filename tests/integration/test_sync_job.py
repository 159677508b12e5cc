"""The kiosk's sync round against a real hub: pouchdb-server, a real Apache CouchDB 3, and our own server as hub."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import couch_dump
import pytest
import yaml

from sync_server.jobs.kiosk_sync import Syncer
from sync_server.jobs.scheduler import SyncScheduler
from sync_server.settings import load
from sync_server.store import Server

pytestmark = pytest.mark.peers
ARTICLES = [
    {"_id": f"article:{slug}", "type": "article", "title": title, "body": "Toàn văn…", "category": "directive",
     "language": "vi", "audience": [audience], "published_at": "2026-11-01T08:00:00+07:00"}
    for slug, title, audience in (("1", "Nghị quyết", "TQ.NH"), ("2", "Chỉ thị", "TQ.LB"))
]
CELL = "TQ.NH.KH.C01"
SELECTOR = {"audience": {"$elemMatch": {"$eq": "TQ.NH"}}}


@pytest.fixture(params=["pouchdb-server", "couchdb"])
def hub(request: pytest.FixtureRequest) -> Any:
    """A hub: ``.url`` with admin credentials where needed, ``.base`` without."""
    if request.param == "pouchdb-server":
        server = request.getfixturevalue("pouchdb_server")
        return SimpleNamespace(url=server.url, base=server.url, kind=request.param)
    server = request.getfixturevalue("couchdb")
    return SimpleNamespace(url=server.url, base=server.base, kind=request.param)


def kiosk_config(tmp_path: Path, hub_url: str, **sync: Any) -> Path:
    """A config.yaml for a kiosk of cell TQ.NH.C01 syncing with hub_url."""
    config = {"server": {"data_dir": str(tmp_path / "kiosk")},
              "sync": {"hub_url": hub_url, "cell_db": "cell-tq-nh-kh-c01", "handbook_db": "handbook",
                       "handbook_selector": SELECTOR, **sync}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def seed_hub(url: str) -> None:
    couch_dump.create_db(url, "handbook")
    couch_dump.bulk_docs(url, "handbook", ARTICLES)


def seed_kiosk(data_dir: Path) -> None:
    server = Server(data_dir)
    server.create("cell-tq-nh-kh-c01").bulk_docs(
        [{"_id": meeting_id(i), "type": "meeting", "cell": CELL, "kind": "regular", "status": "scheduled",
          "scheduled": "2026-12-03T19:30:00+07:00", "place": "Nhà văn hoá"} for i in range(30)])


def meeting_id(i: int) -> str:
    return f"meeting:{CELL}:00000000-0000-4000-8000-{i:012d}"
    server.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=120)


def test_sync_once_pushes_records_and_pulls_the_audiences_handbook(tmp_path: Path, hub: Any) -> None:
    seed_hub(hub.url)
    config = kiosk_config(tmp_path, hub.url)
    seed_kiosk(tmp_path / "kiosk")
    before = json.loads(cli("status", "--config", str(config), "--json").stdout)
    assert before["synced"] is False and before["waiting_up"] == {"cell-tq-nh-kh-c01": 30}
    proc = cli("sync", "--once", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "up   cell-tq-nh-kh-c01: 30 docs" in proc.stdout
    assert sorted(couch_dump.dump(hub.url, "cell-tq-nh-kh-c01")) == sorted(meeting_id(i) for i in range(30))
    server = Server(tmp_path / "kiosk")
    assert [r["id"] for r in server.get("handbook").all_docs()] == ["article:1"]
    server.close()
    status = json.loads(cli("status", "--config", str(config), "--json").stdout)
    assert status["synced"] is True and status["waiting_up"] == {"cell-tq-nh-kh-c01": 0}
    assert status["bytes_today"]["sent"] > 0 and status["last_push_ok"]["cell-tq-nh-kh-c01"] > 0
    assert "synced" in cli("status", "--config", str(config)).stdout


def test_what_the_hub_sent_is_not_counted_as_waiting_to_go_up(tmp_path: Path, hub: Any) -> None:
    """The pull leg's own writes change the cell after the push's checkpoint; they came from the hub."""
    seed_hub(hub.url)
    config = kiosk_config(tmp_path, hub.url)
    seed_kiosk(tmp_path / "kiosk")
    assert cli("sync", "--once", "--config", str(config)).returncode == 0
    from_province = [{"_id": meeting_id(100 + i), "type": "meeting", "cell": CELL, "kind": "thematic",
                      "status": "scheduled", "scheduled": "2026-12-20T19:30:00+07:00"} for i in range(3)]
    couch_dump.bulk_docs(hub.url, "cell-tq-nh-kh-c01", from_province)
    proc = cli("sync", "--once", "--config", str(config))
    assert proc.returncode == 0 and "down cell-tq-nh-kh-c01: 3 docs" in proc.stdout, proc.stdout + proc.stderr
    status = json.loads(cli("status", "--config", str(config), "--json").stdout)
    assert status["waiting_up"] == {"cell-tq-nh-kh-c01": 0} and status["synced"] is True, status
    assert "NOT synced" not in cli("status", "--config", str(config)).stdout


def test_hub_down_is_never_reported_as_synced(tmp_path: Path) -> None:
    from conftest import free_port

    config = kiosk_config(tmp_path, f"http://127.0.0.1:{free_port()}/")
    seed_kiosk(tmp_path / "kiosk")
    proc = cli("sync", "--once", "--config", str(config))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: sync did not complete:")
    status = json.loads(cli("status", "--config", str(config), "--json").stdout)
    assert status["synced"] is False and status["last_error"]["message"] and status["failures"] == 1
    assert status["waiting_up"] == {"cell-tq-nh-kh-c01": 30}
    assert "NOT synced" in cli("status", "--config", str(config)).stdout


@pytest.mark.parametrize("hub_kind", ["pouchdb-server", "ours", "couchdb"])
def test_idle_round_costs_under_one_kilobyte(tmp_path: Path, request: pytest.FixtureRequest, hub_kind: str) -> None:
    hub_url = request.getfixturevalue({"pouchdb-server": "pouchdb_server", "ours": "kiosk"}.get(hub_kind, hub_kind)).url
    seed_hub(hub_url)
    seed_kiosk(tmp_path / "kiosk")
    settings = load(kiosk_config(tmp_path, hub_url))
    server = Server(settings.server.data_dir)
    syncer = Syncer(settings, server)
    try:
        assert syncer.run_round().ok
        idle = syncer.run_round()
    finally:
        syncer.close()
        server.close()
    assert idle.ok
    wire = sum(r.bytes_sent + r.bytes_received for _, r in idle.results)
    requests = sum(r.requests for _, r in idle.results)
    print(f"idle round against {hub_kind}: {wire} bytes in {requests} requests")
    assert requests == 1 and wire < 1000


def test_scheduler_backs_off_while_the_hub_is_down(tmp_path: Path) -> None:
    from conftest import free_port

    settings = load(kiosk_config(tmp_path, f"http://127.0.0.1:{free_port()}/", backoff_seconds=60))
    server = Server(settings.server.data_dir)
    scheduler = SyncScheduler(settings, server)
    try:
        scheduler.tick()
        scheduler.tick()
        status = scheduler.syncer.status.read()
    finally:
        scheduler.syncer.close()
        server.close()
    assert scheduler.failures == 2 and status["failures"] == 2
    assert status["next_attempt"] > status["last_round"]["finished"] + 30  # second back-off: 60..120 s


def test_live_sync_carries_changes_while_the_link_holds(tmp_path: Path, hub: Any) -> None:
    import threading
    import time

    seed_hub(hub.url)
    seed_kiosk(tmp_path / "kiosk")
    settings = load(kiosk_config(tmp_path, hub.url, live_seconds=3))
    server = Server(settings.server.data_dir)
    syncer = Syncer(settings, server)
    try:
        assert syncer.run_round().ok
        finished: list[Any] = []
        thread = threading.Thread(target=lambda: finished.append(syncer.run_live()), daemon=True)
        thread.start()
        time.sleep(0.5)
        late = {"_id": meeting_id(99), "type": "meeting", "cell": CELL, "kind": "thematic", "status": "scheduled",
                "scheduled": "2026-12-10T19:30:00+07:00"}
        couch_dump.bulk_docs(hub.url, "cell-tq-nh-kh-c01", [late])
        server.get("cell-tq-nh-kh-c01").bulk_docs([dict(late, _id=meeting_id(98))])
        thread.join(60)
        assert not thread.is_alive() and finished[0].ok, finished
        assert server.get("cell-tq-nh-kh-c01").get(meeting_id(99))["kind"] == "thematic"  # pulled live
        assert meeting_id(98) in couch_dump.dump(hub.url, "cell-tq-nh-kh-c01")  # pushed live
    finally:
        syncer.close()
        server.close()


@pytest.mark.parametrize("hub_kind", ["kiosk", "couchdb"])
def test_hub_credentials_come_from_the_environment(tmp_path: Path, request: pytest.FixtureRequest, hub_kind: str,
                                                   monkeypatch: Any) -> None:
    kiosk = request.getfixturevalue(hub_kind)  # our server as hub, or CouchDB: both admin:secret
    seed_hub(kiosk.url)
    seed_kiosk(tmp_path / "kiosk")
    monkeypatch.setenv("HUB_ACCOUNT", "admin:secret")
    settings = load(kiosk_config(tmp_path, kiosk.base, hub_credentials="env:HUB_ACCOUNT"))
    server = Server(settings.server.data_dir)
    syncer = Syncer(settings, server)
    try:
        done = syncer.run_round()
    finally:
        syncer.close()
        server.close()
    assert done.ok, done.error
    status = (tmp_path / "kiosk" / "sync-status.json").read_text()
    assert "secret" not in status and "admin:" not in status  # never shown
