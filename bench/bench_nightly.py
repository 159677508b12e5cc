"""The province's nightly job on the generated sample province, against our server as the hub.

    .venv/bin/python bench/bench_nightly.py [--size full|small] [--changed-share 0.5] [--keep]
        [--months 2026-10,2026-11] [--seed 1] [--load-workers 4] [--profile changed,idle,first]
        [--restart-hub] [--json FILE]

Results and findings: bench/NIGHTLY.md.

The issue's target: on the full-size sample province (2,000 cells, 57,597 members) the
nightly job finishes within 10 minutes on this machine when nothing changed for half
the cells. This is a benchmark, not a timed test.

What it does, in a fresh temporary directory (removed at the end unless ``--keep``):

1. starts OUR server as the hub (``python -m sync_server serve --data-dir TMP/hub
   --host 127.0.0.1 --port FREE --admin admin:secret``, its own session; stopped by its
   process id at the end, also on error, Ctrl-C or SIGTERM);
2. loads ``generate(size, seed, months)`` into it: one database per cell (``PUT
   /cell-...``, then ``_bulk_docs`` in batches of at most 1,000 with the admin's basic
   auth; every row must succeed: the hub checks schemas and ownership); with
   ``--restart-hub`` the hub is then restarted, so no database is open when the first
   night starts;
3. runs ``sync_server.jobs.nightly.run_nightly`` in this process, with a Settings object and
   ``sync_server.handbook.policy.open_store(settings)`` for the merged replica, night after night:

   ``first``            everything new (checkpoint cache: one dict shared by the nights,
                        as ``NightlyScheduler`` keeps it);
   ``changed``          after one new ``feedback`` document in ``--changed-share`` of the
                        cells (chosen at random), with the shared cache;
   ``idle``             nothing changed, with the shared cache;
   ``changed-nocache``  another ``--changed-share`` of the cells changed, no cache
                        (``checkpoint_cache=None``, as ``sync-server report --now`` or a
                        freshly started process has);
   ``idle-nocache``     nothing changed, no cache.

   The no-cache nights come last: a night without the cache writes checkpoints of a new
   session, which a later cached night would have to re-read.

Per night: seconds (``Nightly.seconds``: pull and reports), of which the pull and the
report (``reports.compute`` + ``write_reports``), HTTP requests to the hub by endpoint
(counted around ``Connection._send``, which every request goes through, the cells'
peers included), the time spent inside those requests, bytes (``Connection.traffic``), this
process's CPU time and the hub's (``/proc/PID/stat``). Checks: no cell failed, cells
changed = cells we changed, documents written (all of them on the first night, one per
changed cell after), the report's province row: install_rate_all rounds to 0.84 and
install_rate_target to 1.04, members as generated, feedback_received as generated plus
the feedback added. Verdict PASS/MISS for the 10-minute target on both ``changed``
nights. Exit status 1 when a check fails.

If the hub process dies, every later request fails at once (instead of the replicator's
retries for each of the 2,000 cells), the night in progress is reported with the hub's
last log line, and the run stops (MISS). The hub is ``sync-server serve`` unchanged: uvicorn
on uvloop (sync_server/api/serving.py), whose epoll watches descriptors past 1,024, which a
hub holding thousands of databases open hands to new connections.

``--profile`` adds runs after the measured ones, under cProfile (slower than unprofiled;
not in the verdict): ``changed`` (another share changed, shared cache, after an
unmeasured warm-up night that refreshes the cache), ``idle`` (shared cache) and
``first`` (a full first night into a second, empty merged database). Each prints the
top functions by own time and by cumulative time, and writes a ``.prof`` file to the
temporary directory (kept with ``--keep``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from procs import stop_group

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from replication.http_peer import Connection  # noqa: E402
from schemas.hierarchy import cell_db_name  # noqa: E402
from sync_server.errors import PeerUnavailable  # noqa: E402
from sync_server.handbook import reports  # noqa: E402
from sync_server.handbook.generate import generate  # noqa: E402
from sync_server.handbook.policy import open_store  # noqa: E402
from sync_server.jobs import nightly as province_module  # noqa: E402
from sync_server.settings import Settings  # noqa: E402

HOST = "127.0.0.1"
ADMIN = ("admin", "secret")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOAD_BATCH = 1000
TARGET_SECONDS = 600.0  # the issue: within 10 minutes
FEEDBACK_TEXT = "Đồng bộ đêm qua nhanh, đề nghị thêm hướng dẫn cho chi bộ vùng cao."


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- the hub ---------------------------------------------------------------------------------


class Hub:
    """Our server as a subprocess in its own session, stopped by its process id."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.url = f"http://{ADMIN[0]}:{ADMIN[1]}@{HOST}:{self.port}"
        self.log_path = workdir / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._cpu = 0.0

    def start(self) -> Hub:
        data = self.workdir / "hub-data"
        data.mkdir(parents=True, exist_ok=True)
        serve = ["serve", "--data-dir", str(data), "--host", HOST, "--port", str(self.port), "--admin", ":".join(ADMIN)]
        args = [sys.executable, "-m", "sync_server", *serve]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.proc.returncode}:\n{self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.base + "/", timeout=2.0, trust_env=False).status_code == 200:
                    log(f"hub: pid {self.proc.pid}, {' '.join(args)}")
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"the hub did not answer GET / in {START_TIMEOUT} s")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the hub process so far (the last reading once it has exited)."""
        if self.proc is None or self.proc.poll() is not None:
            return self._cpu
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            self._cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return self._cpu

    def crashed(self) -> str | None:
        """None while the hub runs; else its exit status and the last line of its log."""
        if self.proc is None or self.proc.poll() is None:
            return None
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return f"the hub exited with {self.proc.returncode}: {lines[-1] if lines else '(empty log)'}"

    def fds(self) -> tuple[int, int]:
        """(open file descriptors, highest descriptor number) of the hub process."""
        if self.proc is None:
            return 0, 0
        try:
            numbers = [int(n) for n in os.listdir(f"/proc/{self.proc.pid}/fd")]
        except OSError:
            return 0, 0
        return len(numbers), max(numbers, default=0)

    def rss_mb(self) -> float:
        if self.proc is None:
            return 0.0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        stop_group(proc, STOP_TIMEOUT)
        log(f"hub: pid {proc.pid} stopped ({proc.returncode})")


def client(hub: Hub) -> httpx.Client:
    return httpx.Client(base_url=hub.base, auth=ADMIN, trust_env=False, timeout=300.0,
                        headers={"Accept": "application/json"})


def check_rows(db: str, rows: Any, expected: int) -> None:
    """Every row of a _bulk_docs answer succeeded (the hub checks schemas and ownership)."""
    if not isinstance(rows, list) or len(rows) != expected:
        raise RuntimeError(f"{db}: _bulk_docs answered {str(rows)[:300]} for {expected} documents")
    failed = [r for r in rows if "error" in r or not r.get("ok", "rev" in r)]
    if failed:
        raise RuntimeError(f"{db}: {len(failed)} of {expected} documents refused, e.g. {failed[0]}")


def load_province(hub: Hub, cell_docs: dict[str, list[dict]], workers: int) -> dict[str, Any]:
    """One database per cell on the hub; every document through _bulk_docs."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def http() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = client(hub)
            with lock:
                clients.append(local.client)
        return local.client

    def load_cell(item: tuple[str, list[dict]]) -> tuple[int, int]:
        code, docs = item
        db = cell_db_name(code)
        path = "/" + quote(db, safe="")
        response = http().put(path)
        if response.status_code != 201:
            raise RuntimeError(f"PUT {path}: {response.status_code} {response.text[:200]}")
        requests = 1
        for start in range(0, len(docs), LOAD_BATCH):
            chunk = docs[start:start + LOAD_BATCH]
            response = http().post(path + "/_bulk_docs", json={"docs": chunk})
            if response.status_code != 201:
                raise RuntimeError(f"POST {path}/_bulk_docs: {response.status_code} {response.text[:300]}")
            check_rows(db, response.json(), len(chunk))
            requests += 1
        return len(docs), requests

    started = time.monotonic()
    docs = requests = done = 0
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for n, r in pool.map(load_cell, cell_docs.items()):
                docs, requests, done = docs + n, requests + r, done + 1
                if done % 250 == 0 or done == len(cell_docs):
                    log(f"load: {done}/{len(cell_docs)} cells, {docs:,} documents, "
                        f"{time.monotonic() - started:.0f} s")
    finally:
        for c in clients:
            c.close()
    return {"cells": len(cell_docs), "docs": docs, "requests": requests, "seconds": time.monotonic() - started}


