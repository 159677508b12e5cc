"""Capacity of a provincial hub: many kiosks' sync rounds against a 3-node CouchDB cluster behind nginx.

Starts the cluster (tests/peers/couch_node.py, the shared CouchDB 3.4.3 release) and nginx with
deploy/nginx/handbook-hub.conf in front of it (TLS with a test province CA, every node an
upstream), provisions ``--kiosks`` cells (each its own database and kiosk account, as
``sync-server provision`` does), then runs one process per kiosk, each with its own store and
account, through three phases, all kiosks at once:

- ``first``: the kiosk's first round: push its ``--records`` records, pull its cell and handbook;
- ``idle``: ``--idle-rounds`` rounds with nothing new on either side;
- ``day``: ``--day-rounds`` rounds, each after writing ``--changes`` new records (a day's work).

Reports per phase: rounds, rounds per second over the phase's wall time, median and p95 round
time, the hub's CPU seconds per round (CouchDB's three nodes and their children, and nginx, from
/proc), the kiosks' own CPU per round, and bytes per round on the wire. Everything is stopped by
process id at the end. Run in the background with output to a file:

    .venv/bin/python bench/bench_hub.py --kiosks 200 > /tmp/bench-hub.txt 2>&1 &
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes and their direct children (couchjs), from /proc."""
    wanted = set(pids)
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid in wanted or ppid in wanted:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def hierarchy_subset(kiosks: int) -> tuple[str, list[str]]:
    """The generated full province's hierarchy cut to its first ``kiosks`` cells; (CSV text, cell codes)."""
    from sync_server.handbook.generate import write_hierarchy

    with tempfile.TemporaryDirectory() as tmp:
        text = write_hierarchy(Path(tmp) / "h.csv", "full").read_text(encoding="utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].startswith("#")]
    header, body = rows[0], rows[1:]
    cells = [r for r in body if r[2] == "cell"][:kiosks]
    keep = [r for r in body if r[2] != "cell"] + cells
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *keep])
    return out.getvalue(), [r[0] for r in cells]


def meeting(cell: str, i: int) -> dict[str, Any]:
    return {"_id": f"meeting:{cell}:00000000-0000-4000-8000-{i:012d}", "type": "meeting", "cell": cell,
            "kind": "regular", "status": "scheduled", "scheduled": "2026-12-03T19:30:00+07:00",
            "place": "Nhà văn hoá thôn", "agenda": ["Quán triệt nghị quyết", "Sinh hoạt chuyên đề"]}


