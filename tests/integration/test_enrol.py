"""A kiosk enrolled in one command from the province's file, and restored after its data is wiped (issue 13).

Against a real hub: this project's server, and Apache CouchDB 3.4.3 (fixture ``couchdb``).
Everything runs through the ``sync-server`` command line, as a province and a village would.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sync_server.handbook.policy import open_store
from sync_server.security import signing
from sync_server.security.auth import USER_PREFIX, Authenticator
from sync_server.settings import load

pytestmark = pytest.mark.peers

CELL = "TQ.NH.KH.C01"
CELL_DB = "cell-tq-nh-kh-c01"
HIERARCHY = """code,name,level,parent
TQ,Tuyên Quang,province,
TQ.NH,Na Hang,district,TQ
TQ.NH.KH,Khâu Tinh,commune,TQ.NH
TQ.NH.KH.C01,Chi bộ thôn Bản Lằn,cell,TQ.NH.KH
TQ.NH.KH.C02,Chi bộ thôn Nà Lòa,cell,TQ.NH.KH
"""
MEMBER = {"_id": f"member:{CELL}:0003", "type": "member", "cell": CELL, "member_no": "0003",
          "name": "Hoàng Văn Thắng", "status": "active", "smartphone": True, "installed": False, "registered": False}
MEETING = {"_id": f"meeting:{CELL}:5d0c9a4e-2f1b-4c3d-8e7f-a1b2c3d4e5f6", "type": "meeting", "kind": "regular",
           "cell": CELL, "scheduled": "2026-12-03T19:30:00+07:00", "status": "scheduled"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def bare(url: str) -> str:
    return str(httpx.URL(url).copy_with(username=None, password=None)).rstrip("/")


def put(hub: str, db: str, doc: dict) -> None:
    response = httpx.put(f"{hub}/{db}/{doc['_id']}", json=doc, trust_env=False, timeout=30)
    assert response.status_code in (201, 202), response.text


def publish_and_fill(hub: str, tmp_path: Path, key_path: Path, province: Path) -> None:
    """The province publishes a signed article and the cell's member record is on the hub."""
    article = tmp_path / "article.json"
    article.write_text(json.dumps({"_id": "article:dieu-le-dang", "type": "article", "title": "Điều lệ Đảng",
                                   "category": "charter", "language": "vi", "audience": ["TQ"],
                                   "published_at": "2026-11-01T08:00:00+07:00", "body": "Đảng Cộng sản Việt Nam..."}))
    published = run("publish", str(article), "--hub", f"{hub}/handbook", "--key", str(key_path), "--config", str(province))
    assert published.returncode == 0, published.stderr
    put(hub, CELL_DB, MEMBER)


