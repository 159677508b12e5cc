"""A cell meeting on one kiosk: N phones live-syncing and signing in at once, against a peer.

    .venv/bin/python bench/bench_phones.py [--phones 10,60,100] [--peer-ref main] [--articles 150]
        [--meetings 100] [--checkins 10] [--catchup-timeout 90] [--json FILE]

Each phone is PouchDB 9 in Node (tests/peers/phones.js) doing what the web app does
(kiosk_client/static/db.js): sign in with its member's PIN, a live pull of the handbook, a live
pull and a live push of the cell database, through a browser-like keep-alive agent (at most 6
sockets) from its own address. Measured per run:

- caught up: how many phones hold everything the kiosk has with their three replications idle,
  and when the last one got there (s from the start, sign-in included);
- check-in: one phone after another (``--checkins``) writes its member's attendance; the time
  until every other phone has it (p95 and max over all (check-in, phone) pairs);
- other requests made meanwhile by another client (``GET /``, ``POST /_session`` of the admin,
  an admin ``PUT``, one after another every 0.2 s): p95;
- errors (HTTP 5xx/401/403, failed connections, replication errors; a request sent again after
  meeting a kept-alive socket the kiosk had just closed, as a browser does, counts as
  "retried") and the kiosk's peak resident memory (VmHWM, reset after the setup) and its
  resident memory 3 s after the phones left.

The same runs go against a peer in the same run: this project's server as committed at
``--peer-ref`` (a ``git archive`` of it, run from a temporary folder), so the table's ratios
compare two serving designs on the same machine at the same moment. Each server is a fresh
``python -m sync_server serve --sample`` with its default settings, on 127.0.0.1, stopped by its
process id at the end. The 2 cores are shared with the phones (Node) and the probe.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests" / "peers"))

import phones as scenario  # noqa: E402  (tests/peers/phones.py)
from procs import stop_group  # noqa: E402

ADMIN = ("admin", "secret")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Kiosk:
    """``python -m sync_server serve --sample`` from a source folder, default settings."""

    def __init__(self, src: Path, work: Path) -> None:
        self.src, self.work, self.port = src, work, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Kiosk:
        data = self.work / "data"
        shutil.rmtree(data, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.log = open(self.work / "server.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync_server", "serve", "--data-dir", str(data), "--port", str(self.port),
             "--admin", ":".join(ADMIN), "--sample"],
            cwd=self.src, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.work / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start within 60 s")

    def reset_peak(self) -> None:
        """Reset VmHWM (Linux: writing 5 to clear_refs), so the peak is the run's, not the setup's."""
        assert self.proc is not None
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass

    def memory(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in bytes."""
        assert self.proc is not None
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
        return fields["VmRSS"], fields["VmHWM"]

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used (its threads included)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_group(self.proc)
        self.log.close()


def one_run(src: Path, work: Path, phones: int, args: argparse.Namespace) -> dict[str, Any]:
    kiosk = Kiosk(src, work).start()
    try:
        expect = scenario.prepare(kiosk.url, ADMIN, phones, articles=args.articles, meetings=args.meetings)
        time.sleep(1.0)
        kiosk.reset_peak()
        probe = scenario.Probe(kiosk.url, ADMIN).start()
        started, cpu = time.monotonic(), kiosk.cpu_seconds()
        try:
            result = scenario.run_phones(kiosk.url, phones, expect, checkins=args.checkins,
                                         catchup_timeout=args.catchup_timeout)
        finally:
            probe.stop()
        elapsed, cpu = time.monotonic() - started, kiosk.cpu_seconds() - cpu
        _, peak = kiosk.memory()
        time.sleep(3.0)
        after, _ = kiosk.memory()
        alive = kiosk.proc is not None and kiosk.proc.poll() is None
    finally:
        kiosk.stop()
    figures = scenario.summarize(result, probe)
    figures.update(peak_rss=peak, rss_after=after, seconds=elapsed, alive=alive, expect=expect,
                   kiosk_cpu_s=cpu, node_cpu_s=result.get("node_cpu_s"), load=os.getloadavg()[0])
    return figures


def fmt(value: Any, unit: str = "s") -> str:
    if value is None:
        return "-"
    if unit == "MB":
        return f"{value / 1e6:.0f}"
    return f"{value:.2f}"


