"""Replication over an emulated mobile link: our replicator against PouchDB's, in one run.

    .venv/bin/python bench/bench_links.py [--profile 3G|2G] [--quick] [--hub pouchdb|ours|both]
        [--cut-every 20] [--down-for 2] [--push 500] [--no-cuts] [--ours-only] [--existing-target]

For each hub (pouchdb-server by default; ``--hub ours`` or ``both`` adds our own
server), in fresh temporary directories:

1. start the hub on a free loopback port and load the cell data set
   (bench/cell_dataset.py) into its database ``cell`` directly (not through the link);
2. through a LinkProxy (bench/linkproxy.py) with the profile's bandwidths and latency:

   a. PULL hub -> a fresh local database, with our replicator (the library call
      behind ``sync-server replicate URL cell --data-dir DIR``, run in a child
      process as the CLI would be) and with PouchDB 9's replicator (Node, into a
      fresh leveldb database, through an http.Agent with keep-alive and 6
      sockets per host, as a browser would, retrying once on a fresh connection
      a request that hits a kept-alive socket the server just closed, as a
      browser does; tests/peers/pouch.js ``replicate_stats``);
   b. PUSH ``--push`` meetings written at the kiosk from a local database to a
      fresh hub database (created by the push; ``--existing-target``: created
      beforehand, so the push asks ``_revs_diff`` as a kiosk's usual push does), with both;
   c. PULL again with our replicator into another fresh local database through
      the same link, every connection reset every ``--cut-every`` seconds (and
      new ones refused for ``--down-for`` seconds after each cut). A run that
      fails is run again at once, as the scheduler would (without its back-off
      pause), until one completes; bytes are summed over every run.

Bytes, connections and resets are counted at the proxy (what crossed the link).
Time is measured inside each replicator (no process start-up). The "bound" is
the physical floor: the payload gzip-compressed (JSON documents as one gzip
stream plus the raw attachment bytes) divided by the bandwidth of the direction,
plus one round trip. A table is printed per hub; ``--json FILE`` also writes
every number, ``--render FILE`` prints the tables of such a file again. Results
and their reading: bench/LINKS.md. Every process started is stopped by its id.
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from procs import stop_group

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import cell_dataset as dataset
from linkproxy import PROFILES, LinkProxy, LinkStats

HOST = "127.0.0.1"
ADMIN = ("admin", "secret")
POUCHDB_SERVER_JS = ROOT / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
POUCH_JS = ROOT / "tests" / "peers" / "pouch.js"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
RUN_TIMEOUT = 3600.0  # one replication run, even on 2G


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Hub:
    """A hub server process (its own session: stopped by signalling its process group)."""

    kind: str  # "pouchdb" or "ours"
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def auth(self) -> tuple[str, str] | None:
        return ADMIN if self.kind == "ours" else None

    def url(self, port: int | None = None) -> str:
        """Root URL, credentials included for our server; ``port`` to go through the proxy."""
        creds = f"{ADMIN[0]}:{ADMIN[1]}@" if self.kind == "ours" else ""
        return f"http://{creds}{HOST}:{port or self.port}"

    def start(self) -> Hub:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.kind == "pouchdb":
            (self.workdir / "dbs").mkdir(exist_ok=True)
            args = ["node", str(POUCHDB_SERVER_JS), "--port", str(self.port), "--host", HOST,
                    "--dir", str(self.workdir / "dbs"), "--config", str(self.workdir / "config.json"), "--no-color"]
        else:
            args = [sys.executable, "-m", "sync_server", "serve", "--data-dir", str(self.workdir / "data"),
                    "--host", HOST, "--port", str(self.port), "--admin", ":".join(ADMIN)]
        log = (self.workdir / "server.log").open("ab")
        with log:
            # cwd is the work dir: pouchdb-server writes log.txt there.
            self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} hub exited: {(self.workdir / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://{HOST}:{self.port}/", timeout=2.0, trust_env=False).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} hub did not answer in {START_TIMEOUT} s")

    def stop(self) -> None:
        stop_group(self.proc, STOP_TIMEOUT)


def run_child(args: list[str], timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Run a child process in its own session; return the JSON object on its last stdout line."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        raise RuntimeError(f"{args[:3]} exited {proc.returncode}:\n{err.decode(errors='replace')[-3000:]}") from None


def ours(source: str, target: str, data_dir: Path) -> dict[str, Any]:
    """Our replicator in a child process: the library call behind ``sync-server replicate``."""
    return run_child([sys.executable, str(Path(__file__).resolve()), "child-replicate", source, target,
                      "--data-dir", str(data_dir)])


def pouch(source: str, target: str, keepalive: bool = True) -> dict[str, Any]:
    """PouchDB 9 in Node: tests/peers/pouch.js replicate_stats."""
    command = {"op": "replicate_stats", "source": source, "target": target, "keepalive": keepalive}
    return run_child(["node", str(POUCH_JS), json.dumps(command)])


def pouch_bulk(db: str, docs: list[dict]) -> None:
    proc = subprocess.run(["node", str(POUCH_JS)], input=json.dumps({"op": "bulk", "db": db, "docs": docs}).encode(),
                          cwd=ROOT, capture_output=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace"))


def child_replicate(argv: list[str]) -> int:
    """``child-replicate SOURCE TARGET [OPTIONS]``: ``sync-server replicate`` run in this process.

    The command runs unchanged (``sync_server.cli.main``); its library call is wrapped only to
    catch the Result it returns, printed as JSON on the last line.
    """
    import click

    from sync_server.cli import main as cli_main
    from sync_server.cli import replicate as replicate_cli

    captured: dict[str, Any] = {}
    original = replicate_cli.run_replication

    def keep(*args: Any, **kwargs: Any) -> Any:
        captured["result"] = original(*args, **kwargs)
        return captured["result"]

    replicate_cli.run_replication = keep
    error = None
    try:
        cli_main(["replicate", *argv], standalone_mode=False)
    except click.ClickException as exc:
        error = exc.format_message()
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a failed run
        error = f"{type(exc).__name__}: {exc}"
    result = asdict(captured["result"]) if "result" in captured else {"ok": False}
    if error and not result.get("error"):
        result["error"] = error
    print(json.dumps(result, default=str), flush=True)
    return 0


# --- measurements ----------------------------------------------------------------------------


@dataclass
class Row:
    direction: str
    replicator: str
    ok: bool
    seconds: float
    link: LinkStats
    requests: int
    docs: int
    bound: float
    runs: int = 1
    detail: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def measured(proxy: LinkProxy) -> Iterator[dict[str, LinkStats]]:
    before = proxy.stats.snapshot()
    out: dict[str, LinkStats] = {}
    yield out
    time.sleep(proxy.rtt + 0.1)  # let the last FINs cross
    out["delta"] = proxy.stats.snapshot() - before


def bound_seconds(payload: dataset.Payload, bps: float | None, rtt: float) -> float:
    return (payload.gzip_total * 8 / bps if bps else 0.0) + rtt


def bench_hub(kind: str, args: argparse.Namespace, tmp: Path) -> list[Row]:
    docs = dataset.cell_dataset(args.quick)
    push_docs = dataset.push_meetings(args.push)
    pull_payload, push_payload = dataset.payload_bytes(docs), dataset.payload_bytes(push_docs)
    down, up, latency = PROFILES[args.profile]
    rtt = 2 * latency
    pull_bound, push_bound = bound_seconds(pull_payload, down, rtt), bound_seconds(push_payload, up, rtt)
    rows: list[Row] = []
    hub = Hub(kind, tmp / f"hub-{kind}")
    try:
        hub.start()
        started = time.monotonic()
        dataset.load(f"http://{HOST}:{hub.port}", "cell", docs, auth=hub.auth)
        log(f"[{kind}] hub on port {hub.port}: loaded {dataset.describe(docs)} in {time.monotonic() - started:.1f} s")
        # The kiosks' own meetings, to push: a local store for ours, a leveldb database for PouchDB.
        from sync_server.store import Server

        kiosk_dir = tmp / f"kiosk-{kind}"
        server = Server(kiosk_dir)
        server.create("meetings").bulk_docs(push_docs)
        server.close()
        pouch_src = str(tmp / f"pouch-{kind}-meetings")
        pouch_bulk(pouch_src, push_docs)

        with LinkProxy.profile(args.profile, hub.port) as proxy:
            via = hub.url(proxy.port)
            replicators = ("ours",) if args.ours_only else ("ours", "pouchdb")
            if args.existing_target:  # push into databases that exist (a kiosk's usual push)
                with httpx.Client(auth=hub.auth, trust_env=False, timeout=60) as http:
                    for name in replicators:
                        http.put(f"http://{HOST}:{hub.port}/push-{name}").raise_for_status()
            for replicator in replicators:
                with measured(proxy) as m:
                    if replicator == "ours":
                        r = ours(f"{via}/cell", "cell", kiosk_dir)
                    else:
                        r = pouch(f"{via}/cell", str(tmp / f"pouch-{kind}-cell"))
                rows.append(_row("pull", replicator, r, m["delta"], pull_bound))
                log(f"[{kind}] pull {replicator}: {rows[-1].seconds:.1f} s, {m['delta'].as_dict()}")
            for replicator in replicators:
                with measured(proxy) as m:
                    if replicator == "ours":
                        r = ours("meetings", f"{via}/push-ours", kiosk_dir)
                    else:
                        r = pouch(pouch_src, f"{via}/push-pouchdb")
                rows.append(_row("push", replicator, r, m["delta"], push_bound))
                log(f"[{kind}] push {replicator}: {rows[-1].seconds:.1f} s, {m['delta'].as_dict()}")
        if not args.no_cuts:
            rows.append(cut_pull(hub, args, kiosk_dir, pull_bound, len(docs)))
        check_counts(hub, docs, push_docs, rows)
    finally:
        hub.stop()
    return rows


def _row(direction: str, replicator: str, r: dict[str, Any], link: LinkStats, bound: float) -> Row:
    ok = bool(r.get("ok"))
    docs = int(r.get("docs_written", 0) or 0)
    keys = ("error", "errors", "methods", "docs_read", "doc_write_failures", "retried", "bytes_sent",
            "bytes_received", "batches", "start_seq")
    detail = {k: r.get(k) for k in keys if r.get(k) not in (None, [], {}, 0)}
    return Row(direction, replicator, ok, float(r.get("seconds") or 0.0), link, int(r.get("requests") or 0),
               docs, bound, detail=detail)


def cut_pull(hub: Hub, args: argparse.Namespace, kiosk_dir: Path, bound: float, total_docs: int) -> Row:
    """Pull through a link that resets every connection every ``cut_every`` s; re-run until complete."""
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    with LinkProxy.profile(args.profile, hub.port, cut_every=args.cut_every, down_for=args.down_for) as proxy:
        source = f"{hub.url(proxy.port)}/cell"
        with measured(proxy) as m:
            while len(runs) < args.max_runs:
                runs.append(ours(source, "cutpull", kiosk_dir))
                r = runs[-1]
                log(f"[{hub.kind}] cut pull run {len(runs)}: ok={r.get('ok')} written={r.get('docs_written')} "
                    f"read={r.get('docs_read')} start_seq={r.get('start_seq')} error={r.get('error')}")
                if r.get("ok"):
                    break
    elapsed = time.monotonic() - started
    last = runs[-1]
    row = Row(f"pull, cut every {args.cut_every:g}s", "ours", bool(last.get("ok")), elapsed, m["delta"],
              sum(int(r.get("requests") or 0) for r in runs), sum(int(r.get("docs_written") or 0) for r in runs),
              bound, runs=len(runs))
    row.detail = {"docs_read": sum(int(r.get("docs_read") or 0) for r in runs), "total_docs": total_docs,
                  "doc_write_failures": sum(int(r.get("doc_write_failures") or 0) for r in runs),
                  "errors": [r.get("error") for r in runs if r.get("error")],
                  "start_seqs": [r.get("start_seq") for r in runs]}
    log(f"[{hub.kind}] cut pull: {len(runs)} runs, {elapsed:.1f} s, {m['delta'].as_dict()}")
    return row


def check_counts(hub: Hub, docs: list[dict], push_docs: list[dict], rows: list[Row]) -> None:
    """Every replication must have delivered everything: the hub's push databases hold every meeting."""
    with httpx.Client(base_url=f"http://{HOST}:{hub.port}", auth=hub.auth, trust_env=False, timeout=60) as http:
        for db in sorted({f"push-{row.replicator}" for row in rows if row.direction == "push"}):
            count = http.get(f"/{db}").json().get("doc_count")
            if count != len(push_docs):
                log(f"WARNING: {hub.kind} {db} holds {count} documents, expected {len(push_docs)}")
    for row in rows:
        expected = len(docs) if row.direction.startswith("pull") else len(push_docs)
        if not row.ok or row.docs != expected or row.detail.get("doc_write_failures"):
            log(f"WARNING: {row.direction} {row.replicator}: ok={row.ok}, {row.docs} of {expected} written, "
                f"{row.detail.get('error') or row.detail.get('errors')}")


