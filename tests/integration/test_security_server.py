"""Issue #15 against a real server process and the CLI: what a kiosk's files and a provisioning run leak."""

from __future__ import annotations

import csv
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_server.handbook.generate import generate

pytestmark = pytest.mark.peers


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=300)


def test_the_kiosk_credentials_file_does_not_carry_the_hub_admin(kiosk: Any, tmp_path: Path) -> None:
    hierarchy = tmp_path / "hierarchy.csv"
    generate("small", seed=3).write_hierarchy(hierarchy)
    credentials = tmp_path / "kiosks.csv"
    done = run("provision", "--hub", kiosk.url, "--hierarchy", str(hierarchy), "--credentials", str(credentials))
    assert done.returncode == 0, done.stderr
    text = credentials.read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert rows and "secret" not in text and "admin" not in text  # the admin's name and password (conftest.ADMIN)
    assert {r["hub"].rstrip("/") for r in rows} == {kiosk.base}
    account = rows[0]
    with httpx.Client(base_url=kiosk.base, auth=(account["account"], account["password"]), trust_env=False) as http:
        db = "cell-" + account["cell"].lower().replace(".", "-")
        assert http.get(f"/{db}").status_code == 200  # what the row holds is enough for its kiosk


def test_the_data_directory_is_for_the_service_account_only(kiosk: Any) -> None:
    with httpx.Client(base_url=kiosk.url, trust_env=False) as http:
        assert http.put("/cell-tq-nh-kh-c01").status_code == 201
        assert http.put("/cell-tq-nh-kh-c01/x", json={}).status_code == 403  # deny: no such record kind
        assert http.put("/other").status_code == 201
        assert http.put("/other/x", json={"a": 1}).status_code == 201
    data = kiosk.data_dir
    modes = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in [data, *data.rglob("*")] if not p.is_symlink()}
    assert modes["."] == 0o700 and modes["dbs"] == 0o700, modes
    files = {name: mode for name, mode in modes.items() if (data / name).is_file()}
    assert "server.json" in files and "dbs/other.sqlite" in files and "dbs/other.sqlite-wal" in files
    assert {name: mode for name, mode in files.items() if mode & 0o077} == {}


def test_a_regex_in_a_selector_cannot_hold_the_server(kiosk: Any) -> None:
    """`(a+)+$` on 40 a's and a b: about 2**40 steps for a backtracking engine, one pass for RE2."""
    with httpx.Client(base_url=kiosk.url, trust_env=False, timeout=60) as http:
        http.put("/other")
        http.put("/other/x", json={"body": "a" * 40 + "b"})
        http.put("/other/y", json={"body": "aaa"})
        found = http.post("/other/_changes", params={"filter": "_selector"},
                          json={"selector": {"body": {"$regex": "(a+)+$"}}})
        assert found.status_code == 200 and [r["id"] for r in found.json()["results"]] == ["y"]
        refused = http.post("/other/_changes", params={"filter": "_selector"},
                            json={"selector": {"body": {"$regex": r"(a)\1"}}})
        assert refused.status_code == 400 and refused.json()["error"] == "bad_arg"  # CouchDB's name for a bad operand
        assert http.get("/_up").status_code == 200