def province_setup(hub: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Provision the hub with enrolment files; publish one signed article; put the cell's records there."""
    (tmp_path / "hierarchy.csv").write_text(HIERARCHY, encoding="utf-8")
    keys_dir = tmp_path / "keys"
    key_path, public = signing.create_key(keys_dir, "tq-2026")
    province = tmp_path / "province.yaml"
    province.write_text(yaml.safe_dump({"signing": {"public_keys": {"tq-2026": public}}}))
    enrol_dir = tmp_path / "enrolment"
    done = run("provision", "--hub", hub, "--hierarchy", str(tmp_path / "hierarchy.csv"),
               "--credentials", str(tmp_path / "kiosks.csv"), "--enrolment-dir", str(enrol_dir),
               "--config", str(province))
    assert done.returncode == 0, done.stderr
    assert f"enrolment files in {enrol_dir}" in done.stdout
    publish_and_fill(hub, tmp_path, key_path, province)
    return enrol_dir, {"tq-2026": public}


def check_enrolled(config: Path, data: Path, file: Path, keys: dict[str, str], hub: str) -> None:
    """What an enrolled kiosk must have (``file``: a copy of the enrolment file it used)."""
    settings = load(config)
    assert settings.server.data_dir == str(data)
    assert settings.sync.cell_db == CELL_DB and settings.sync.handbook_db == "handbook"
    assert settings.signing.public_keys == keys
    assert bare(settings.sync.hub_url or "") == bare(hub)
    account = json.loads(file.read_text())
    assert account["password"] not in config.read_text()  # the account is in a 0600 file the config names
    credentials = Path(str(settings.sync.hub_credentials).removeprefix("file:"))
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600 and credentials.parent == data
    assert credentials.read_text().startswith("kiosk-tq-nh-kh-c01:")
    server = open_store(settings)
    try:
        assert server.get(CELL_DB).get(MEMBER["_id"])["name"] == MEMBER["name"]
        assert server.get("handbook").get("article:dieu-le-dang")["signature"]["key_id"] == "tq-2026"
        assert server.get(CELL_DB).get_security()["members"]["roles"] == [f"cell:{CELL}", "kiosk"]
    finally:
        server.close()


def meeting_goes_up(config: Path) -> None:
    """A meeting written at the kiosk, then one ordinary sync round."""
    server = open_store(load(config))
    try:
        assert "error" not in server.get(CELL_DB).bulk_docs([dict(MEETING)])[0]
    finally:
        server.close()
    assert run("sync", "--once", "--config", str(config)).returncode == 0


def kiosk_admin_pin(out: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith(f"kiosk admin {CELL}.kiosk: PIN "))
    return line.split("PIN ")[1].split()[0]


def admin_signs_in(config: Path, pin: str) -> bool:
    server = open_store(load(config))
    try:
        users = server.get("_users")
        auth = Authenticator("admin:x", "s", 600, lambda n: users.get(USER_PREFIX + n))
        return "kiosk-admin" in auth.check_password(f"{CELL}.kiosk", pin).roles
    finally:
        server.close()


def test_a_kiosk_is_enrolled_in_one_command_and_a_wiped_one_comes_back(kiosk: Any, tmp_path: Path) -> None:
    hub = kiosk.url  # this project's server as the provincial hub
    enrol_dir, keys = province_setup(hub, tmp_path)
    file = enrol_dir / f"enrol-{CELL_DB}.json"
    assert sorted(p.name for p in enrol_dir.iterdir()) == [f"enrol-{CELL_DB}.json", "enrol-cell-tq-nh-kh-c02.json"]
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    issued = json.loads(file.read_text())
    assert issued["account"] == "kiosk-tq-nh-kh-c01" and "admin" not in json.dumps(issued)
    assert issued["hub_url"] == bare(hub) + "/" and issued["public_keys"] == keys

    site = tmp_path / "kiosk"
    site.mkdir()
    config, data = site / "config.yaml", site / "data"
    config.write_text("server:\n  port: 5990\n")  # a key the operator set is kept
    copy = tmp_path / "copy-of-the-file.json"
    shutil.copy(file, copy)
    done = run("kiosk", "enrol", str(file), "--config", str(config), "--data-dir", str(data))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"enrolled for cell {CELL}" in done.stdout
    assert f"removed {file}" in done.stdout and not file.exists()  # used once: the account lives in the data dir
    assert re.search(r"^pulled 2 records of the cell and \d+ handbook documents$", done.stdout, re.MULTILINE), done.stdout
    assert load(config).server.port == 5990
    check_enrolled(config, data, copy, keys, hub)
    pin = kiosk_admin_pin(done.stdout)
    assert admin_signs_in(config, pin)

    # the kiosk works: a meeting written there goes up with an ordinary round
    meeting_goes_up(config)
    assert httpx.get(f"{hub}/{CELL_DB}/{MEETING['_id']}", trust_env=False).status_code == 200

    # the kiosk is lost: the province re-issues its file, and the old file (and kiosk) stop working
    again = tmp_path / "again.json"
    unsigned = run("kiosk", "enrolment", "--hub", hub, "--cell", CELL, "--out", str(again))
    assert unsigned.returncode == 1 and "signing.public_keys" in unsigned.stderr and not again.exists()
    reissued = run("kiosk", "enrolment", "--hub", hub, "--cell", CELL, "--out", str(again),
                   "--config", str(tmp_path / "province.yaml"))
    assert reissued.returncode == 0, reissued.stderr
    shutil.rmtree(data)
    stale = run("kiosk", "enrol", str(copy), "--config", str(config), "--data-dir", str(data))
    assert stale.returncode == 1
    assert stale.stderr.strip().startswith("Error: the hub refused the account kiosk-tq-nh-kh-c01")
    assert not data.exists()  # nothing half-written
    shutil.copy(again, copy)
    back = run("kiosk", "enrol", str(again), "--config", str(config), "--data-dir", str(data))
    assert back.returncode == 0, back.stdout + back.stderr
    check_enrolled(config, data, copy, keys, hub)
    server = open_store(load(config))
    try:
        assert server.get(CELL_DB).get(MEETING["_id"])["status"] == "scheduled"  # nothing the hub had is lost
    finally:
        server.close()
    assert admin_signs_in(config, kiosk_admin_pin(back.stdout))

    # an enrolment file is the kiosk's account for its own cell only
    other = json.loads((enrol_dir / "enrol-cell-tq-nh-kh-c02.json").read_text())
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**other, "cell": CELL}))
    refused = run("kiosk", "enrol", str(forged), "--config", str(tmp_path / "x.yaml"))
    assert refused.returncode == 1 and "a kiosk never gets another account" in refused.stderr