def kiosk(index: int, cell: str, account: tuple[str, str], args: Any, hub_port: int, ca: str, workdir: str,
          barrier: Any, out: Any) -> None:
    """One kiosk: its own store and account, the phases' rounds, one result row per round."""
    import yaml

    from schemas.hierarchy import cell_db_name
    from sync_server.jobs.kiosk_sync import Syncer
    from sync_server.settings import load
    from sync_server.store import Server

    data = Path(workdir) / f"kiosk{index}"
    data.mkdir()
    db = cell_db_name(cell)
    config = data / "config.yaml"
    config.write_text(yaml.safe_dump({"server": {"data_dir": str(data)}, "sync": {
        "hub_url": f"https://{account[0]}:{account[1]}@127.0.0.1:{hub_port}/", "cell_db": db, "ca_bundle": ca,
        "handbook_db": "handbook", "handbook_selector": {"type": "unit"}, "handbook_every": 1}}))
    server = Server(data)
    server.create(db).bulk_docs([meeting(cell, i) for i in range(args.records)])
    syncer = Syncer(load(config), server)
    written = args.records
    phases = [("first", 1, 0), ("idle", args.idle_rounds, 0), ("day", args.day_rounds, args.changes)]
    try:
        for name, rounds, changes in phases:
            barrier.wait()
            for _ in range(rounds):
                if changes:
                    server.get(db).bulk_docs([meeting(cell, written + i) for i in range(changes)])
                    written += changes
                started, cpu = time.perf_counter(), time.process_time()
                done = syncer.run_round()
                wire = sum(r.bytes_sent + r.bytes_received for _, r in done.results)
                out.put((name, index, done.ok, time.perf_counter() - started, time.process_time() - cpu, wire,
                         done.error))
        barrier.wait()
    finally:
        syncer.close()
        server.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=200, help="kiosk processes, each its own cell (200)")
    parser.add_argument("--records", type=int, default=50, help="records each kiosk pushes in its first round (50)")
    parser.add_argument("--idle-rounds", type=int, default=3, help="idle rounds per kiosk (3)")
    parser.add_argument("--day-rounds", type=int, default=2, help="rounds with a day's changes per kiosk (2)")
    parser.add_argument("--changes", type=int, default=10, help="records written before each day round (10)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    import couch_node
    import nginx_proxy
    from province_ca import make_ca

    rel = couch_node.release()
    if rel is None:
        print(couch_node.why_missing(), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        work = Path(tmp)
        cluster = couch_node.CouchCluster(work / "couch", rel)
        proxy = None
        try:
            ca, cert, key = make_ca(work)
            proxy = nginx_proxy.NginxProxy(work / "nginx", couch_node.free_port(), cert, key,
                                           [f"127.0.0.1:{n.port}" for n in cluster.nodes])
            text, cells = hierarchy_subset(args.kiosks)
            (work / "h.csv").write_text(text, encoding="utf-8")
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "sync_server", "provision", "--hub", cluster.nodes[0].url,
                                   "--hierarchy", str(work / "h.csv"), "--credentials", str(work / "k.csv")],
                                  capture_output=True, text=True, cwd=ROOT, check=False)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            print(f"provisioned {len(cells)} cells in {time.perf_counter() - started:.1f} s: {proc.stdout.strip()}")
            with (work / "k.csv").open(encoding="utf-8") as handle:
                accounts = {r["cell"]: (r["account"], r["password"]) for r in csv.DictReader(handle)}
            results = run_kiosks(args, cells, accounts, proxy.port, str(ca), work, cluster, proxy)
        finally:
            if proxy is not None:
                proxy.stop()
            cluster.stop()
    report(args, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def run_kiosks(args: Any, cells: list[str], accounts: dict[str, tuple[str, str]], port: int, ca: str,
               work: Path, cluster: Any, proxy: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(cells) + 1)
    out = context.Queue()
    kiosk_dir = work / "kiosks"
    kiosk_dir.mkdir()
    procs = [context.Process(target=kiosk, args=(i, cell, accounts[cell], args, port, ca, str(kiosk_dir), barrier, out),
                             daemon=True) for i, cell in enumerate(cells)]
    for proc in procs:
        proc.start()
    hub_pids = [n.pid for n in cluster.nodes] + [proxy.proc.pid]
    phases: dict[str, Any] = {}
    rows: list[tuple] = []
    try:
        barrier.wait(timeout=600)
        for name in ("first", "idle", "day"):
            wall, hub_cpu = time.perf_counter(), cpu_seconds(hub_pids)
            barrier.wait(timeout=3600)
            wall, hub_cpu = time.perf_counter() - wall, cpu_seconds(hub_pids) - hub_cpu
            phases[name] = {"seconds": wall, "hub_cpu": hub_cpu}
        while not out.empty() or len(rows) < sum(1 + args.idle_rounds + args.day_rounds for _ in cells):
            rows.append(out.get(timeout=60))
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    for name, phase in phases.items():
        mine = [r for r in rows if r[0] == name]
        times = [r[3] for r in mine]
        phase.update(rounds=len(mine), failed=sum(not r[2] for r in mine),
                     errors=sorted({r[6] for r in mine if r[6]})[:3],
                     rounds_per_second=len(mine) / phase["seconds"], median=statistics.median(times), p95=p95(times),
                     hub_cpu_per_round=phase["hub_cpu"] / len(mine),
                     kiosk_cpu_per_round=sum(r[4] for r in mine) / len(mine), bytes_per_round=sum(r[5] for r in mine) / len(mine))
    return {"kiosks": len(cells), "cpus": os.cpu_count(), "phases": phases}


def report(args: Any, results: dict[str, Any]) -> None:
    print(f"{results['kiosks']} kiosks (processes) on {results['cpus']} CPUs, 3 CouchDB nodes behind nginx (TLS)")
    print("| phase | rounds | failed | rounds/s | median s | p95 s | hub CPU s/round | kiosk CPU s/round | bytes/round |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, p in results["phases"].items():
        print(f"| {name} | {p['rounds']} | {p['failed']} | {p['rounds_per_second']:.1f} | {p['median']:.2f} | "
              f"{p['p95']:.2f} | {p['hub_cpu_per_round']:.3f} | {p['kiosk_cpu_per_round']:.3f} | "
              f"{p['bytes_per_round']:.0f} |")
        if p["errors"]:
            print(f"  errors: {p['errors']}")


if __name__ == "__main__":
    sys.exit(main())