def ratio(ours: Any, peer: Any) -> str:
    if ours is None or peer is None or peer == 0:
        return "-"
    return f"{ours / peer:.2f}"


def snapshot(ref: str, where: Path) -> Path:
    """``git archive`` of ``ref`` into ``where`` (the peer's source)."""
    where.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", default="10,60,100", help="phone counts, comma-separated")
    parser.add_argument("--peer-ref", default="main", help="git ref of the peer (this server as committed there); "
                                                           "'none': no peer")
    parser.add_argument("--articles", type=int, default=150, help="handbook articles added (about 8 KB each)")
    parser.add_argument("--meetings", type=int, default=100, help="meetings added to the cell's database")
    parser.add_argument("--checkins", type=int, default=10)
    parser.add_argument("--catchup-timeout", type=float, default=90.0)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.phones.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-phones-"))
    peers = [("ours", ROOT)]
    if args.peer_ref != "none":
        peers.append((f"peer ({args.peer_ref})", snapshot(args.peer_ref, tmp / "peer-src")))
    results: dict[str, dict[int, dict[str, Any]]] = {name: {} for name, _ in peers}
    try:
        for n in counts:
            for name, src in (peers if n % 2 == 0 else peers[::-1]):  # alternate who goes first
                log(f"{name}: {n} phones")
                work = tmp / f"{name.split()[0]}-{n}"
                work.mkdir(parents=True, exist_ok=True)
                results[name][n] = one_run(src, work, n, args)
                log(f"{name}: {n} phones: {json.dumps({k: v for k, v in results[name][n].items() if k != 'statuses'})}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    first = next(iter(results.values()))
    expect = next(iter(first.values()))["expect"]
    lines = [f"`.venv/bin/python bench/bench_phones.py {' '.join(sys.argv[1:] if argv is None else argv)}`", "",
             f"Each phone pulls {expect['handbook']} handbook documents and {expect['cell']} cell documents; "
             f"{args.checkins} check-ins; other requests every 0.2 s.", "",
             "| phones | server | caught up | last caught up (s) | check-in p95 / max (s) | other requests p95 (s) "
             "| errors | retried | peak RSS (MB) | RSS after (MB) | kiosk CPU / phones CPU / wall (s) |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for n in counts:
        for name, _ in peers:
            r = results[name][n]
            checkin = (f"{fmt(r['checkin_p95_s'])} / {fmt(r['checkin_max_s'])}" if r["checkin_missed"] == 0
                       else f"{r['checkin_missed']}/{r['checkin_pairs']} never seen")
            lines.append(f"| {n} | {name} | {r['caught_up']}/{n} | {fmt(r['caught_up_last_s'])} | {checkin} "
                         f"| {fmt(r['other_p95_s'])} | {r['errors']} | {r['retried']} | {fmt(r['peak_rss'], 'MB')} "
                         f"| {fmt(r['rss_after'], 'MB')} "
                         f"| {r['kiosk_cpu_s']:.0f} / {r['node_cpu_s'] or 0:.0f} / {r['seconds']:.0f} |")
    lines += ["", "Load average (1 min) at the end of each run, from the machine's other users too: "
              + ", ".join(f"{name.split()[0]} {n}: {results[name][n]['load']:.1f}" for n in counts for name, _ in peers)]
    if len(peers) == 2:
        lines += ["", "Ratios ours / peer (below 1: ours is faster or smaller):", "",
                  "| phones | last caught up | check-in p95 | other p95 | peak RSS |", "|---:|---:|---:|---:|---:|"]
        ours, peer = results[peers[0][0]], results[peers[1][0]]
        for n in counts:
            a, b = ours[n], peer[n]
            lines.append(f"| {n} | {ratio(a['caught_up_last_s'], b['caught_up_last_s'])} "
                         f"| {ratio(a['checkin_p95_s'], b['checkin_p95_s'])} | {ratio(a['other_p95_s'], b['other_p95_s'])} "
                         f"| {ratio(a['peak_rss'], b['peak_rss'])} |")
    for name, _ in peers:
        for n in counts:
            if results[name][n]["error_samples"]:
                lines.append(f"\n{name}, {n} phones, first errors: " + "; ".join(results[name][n]["error_samples"][:4]))
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
