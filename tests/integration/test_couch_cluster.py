"""The hub as a 3-node Apache CouchDB cluster (n = 3): sync and the nightly pull with a node down.

- A kiosk syncs through the shipped nginx (deploy/nginx/, every node an upstream) while one node is
  killed in the middle of the round: the round completes, or the next one resumes to completion.
  The node comes back; once internal replication has run, every node reads the same, and the node
  that was down, alone, holds everything written while it was away.
- The province's nightly pull with a node down pulls every cell, and the next night only what changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
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
CELL = "TQ.NH.KH.C01"
DB = cell_db_name(CELL)
SETTLE_SECONDS = 180.0  # deadline for the cluster's internal replication after a node comes back


def meeting(i: int) -> dict[str, Any]:
    return {"_id": f"meeting:{CELL}:00000000-0000-4000-8000-{i:012d}", "type": "meeting", "cell": CELL,
            "kind": "regular", "status": "scheduled", "scheduled": "2026-12-03T19:30:00+07:00",
            "place": "Nhà văn hoá thôn " + "x" * (i % 50)}


def contents(base: str, auth: Any, db: str) -> dict[str, str]:
    """id -> winning rev, as this node's clustered reads answer."""
    with httpx.Client(base_url=base, auth=auth, trust_env=False, timeout=60) as http:
        response = http.get(f"/{db}/_all_docs")
        assert response.status_code == 200, response.text
        return {row["id"]: row["value"]["rev"] for row in response.json()["rows"]}


def wait_settled(cluster: Any) -> None:
    """Until no node has internal replication jobs left (twice in a row), within SETTLE_SECONDS."""
    deadline = time.monotonic() + SETTLE_SECONDS
    quiet = 0
    while quiet < 2:
        assert time.monotonic() < deadline, "the cluster's internal replication did not settle"
        jobs = [httpx.get(n.base + "/_node/_local/_system", auth=n.auth, trust_env=False, timeout=30)
                .json().get("internal_replication_jobs", 0) for n in cluster.nodes]
        quiet = quiet + 1 if not any(jobs) else 0
        time.sleep(0.5)


def test_a_kiosk_sync_completes_while_a_node_is_killed(couchdb_cluster: Any, nginx_binary: str,
                                                       tmp_path: Path) -> None:
    nodes = couchdb_cluster.nodes
    admin = nodes[0]
    couch_dump.create_db(admin.url, DB)
    couch_dump.bulk_docs(admin.url, DB, [meeting(1000 + i) for i in range(600)])
    ca, cert, key = make_ca(tmp_path)
    proxy = nginx_proxy.NginxProxy(tmp_path / "nginx", free_port(), cert, key, [f"127.0.0.1:{n.port}" for n in nodes])
    config = tmp_path / "kiosk.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"data_dir": str(tmp_path / "kiosk")},
        "sync": {"hub_url": f"https://{admin.auth[0]}:{admin.auth[1]}@127.0.0.1:{proxy.port}/", "cell_db": DB,
                 "ca_bundle": str(ca), "batch_size": 50}}))
    settings = load(config)
    server = Server(settings.server.data_dir)
    server.create(DB).bulk_docs([meeting(i) for i in range(300)])
    syncer = Syncer(settings, server)
    killer: list[threading.Thread] = []

    def kill_once(_: Any) -> None:  # after the first batch is checkpointed, node1 goes down
        if not killer:
            killer.append(threading.Thread(target=nodes[0].kill, daemon=True))
            killer[0].start()

    try:
        rounds = [syncer.run_round(progress=kill_once)]
        while not rounds[-1].ok and len(rounds) < 4:
            rounds.append(syncer.run_round())
        killer[0].join(60)
        print("rounds:", [(r.ok, r.error, [(leg.direction, res.docs_written) for leg, res in r.results]) for r in rounds])
        assert rounds[-1].ok, [r.error for r in rounds]
        assert not nodes[0].alive()
        local = {r["id"] for r in server.get(DB).all_docs()}
    finally:
        syncer.close()
        server.close()
        proxy.stop()
    expected = {meeting(i)["_id"] for i in [*range(300), *range(1000, 1600)]}
    assert local == expected
    survivors = [contents(n.base, n.auth, DB) for n in nodes[1:]]
    assert set(survivors[0]) == expected and survivors[0] == survivors[1]

    couchdb_cluster.start_node(0)
    wait_settled(couchdb_cluster)
    assert all(contents(n.base, n.auth, DB) == survivors[0] for n in nodes)
    for node in nodes[1:]:  # node1 alone: its own copies hold what was written while it was down
        node.kill()
    assert contents(nodes[0].base, nodes[0].auth, DB) == survivors[0]


def test_the_nightly_pull_with_a_node_down(couchdb_cluster: Any, tmp_path: Path) -> None:
    nodes = couchdb_cluster.nodes
    month = "2026-11"
    province = generate("small", seed=2, months=[month])
    hierarchy = tmp_path / "hierarchy.csv"
    province.write_hierarchy(hierarchy)
    for cell, docs in province.cell_docs.items():
        couch_dump.create_db(nodes[0].url, cell_db_name(cell))
        couch_dump.bulk_docs(nodes[0].url, cell_db_name(cell), docs)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"data_dir": str(tmp_path / "province")},
        "province": {"hub_url": nodes[0].url, "hierarchy": str(hierarchy), "report_dir": str(tmp_path / "reports")},
    }))

    def night() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sync_server", "report", "--now", "--month", month, "--config",
                               str(config)], capture_output=True, text=True, timeout=600, check=False)

    nodes[2].kill()
    first = night()
    assert first.returncode == 0, first.stderr
    cells = len(province.cell_docs)
    assert f"pulled {cells} cells ({cells} changed" in first.stdout
    summary = json.loads((tmp_path / "reports" / month / "summary.json").read_text())
    for key in ("members", "smartphone", "installed", "registered"):
        assert summary["province"][key] == province.expected[key], key
    assert summary["province"]["meetings_held"] == province.expected["meetings_held"][month]
    # a record written while node3 is down (202: accepted, not yet on a quorum) comes the next night
    cell = next(iter(province.cell_docs))
    feedback = {"_id": f"feedback:{cell}:11111111-2222-4333-8444-555555555555", "type": "feedback", "cell": cell,
                "about": "software", "text": "Chữ hơi nhỏ.", "created_at": "2026-11-20T10:00:00+07:00"}
    with httpx.Client(base_url=nodes[1].base, auth=nodes[1].auth, trust_env=False, timeout=30) as http:
        assert http.post(f"/{cell_db_name(cell)}", json=feedback).status_code in (201, 202)
    second = night()
    assert second.returncode == 0 and "(1 changed, 1 documents)" in second.stdout, second.stdout + second.stderr