def test_a_kiosk_set_up_as_the_readme_says_serves_its_records_to_its_cell_only(tmp_path: Path, kiosk_factory: Any,
                                                                               pouchdb_server: Any) -> None:
    """The admin creates the cell's database over HTTP, `sync --once` pulls the handbook: neither is open."""
    import yaml

    hub = pouchdb_server.url
    httpx.put(f"{hub}/handbook", trust_env=False)
    httpx.put(f"{hub}/handbook/article:1", trust_env=False, json={
        "type": "article", "title": "Nghị quyết", "body": "Toàn văn", "category": "directive", "language": "vi",
        "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00"})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sync": {"hub_url": hub, "cell_db": "cell-tq-nh-kh-c01", "handbook_db": "handbook",
                                               "interval_seconds": 86400}}))
    kiosk = kiosk_factory()
    kiosk.stop()
    kiosk.extra_args = ["--config", str(config)]
    kiosk.start()
    with httpx.Client(base_url=kiosk.url, trust_env=False, timeout=60) as admin:
        # the kiosk makes its configured cell database at start (#13); an admin's PUT finds it there
        assert admin.put("/cell-tq-nh-kh-c01").status_code in (201, 412)
        assert admin.put("/_users").status_code in (201, 412)
        member = {"_id": "org.couchdb.user:TQ.NH.KH.C01.0003", "name": "TQ.NH.KH.C01.0003", "type": "user",
                  "roles": ["member", "cell:TQ.NH.KH.C01"], "pin": "1234"}
        assert admin.put(f"/_users/{member['_id']}", json=member).status_code == 201
    done = run("sync", "--once", "--config", str(config), "--data-dir", str(kiosk.data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    with httpx.Client(base_url=kiosk.base, trust_env=False, timeout=60) as anonymous:
        for path in ("/cell-tq-nh-kh-c01/_all_docs?include_docs=true", "/handbook/_all_docs?include_docs=true",
                     "/handbook/article:1"):
            response = anonymous.get(path)
            assert response.status_code == 401 and response.json()["error"] == "unauthorized", path
        assert anonymous.get("/handbook/article:1", auth=("TQ.NH.KH.C01.0003", "1234")).status_code == 200


def test_a_kiosk_applies_the_provinces_signed_retraction_and_no_other_deletion(tmp_path: Path,
                                                                              pouchdb_server: Any) -> None:
    """`publish` then `retract` on a hub that checks nothing; the kiosk pulls both with `replicate`."""
    import json

    import yaml

    made = run("keys", "create", "--dir", str(tmp_path / "keys"), "--id", "tq-2026")
    public = made.stdout.strip().splitlines()[-1].split(": ", 1)[1]
    province = tmp_path / "province.yaml"
    province.write_text(yaml.safe_dump({"signing": {"public_keys": {"tq-2026": public}}}))
    kiosk_config = tmp_path / "kiosk.yaml"
    kiosk_config.write_text(yaml.safe_dump({"signing": {"public_keys": {"tq-2026": public}},
                                            "server": {"data_dir": str(tmp_path / "kiosk")}}))
    key, hub = tmp_path / "keys" / "tq-2026.pem", f"{pouchdb_server.url}/handbook"
    httpx.put(hub, trust_env=False)
    for slug in ("nq-01", "nq-02"):
        article = tmp_path / f"{slug}.json"
        article.write_text(json.dumps({"_id": f"article:{slug}", "type": "article", "title": "Nghị quyết",
                                       "body": "Toàn văn", "category": "resolution", "language": "vi",
                                       "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00"}))
        assert run("publish", str(article), "--hub", hub, "--key", str(key), "--config", str(province)).returncode == 0
    audience = json.dumps({"audience": {"$elemMatch": {"$eq": "TQ"}}})  # as sync.handbook_selector pulls
    assert run("replicate", hub, "handbook", "--config", str(kiosk_config), "--selector", audience).returncode == 0
    retracted = run("retract", "article:nq-01", "--hub", hub, "--key", str(key), "--config", str(province))
    assert retracted.returncode == 0 and retracted.stdout.startswith("retracted article:nq-01 (2-"), retracted.stderr
    with httpx.Client(base_url=pouchdb_server.url, trust_env=False) as http:  # anyone at the hub deletes nq-02,
        rev = http.get("/handbook/article:nq-02").json()["_rev"]  # with the audience the kiosk's selector pulls
        forged = {"_rev": rev, "_deleted": True, "audience": ["TQ"], "retracted": True}
        assert http.put("/handbook/article:nq-02", json=forged).status_code == 201
    pulled = run("replicate", hub, "handbook", "--config", str(kiosk_config), "--selector", audience)
    assert pulled.returncode == 0 and "(1 refused)" in pulled.stdout, pulled.stdout + pulled.stderr
    assert "deletion not signed by the province" in pulled.stderr
    status = json.loads(run("status", "--config", str(kiosk_config), "--json").stdout)
    assert status["quarantined"] == 1
    from sync_server.errors import NotFound
    from sync_server.handbook.policy import open_store
    from sync_server.settings import load

    store = open_store(load(kiosk_config))
    try:
        assert store.get("handbook").get("article:nq-02")["title"] == "Nghị quyết"  # still served
        with pytest.raises(NotFound):
            store.get("handbook").get("article:nq-01")  # retracted
    finally:
        store.close()
    bad = run("retract", "meeting:x", "--hub", hub, "--key", str(key), "--config", str(province))
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "only articles" in bad.stderr
