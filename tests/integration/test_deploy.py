"""The province's deployment as shipped in deploy/: CouchDB's settings, and nginx in front with TLS and gzip.

- A CouchDB node started with deploy/couchdb/handbook-hub.ini refuses anonymous requests (but /_up),
  keeps _users closed to kiosk accounts, and gives new databases the shard layout it promises.
- nginx runs deploy/nginx/handbook-hub.conf (its port, the certificate of a province CA and the
  upstream replaced) in front of the session's CouchDB: the hub is provisioned through it, and a
  kiosk syncs through it with its own account, trusting the province CA only, its pull gzipped.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import couch_dump
import httpx
import nginx_proxy
import pytest
import yaml
from conftest import free_port
from province_ca import make_ca

from schemas.hierarchy import cell_db_name
from sync_server.handbook.generate import generate
from sync_server.jobs.kiosk_sync import Syncer
from sync_server.settings import load
from sync_server.store import Server

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]
HUB_INI = ROOT / "deploy" / "couchdb" / "handbook-hub.ini"


def provision(hub_url: str, tmp_path: Path, env: dict[str, str] | None = None) -> tuple[Any, dict[str, tuple[str, str]]]:
    """Provision a generated small province; (the province, cell -> (account, password))."""
    province = generate("small", seed=5)
    hierarchy = tmp_path / "hierarchy.csv"
    province.write_hierarchy(hierarchy)
    credentials = tmp_path / "kiosks.csv"
    proc = subprocess.run([sys.executable, "-m", "sync_server", "provision", "--hub", hub_url, "--hierarchy",
                           str(hierarchy), "--credentials", str(credentials)],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    with credentials.open(encoding="utf-8") as handle:
        return province, {row["cell"]: (row["account"], row["password"]) for row in csv.DictReader(handle)}


@pytest.fixture
def deployed_couchdb(tmp_path_factory: pytest.TempPathFactory, couchdb_server: Any) -> Any:
    """A CouchDB node of its own, started with deploy/couchdb/handbook-hub.ini."""
    import couch_node

    if not isinstance(couchdb_server, couch_node.CouchServer):
        pytest.skip("COUCHDB_URL names a CouchDB of your own: its settings are yours, not deploy/'s")
    server = couch_node.CouchServer(tmp_path_factory.mktemp("deployed-couchdb"), couch_node.release(), (HUB_INI,))
    yield server
    server.stop()


def test_the_shipped_couchdb_settings_close_the_hub(deployed_couchdb: Any, tmp_path: Path) -> None:
    hub = deployed_couchdb
    with httpx.Client(base_url=hub.base, trust_env=False, timeout=30) as anonymous:
        assert anonymous.get("/_up").status_code == 200  # the proxy's health check
        assert anonymous.get("/").status_code == 401  # require_valid_user
        assert anonymous.get("/handbook").status_code == 401
    _, accounts = provision(hub.url, tmp_path)
    cell, login = next(iter(accounts.items()))
    with httpx.Client(base_url=hub.base, auth=login, trust_env=False, timeout=30) as kiosk:
        assert kiosk.get("/").status_code == 200
        assert kiosk.get(f"/{cell_db_name(cell)}").json()["cluster"]["q"] == 1  # one shard per cell database
        assert kiosk.get("/_users/_all_docs").status_code in (401, 403)  # users_db_public = false
        other = next(code for code in accounts if code != cell)
        assert kiosk.get(f"/_users/org.couchdb.user:{accounts[other][0]}").status_code in (403, 404)
    with httpx.Client(base_url=hub.base, auth=hub.auth, trust_env=False, timeout=30) as admin:
        config = admin.get("/_node/_local/_config").json()
    assert config["couchdb"]["max_dbs_open"] == "5000" and config["smoosh.ratio_dbs"]["strict_window"] == "true"


def meeting(cell: str, i: int, **extra: Any) -> dict[str, Any]:
    return {"_id": f"meeting:{cell}:00000000-0000-4000-8000-{i:012d}", "type": "meeting", "cell": cell,
            "kind": "regular", "status": "scheduled", "scheduled": "2026-12-03T19:30:00+07:00",
            "place": "Nhà văn hoá thôn", "agenda": ["Quán triệt nghị quyết", "Sinh hoạt chuyên đề"], **extra}


def test_a_kiosk_syncs_through_the_shipped_nginx_with_tls_and_gzip(couchdb: Any, nginx_binary: str,
                                                                   tmp_path: Path) -> None:
    ca, cert, key = make_ca(tmp_path)
    upstream = httpx.URL(couchdb.base)
    proxy = nginx_proxy.NginxProxy(tmp_path / "nginx", free_port(), cert, key, [f"{upstream.host}:{upstream.port}"])
    try:
        hub = f"https://{couchdb.auth[0]}:{couchdb.auth[1]}@127.0.0.1:{proxy.port}"
        # provisioned through the proxy (design documents' paths pass untouched), trusting the CA by OpenSSL's variable
        province, accounts = provision(hub, tmp_path, env={**os.environ, "SSL_CERT_FILE": str(ca)})
        cell = next(iter(accounts))
        db = cell_db_name(cell)
        from_province = [meeting(cell, 1000 + i, kind="thematic") for i in range(300)]
        couch_dump.bulk_docs(couchdb.url, db, from_province)
        raw_down = sum(len(json.dumps(d, ensure_ascii=False)) for d in from_province)

        account, password = accounts[cell]
        config = tmp_path / "kiosk.yaml"
        config.write_text(yaml.safe_dump({
            "server": {"data_dir": str(tmp_path / "kiosk")},
            "sync": {"hub_url": f"https://{account}:{password}@127.0.0.1:{proxy.port}/", "cell_db": db,
                     "handbook_db": "handbook", "ca_bundle": str(ca),
                     "handbook_selector": {"type": "unit"}}}, allow_unicode=True))
        settings = load(config)
        server = Server(settings.server.data_dir)
        server.create(db).bulk_docs([meeting(cell, i) for i in range(20)])
        syncer = Syncer(settings, server)
        try:
            done = syncer.run_round()
            assert done.ok, done.error
            by_leg: dict[tuple[str, str], Any] = {}
            for leg, result in done.results:  # the first of each (a push follows a pull that wrote)
                by_leg.setdefault((leg.direction, leg.local), result)
            pull = by_leg[("pull", db)]
            assert by_leg[("push", db)].docs_written == 20 and pull.docs_written == 300 + 1  # and _design/ownership
            assert pull.bytes_received < raw_down / 2, (pull.bytes_received, raw_down)  # JSON came gzipped
            assert by_leg[("pull", "handbook")].docs_written == len(province.hierarchy.units)
            assert syncer.run_round().ok
            status = syncer.status.read()
        finally:
            syncer.close()
            server.close()
        assert status["last_round"]["ok"] and status["failures"] == 0
        assert len(couch_dump.dump(couchdb.url, db)) == 320 + 1  # and the design document
        assert any(f'"PUT /{db}/_design/ownership HTTP/1.1" 201' in line for line in proxy.requests())
        with httpx.Client(base_url=f"https://127.0.0.1:{proxy.port}", trust_env=False, timeout=30) as untrusting, \
                pytest.raises(httpx.ConnectError):  # no CA bundle: the province's certificate is not trusted
            untrusting.get("/")
    finally:
        proxy.stop()