def add_feedback(hub: Hub, cells: list[str], month: str, tag: str) -> None:
    """One new, schema-valid feedback document in each of ``cells`` (one _bulk_docs per cell)."""
    with client(hub) as http:
        for i, code in enumerate(cells):
            doc = {"_id": f"feedback:{code}:{uuid.uuid4()}", "type": "feedback", "cell": code,
                   "about": "software", "text": f"{FEEDBACK_TEXT} ({tag})",
                   "created_at": f"{month}-{1 + i % 28:02d}T20:{i % 60:02d}:00+07:00"}
            db = cell_db_name(code)
            response = http.post("/" + quote(db, safe="") + "/_bulk_docs", json={"docs": [doc]})
            if response.status_code != 201:
                raise RuntimeError(f"{db}: _bulk_docs {response.status_code} {response.text[:300]}")
            check_rows(db, response.json(), 1)


# --- instrumenting one night (this process only; nothing outside bench/ is edited) ----------


def endpoint(method: str, path: str) -> str:
    """A request's kind: ``GET /``, ``GET _local``, ``GET _changes``, ``POST _bulk_get``..."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if not parts or parts == [""]:
        return f"{method} /"
    if len(parts) == 1:
        return f"{method} /db"
    return f"{method} {parts[1]}"


@dataclass
class Meter:
    """Requests by kind and the seconds spent inside them; report phase timings."""

    requests: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)  # time inside requests, by kind
    http_seconds: float = 0.0
    report_seconds: float = 0.0
    roots: list[Connection] = field(default_factory=list)


@contextlib.contextmanager
def metered(hub: Hub) -> Any:
    """Count every request to the hub and time the report functions, while the block runs."""
    meter = Meter()
    original_send = Connection._send
    original_connection = province_module.Connection
    original_compute, original_write = reports.compute, reports.write_reports

    def send(self: Connection, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        crashed = hub.crashed()
        if crashed:  # fail at once rather than retry 2,000 cells against a dead process
            raise PeerUnavailable(crashed)
        started = time.perf_counter()
        try:
            response = original_send(self, method, path, *args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            meter.http_seconds += elapsed
            meter.seconds[endpoint(method, path)] += elapsed
        meter.requests[endpoint(method, path)] += 1  # answered requests, as Connection.traffic counts them
        return response

    def connection(*args: Any, **kwargs: Any) -> Connection:
        root = original_connection(*args, **kwargs)
        meter.roots.append(root)
        return root

    def timed(function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                meter.report_seconds += time.perf_counter() - started
        return wrapper

    Connection._send = send  # type: ignore[method-assign]
    province_module.Connection = connection  # type: ignore[assignment,misc]
    reports.compute, reports.write_reports = timed(original_compute), timed(original_write)
    try:
        yield meter
    finally:
        Connection._send = original_send  # type: ignore[method-assign]
        province_module.Connection = original_connection  # type: ignore[misc]
        reports.compute, reports.write_reports = original_compute, original_write


@dataclass
class Night:
    name: str
    cache: str                  # "shared" (the scheduler's dict), "fresh" (an empty dict) or "none"
    cells: int = 0
    changed: int = 0            # cells we changed on the hub before this night
    cells_changed: int = 0      # what the job says
    docs_written: int = 0
    expected_docs: int = 0
    failed: int = 0
    seconds: float = 0.0        # Nightly.seconds: pull + reports
    pull_seconds: float = 0.0
    report_seconds: float = 0.0
    requests: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    seconds_by_endpoint: dict[str, float] = field(default_factory=dict)
    http_seconds: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0
    cpu_here: float = 0.0
    cpu_hub: float = 0.0
    install_rate_all: float | None = None
    install_rate_target: float | None = None
    members: int = 0
    feedback_received: int = 0
    checks: list[str] = field(default_factory=list)   # failed checks
    profiled: bool = False
    hub_crashed: str | None = None


def run_night(name: str, settings: Settings, server: Any, hub: Hub, month: str, cache: dict | None,
              changed: int, expected_docs: int, expected: dict[str, Any], profile: Path | None = None,
              top: int = 30, fresh: bool = False) -> Night:
    kind = "none" if cache is None else "fresh" if fresh else "shared"
    night = Night(name, kind, changed=changed, expected_docs=expected_docs, profiled=profile is not None)
    log(f"night {name}: start ({changed} cells changed, cache {kind}"
        f"{', under cProfile' if profile else ''})")
    cpu_hub, cpu_here = hub.cpu_seconds(), time.process_time()
    profiler = cProfile.Profile() if profile else None
    with metered(hub) as meter:
        if profiler:
            profiler.enable()
        try:
            done = province_module.run_nightly(settings, server, month, checkpoint_cache=cache)
        finally:
            if profiler:
                profiler.disable()
    night.cpu_here, night.cpu_hub = time.process_time() - cpu_here, hub.cpu_seconds() - cpu_hub
    night.cells, night.cells_changed, night.docs_written = done.cells, done.cells_changed, done.docs_written
    night.failed, night.seconds = len(done.failed), done.seconds
    night.report_seconds, night.http_seconds = meter.report_seconds, meter.http_seconds
    night.pull_seconds = done.seconds - meter.report_seconds
    night.by_endpoint = dict(sorted(meter.requests.items(), key=lambda kv: -kv[1]))
    night.seconds_by_endpoint = {k: round(meter.seconds[k], 3) for k in night.by_endpoint}
    night.requests = sum(meter.requests.values())
    for root in meter.roots:
        night.bytes_sent += root.traffic.bytes_sent
        night.bytes_received += root.traffic.bytes_received
    if night.requests != sum(r.traffic.requests for r in meter.roots):
        night.checks.append(f"request counts disagree: {night.requests} counted, "
                            f"{sum(r.traffic.requests for r in meter.roots)} in Connection.traffic")
    night.hub_crashed = hub.crashed()
    if night.hub_crashed:
        night.checks.append(night.hub_crashed)
    row = done.report.province
    night.install_rate_all, night.install_rate_target = row.install_rate_all, row.install_rate_target
    night.members, night.feedback_received = row.members, row.feedback_received
    # checks
    for cell, error in done.failed[:5]:
        night.checks.append(f"cell {cell} failed: {error}")
    if night.cells != expected["cells"]:
        night.checks.append(f"{night.cells} cells pulled, expected {expected['cells']}")
    if night.cells_changed != changed:
        night.checks.append(f"cells changed {night.cells_changed}, expected {changed}")
    if night.docs_written != expected_docs:
        night.checks.append(f"documents written {night.docs_written}, expected {expected_docs}")
    if row.install_rate_all is None or round(row.install_rate_all, 2) != 0.84:
        night.checks.append(f"install_rate_all {row.install_rate_all} does not round to 0.84")
    if row.install_rate_target is None or round(row.install_rate_target, 2) != 1.04:
        night.checks.append(f"install_rate_target {row.install_rate_target} does not round to 1.04")
    if row.members != expected["members"]:
        night.checks.append(f"members {row.members}, expected {expected['members']}")
    if row.feedback_received != expected["feedback"]:
        night.checks.append(f"feedback_received {row.feedback_received}, expected {expected['feedback']}")
    summary = json.loads((Path(settings.province.report_dir) / month / "summary.json").read_text())
    if summary["province"]["installed"] != row.installed:
        night.checks.append("summary.json's province row differs from the report")
    log(f"night {name}: {night.seconds:.1f} s (pull {night.pull_seconds:.1f}, report {night.report_seconds:.1f}), "
        f"{night.cells_changed} cells changed, {night.docs_written} docs, {night.requests} requests "
        f"{night.by_endpoint}; checks: {'ok' if not night.checks else '; '.join(night.checks)}")
    if profiler and profile:
        profiler.dump_stats(str(profile))
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(order).print_stats(top)
            print(f"\n--- cProfile of night {name}, top {top} by {order} ({profile}) ---")
            print(out.getvalue(), flush=True)
    return night


# --- output ------------------------------------------------------------------------------------


def fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def table(nights: list[Night]) -> str:
    lines = [("| night | cache | cells | changed | docs written | seconds | pull s | report s | requests "
              "| in requests s | sent / received | CPU here / hub s | install all / target | checks |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for n in nights:
        rates = (f"{n.install_rate_all:.0%} / {n.install_rate_target:.0%}"
                 if n.install_rate_all is not None and n.install_rate_target is not None else "-")
        lines.append(f"| {n.name}{' (cProfile)' if n.profiled else ''} | {n.cache} "
                     f"| {n.cells:,} | {n.cells_changed:,} of {n.changed:,} | {n.docs_written:,} | {n.seconds:.1f} "
                     f"| {n.pull_seconds:.1f} | {n.report_seconds:.1f} | {n.requests:,} | {n.http_seconds:.1f} "
                     f"| {fmt_bytes(n.bytes_sent)} / {fmt_bytes(n.bytes_received)} "
                     f"| {n.cpu_here:.1f} / {'-' if n.hub_crashed else f'{n.cpu_hub:.1f}'} | {rates} "
                     f"| {'ok' if not n.checks else 'FAIL'} |")
    lines.append("")
    lines.append("Requests by endpoint:")
    lines.append("")
    for n in nights:
        parts = ", ".join(f"{k} {v:,} ({n.seconds_by_endpoint.get(k, 0):.1f} s)" for k, v in n.by_endpoint.items())
        lines.append(f"- {n.name}{' (cProfile)' if n.profiled else ''}: {parts}")
    return "\n".join(lines)


def code_version() -> str:
    """The commit measured, and whether the code under test differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sync_server", "replication", "schemas"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        stamp = ROOT / "COMMIT"  # a `git archive` snapshot may carry its commit in this file
        commit = stamp.read_text().strip()[:12] if stamp.exists() else "unknown commit"
        return f"{ROOT} (not a git checkout: {commit})"
    return f"commit {head}" + (" with uncommitted changes in sync_server/replication/schemas" if dirty else "")