# --- report -----------------------------------------------------------------------------------


def fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} KB"


def table(kind: str, rows: list[Row], args: argparse.Namespace) -> str:
    down, up, latency = PROFILES[args.profile]
    docs = dataset.cell_dataset(args.quick)
    pull_p, push_p = dataset.payload_bytes(docs), dataset.payload_bytes(dataset.push_meetings(args.push))
    lines = [f"Hub: {'pouchdb-server 4.2' if kind == 'pouchdb' else 'our server'}; link {args.profile}: "
             f"{down / 1e3:.0f} kbit/s down, {up / 1e3:.0f} kbit/s up, {latency * 1000:.0f} ms each way "
             f"(RTT {2 * latency * 1000:.0f} ms).",
             f"Pull payload: {pull_p.docs} docs, JSON {fmt_bytes(pull_p.json_bytes)} (gzip "
             f"{fmt_bytes(pull_p.json_gzip_bytes)}) + attachments {fmt_bytes(pull_p.attachment_bytes)} = "
             f"{fmt_bytes(pull_p.gzip_total)} physical; push payload: {push_p.docs} meetings, JSON "
             f"{fmt_bytes(push_p.json_bytes)} (gzip {fmt_bytes(push_p.json_gzip_bytes)}).",
             "",
             "| direction | replicator | time (s) | down | up | requests | connections | resets | runs "
             "| x PouchDB | bound (s) | x bound | round trips x RTT (s) | bytes / bandwidth (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pouch_time = {r.direction: r.seconds for r in rows if r.replicator == "pouchdb"}
    uncut = next((r for r in rows if r.direction == "pull" and r.replicator == "ours"), None)
    for r in rows:
        base = pouch_time.get(r.direction.split(",")[0])
        ratio = f"{r.seconds / base:.2f}" if base and r.replicator != "pouchdb" else ("1.00" if base else "-")
        status = "" if r.ok else " (FAILED)"
        lines.append(f"| {r.direction} | {r.replicator}{status} | {r.seconds:.1f} | {fmt_bytes(r.link.bytes_down)} "
                     f"| {fmt_bytes(r.link.bytes_up)} | {r.requests} | {r.link.connections} "
                     f"| {r.link.connections_cut} | {r.runs} | {ratio} | {r.bound:.1f} | {r.seconds / r.bound:.2f} "
                     f"| {(r.requests + r.link.connections) * 2 * latency:.1f} "
                     f"| {r.link.bytes_down * 8 / down + r.link.bytes_up * 8 / up:.1f} |")
    cut = next((r for r in rows if r.direction.startswith("pull, cut")), None)
    if cut is not None and uncut is not None:
        total = cut.link.bytes_down + cut.link.bytes_up
        clean = uncut.link.bytes_down + uncut.link.bytes_up
        lines += ["", f"Cut pull: {cut.runs} run(s), {cut.link.cuts} cuts, {cut.link.connections_cut} connections "
                  f"reset, {cut.link.refused} refused; bytes {fmt_bytes(total)} vs {fmt_bytes(clean)} uncut = "
                  f"{total / clean:.2f}x (target <= 1.2x); docs read {cut.detail.get('docs_read')} for "
                  f"{cut.detail.get('total_docs')} docs; time {cut.seconds:.1f} s vs {uncut.seconds:.1f} s uncut."]
        if cut.detail.get("errors"):
            lines.append("Failed runs: " + "; ".join(str(e) for e in cut.detail["errors"]))
    for r in rows:
        if r.detail.get("methods"):
            retried = f" ({r.detail['retried']} retried on a new connection)" if r.detail.get("retried") else ""
            lines.append(f"PouchDB {r.direction} requests{retried}: " + ", ".join(
                f"{k} {v}" for k, v in sorted(r.detail["methods"].items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


def render(path: Path) -> int:
    """Print the tables of a JSON file written by ``--json``."""
    saved = json.loads(path.read_text())
    args = argparse.Namespace(profile=saved["args"]["profile"], quick=saved["args"]["quick"] == "True",
                              push=int(saved["args"]["push"]))
    for kind in ("pouchdb", "ours"):
        if kind in saved:
            rows = [Row(**{**r, "link": LinkStats(**r["link"])}) for r in saved[kind]]
            print(table(kind, rows, args) + "\n")
    return 0


def log(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child-replicate"]:
        return child_replicate(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["3G", "2G"], default="3G")
    parser.add_argument("--quick", action="store_true", help="200 meetings, 20 articles, 2 PDFs; push 100")
    parser.add_argument("--hub", choices=["pouchdb", "ours", "both"], default="pouchdb")
    parser.add_argument("--push", type=int, help="meetings to push (default 500, 100 with --quick)")
    parser.add_argument("--cut-every", type=float, default=20.0, help="seconds between resets in the cut pull")
    parser.add_argument("--down-for", type=float, default=2.0, help="seconds new connections are refused after a cut")
    parser.add_argument("--max-runs", type=int, default=30, help="runs allowed for the cut pull to complete")
    parser.add_argument("--no-cuts", action="store_true", help="skip the cut pull")
    parser.add_argument("--ours-only", action="store_true", help="skip PouchDB's runs (quicker, no x PouchDB)")
    parser.add_argument("--existing-target", action="store_true",
                        help="push into hub databases created beforehand (else the push creates them)")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--render", type=Path, help="only print the tables of a --json file written before")
    args = parser.parse_args(argv)
    if args.render:
        return render(args.render)
    if args.push is None:
        args.push = 100 if args.quick else 500
    kinds = ["pouchdb", "ours"] if args.hub == "both" else [args.hub]
    tmp = Path(tempfile.mkdtemp(prefix="bench-links-"))
    report = [f"`.venv/bin/python bench/bench_links.py {' '.join(argv)}`".replace("  ", " "),
              f"{datetime.datetime.now().isoformat(timespec='minutes')}, {platform.node()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"Node {subprocess.run(['node', '--version'], capture_output=True, text=True, check=False).stdout.strip()}", ""]
    everything: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        for kind in kinds:
            rows = bench_hub(kind, args, tmp)
            report += [table(kind, rows, args), ""]
            everything[kind] = [{**asdict(r), "link": r.link.as_dict()} for r in rows]
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(everything, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