def test_a_configured_cell_database_missing_locally_is_created_and_pulled(kiosk: Any, tmp_path: Path) -> None:
    hub = kiosk.url
    province_setup(hub, tmp_path)
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"server": {"data_dir": str(data)},
                                      "sync": {"hub_url": hub, "cell_db": CELL_DB}}))
    done = run("sync", "--once", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    server = open_store(load(config))
    try:
        assert server.get(CELL_DB).get(MEMBER["_id"])["name"] == MEMBER["name"]
        assert server.get(CELL_DB).get_security()["members"]["roles"] == [f"cell:{CELL}", "kiosk"]
    finally:
        server.close()


def test_enrolment_against_couchdb_and_a_wiped_kiosk_restored(couchdb: Any, tmp_path: Path) -> None:
    hub = couchdb.url
    enrol_dir, keys = province_setup(hub, tmp_path)  # provision with --enrolment-dir, publish, a member record
    province = tmp_path / "province.yaml"
    file = enrol_dir / f"enrol-{CELL_DB}.json"
    issued = json.loads(file.read_text())
    assert issued["hub_url"] == bare(hub) + "/" and "secret" not in file.read_text()  # no hub admin password
    copy = tmp_path / "copy.json"
    shutil.copy(file, copy)
    config, data = tmp_path / "kiosk.yaml", tmp_path / "data"
    done = run("kiosk", "enrol", str(file), "--config", str(config), "--data-dir", str(data))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not file.exists()
    check_enrolled(config, data, copy, keys, hub)
    own = tuple((data / "hub-credentials").read_text().split(":", 1))
    assert httpx.get(f"{bare(hub)}/{CELL_DB}", auth=own, trust_env=False).status_code == 200
    assert httpx.get(f"{bare(hub)}/cell-tq-nh-kh-c02", auth=own, trust_env=False).status_code == 403

    # a meeting at the kiosk reaches CouchDB; the data directory is wiped; a re-issued file brings all back
    meeting_goes_up(config)
    shutil.rmtree(data)
    again = tmp_path / "again.json"
    assert run("kiosk", "enrolment", "--hub", hub, "--cell", CELL, "--out", str(again),
               "--config", str(province)).returncode == 0
    stale = run("kiosk", "enrol", str(copy), "--config", str(config))
    assert stale.returncode == 1 and "the hub refused the account" in stale.stderr and not data.exists()
    assert httpx.get(f"{bare(hub)}/{CELL_DB}", auth=(issued["account"], issued["password"]),
                     trust_env=False).status_code == 401  # re-issuing replaced the old password
    back = run("kiosk", "enrol", str(again), "--config", str(config))  # the data dir from config.yaml
    assert back.returncode == 0, back.stdout + back.stderr
    server = open_store(load(config))
    try:
        assert server.get(CELL_DB).get(MEETING["_id"])["status"] == "scheduled"  # nothing the hub had is lost
        assert server.get(CELL_DB).get(MEMBER["_id"])["name"] == MEMBER["name"]
        assert server.get("handbook").get("article:dieu-le-dang")["title"] == "Điều lệ Đảng"
    finally:
        server.close()
    assert run("sync", "--once", "--config", str(config)).returncode == 0