def machine() -> str:
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"Linux {platform.release()}, Python {platform.python_version()}, "
            f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


# --- main ------------------------------------------------------------------------------------


class HubCrashed(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["full", "small"], default="full")
    parser.add_argument("--changed-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--months", default="2026-10,2026-11", help="months generated; the last is reported")
    parser.add_argument("--load-workers", type=int, default=4, help="concurrent clients loading the hub")
    parser.add_argument("--profile", default="", help="comma list of extra profiled nights: changed,idle,first")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--restart-hub", action="store_true",
                        help="restart the hub after loading (no database open when the first night starts)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (hub, replica, reports)")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args(argv)
    if not 0.0 <= args.changed_share <= 1.0:
        parser.error("--changed-share must be between 0 and 1")
    profiles = [p for p in args.profile.split(",") if p]
    unknown = set(profiles) - {"changed", "idle", "first"}
    if unknown:
        parser.error(f"--profile: unknown night(s) {', '.join(sorted(unknown))}")
    months = [m.strip() for m in args.months.split(",") if m.strip()]
    month = months[-1]

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    started_at = datetime.datetime.now().astimezone()
    command = ".venv/bin/python bench/bench_nightly.py " + " ".join(argv)
    log(f"{command}\n  machine: {machine()}\n  code: {code_version()}\n  work dir: {tmp}")
    hub = Hub(tmp)
    server = None
    nights: list[Night] = []
    results: dict[str, Any] = {"command": command, "date": started_at.isoformat(timespec="seconds"),
                               "machine": machine(), "code": code_version()}
    status = 0
    try:
        t0 = time.monotonic()
        province = generate(args.size, seed=args.seed, months=months)
        codes = list(province.cell_docs)
        log(f"generated {args.size} province (seed {args.seed}, months {', '.join(months)}): {len(codes):,} cells, "
            f"{province.doc_count():,} documents, {province.expected['members']:,} members, "
            f"{province.expected['installed']:,} installed, in {time.monotonic() - t0:.1f} s")
        hierarchy = province.write_hierarchy(tmp / "hierarchy.csv")
        hub.start()
        load = load_province(hub, province.cell_docs, args.load_workers)
        load["hub_rss_mb"] = hub.rss_mb()
        load["hub_fds"], load["hub_max_fd"] = hub.fds()
        results["load"] = load
        log(f"load: {load['docs']:,} documents into {load['cells']:,} databases in {load['seconds']:.1f} s "
            f"({load['requests']:,} requests, {load['docs'] / load['seconds']:,.0f} docs/s); hub: "
            f"{load['hub_rss_mb']:.0f} MB RSS, {load['hub_fds']:,} open file descriptors (highest "
            f"{load['hub_max_fd']:,})")

        if args.restart_hub:
            hub.stop()
            hub.start()
            log(f"hub restarted: {hub.fds()[0]:,} open file descriptors")
        settings = (Settings().replace("province", hub_url=hub.url, hierarchy=str(hierarchy),
                                       report_dir=str(tmp / "reports"))
                    .replace("server", data_dir=str(tmp / "province-data")))
        server = open_store(settings)
        cache: dict[str, Any] = {}
        rng = random.Random(args.seed * 1000 + 7)
        share = round(args.changed_share * len(codes))
        expected = {"cells": len(codes), "members": province.expected["members"],
                    "feedback": province.expected["feedback_received"][month]}

        def add(night: Night) -> None:
            nights.append(night)
            if night.hub_crashed:
                raise HubCrashed(f"night {night.name}: {night.hub_crashed} (hub log: {hub.log_path})")

        def change(tag: str) -> int:
            chosen = rng.sample(codes, share)
            t = time.monotonic()
            add_feedback(hub, chosen, month, tag)
            expected["feedback"] += len(chosen)
            log(f"changed {len(chosen):,} cells on the hub (one feedback each) in {time.monotonic() - t:.1f} s")
            return len(chosen)

        add(run_night("first", settings, server, hub, month, cache, len(codes), province.doc_count(), expected))
        n = change("night 2")
        add(run_night("changed", settings, server, hub, month, cache, n, n, expected))
        add(run_night("idle", settings, server, hub, month, cache, 0, 0, expected))
        n = change("night 2, no cache")
        add(run_night("changed-nocache", settings, server, hub, month, None, n, n, expected))
        add(run_night("idle-nocache", settings, server, hub, month, None, 0, 0, expected))

        if "changed" in profiles or "idle" in profiles:
            add(run_night("warm-up", settings, server, hub, month, cache, 0, 0, expected))
        if "changed" in profiles:
            n = change("profiled")
            add(run_night("changed", settings, server, hub, month, cache, n, n, expected,
                          profile=tmp / "changed.prof", top=args.profile_top))
        if "idle" in profiles:
            add(run_night("idle", settings, server, hub, month, cache, 0, 0, expected,
                          profile=tmp / "idle.prof", top=args.profile_top))
        if "first" in profiles:
            other = settings.replace("province", merged_db="province-profiled",
                                     report_dir=str(tmp / "reports-profiled"))
            docs = province.doc_count() + (expected["feedback"] - province.expected["feedback_received"][month])
            add(run_night("first", other, server, hub, month, {}, len(codes), docs, expected,
                          profile=tmp / "first.prof", top=args.profile_top, fresh=True))
        results["hub_rss_mb_end"] = hub.rss_mb()
        results["hub_fds_end"] = hub.fds()
    except HubCrashed as exc:
        status = 1
        results["hub_crashed"] = str(exc)
        print(f"\nHUB CRASHED: {exc}", flush=True)
    except BaseException:
        status = 1
        raise
    finally:
        if server is not None:
            server.close()
        hub.stop()
        results["nights"] = [asdict(n) for n in nights]
        if nights:
            print()
            print(f"{command}  ({started_at:%Y-%m-%d %H:%M %Z}; {machine()}; {results['code']}; hub: uvicorn)")
            print()
            print(table(nights))
            print()
            for n in nights:
                for check in n.checks:
                    print(f"CHECK FAILED night {n.name}: {check}")
                    status = 1
            for n in nights:
                if n.name.startswith("changed") and not n.profiled:
                    verdict = "PASS" if n.seconds <= TARGET_SECONDS and not n.checks else "MISS"
                    print(f"{verdict}: night 2 ({n.name}, cache {n.cache}): "
                          f"{n.seconds:.1f} s for {n.cells:,} cells with {n.changed:,} changed "
                          f"(target {TARGET_SECONDS:.0f} s)")
                    status |= verdict == "MISS"
        if not any(n.name.startswith("changed") and not n.profiled for n in nights):
            print(f"MISS: night 2 was not reached ({results.get('hub_crashed') or 'stopped before it'})")
            status = 1
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
