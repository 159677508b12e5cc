"""Where does OUR server's resident memory go while it serves a big database?

    .venv/bin/python bench/memory_probe.py [--big 100000] [--tracemalloc]

Fills one data directory with ``--big`` documents (the same documents as
bench/bench_server.py's memory test), then for each scenario starts a FRESH server
process on it (so VmHWM, the lifetime peak, belongs to that scenario alone), runs
the scenario, and reports VmRSS before, VmHWM and VmRSS after, SQLite's own heap
(``sqlite3_memory_used``/``highwater`` read with ctypes inside the server), the
number of open SQLite reader connections and of threads.

The server is our app run by this file's ``serve`` sub-command: the unchanged
``create_app`` served as ``sync-server serve`` serves it (uvicorn in front, the app on
``server.threads`` threads: sync_server/api/serving.py), with a ``GET /_probe`` endpoint added by a WSGI
wrapper (and, with ``--tracemalloc``, the Python allocation sites alive when the
largest response chunk is produced). sync_server/ itself is not modified.
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server as bench  # noqa: E402

DB = "bench-big"


# --- the server side (run as a subprocess) ---------------------------------------------------

class Probe:
    """WSGI wrapper adding ``GET /_probe``; snapshots Python allocations at the largest chunk."""

    def __init__(self, app: Any, trace: bool) -> None:
        self.app, self.trace = app, trace
        self.biggest = 0
        self.top: list[str] = []
        try:
            self.lib = ctypes.CDLL("libsqlite3.so.0")
            self.lib.sqlite3_memory_used.restype = ctypes.c_int64
            self.lib.sqlite3_memory_highwater.restype = ctypes.c_int64
            self.lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
        except OSError:
            self.lib = None

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/_probe":
            return self.probe(start_response)
        body = self.app(environ, start_response)
        return self.watch(body) if self.trace else body

    def watch(self, body: Any) -> Any:
        try:
            for chunk in body:
                if len(chunk) > self.biggest:
                    self.biggest = len(chunk)
                    snapshot = tracemalloc.take_snapshot()
                    current, peak = tracemalloc.get_traced_memory()
                    self.top = [f"traced now {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB, "
                                f"at a {len(chunk) / 1e6:.1f} MB chunk"]
                    self.top += [str(s) for s in snapshot.statistics("lineno")[:12]]
                yield chunk
        finally:
            if hasattr(body, "close"):
                body.close()

    def probe(self, start_response: Any) -> list[bytes]:
        store = self.app.extensions["sync_server"]
        readers = sum(db._readers.open_count for db in store._open.values())  # noqa: SLF001 (read-only look)
        out = {"threads": threading.active_count(), "reader_connections": readers, "top": self.top}
        if self.lib is not None:
            out["sqlite_used_mb"] = self.lib.sqlite3_memory_used() / 1e6
            out["sqlite_highwater_mb"] = self.lib.sqlite3_memory_highwater(0) / 1e6
        if tracemalloc.is_tracing():
            out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(out).encode()]


def serve(args: argparse.Namespace) -> None:
    from sync_server.api.serving import Serving, listen
    from sync_server.app import create_app
    from sync_server.settings import Settings

    if args.tracemalloc:
        tracemalloc.start()
    settings = Settings().replace("server", data_dir=args.data_dir, admin=":".join(bench.ADMIN), threads=args.threads)
    app = create_app(settings)
    serving = Serving(Probe(app, args.tracemalloc), settings)
    serving.add(listen(bench.HOST, args.port))
    print(f"listening on {args.port}", flush=True)
    serving.run()


# --- the driver -----------------------------------------------------------------------------------

def start(workdir: Path, data: Path, tag: str, trace: bool = False, threads: int = 100,
          env: dict[str, str] | None = None) -> bench.ServerProcess:
    port = bench.free_port()
    args = [sys.executable, __file__, "serve", "--data-dir", str(data), "--port", str(port), "--threads", str(threads)]
    if trace:
        args.append("--tracemalloc")
    server = bench.ServerProcess(f"ours-{tag}", args, bench.ROOT, workdir / f"{tag}.log", "listening on", port)
    if env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return server.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return server.start()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        parser = argparse.ArgumentParser()
        parser.add_argument("serve")
        parser.add_argument("--data-dir", required=True)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--threads", type=int, default=100)
        parser.add_argument("--tracemalloc", action="store_true")
        serve(parser.parse_args())
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--tracemalloc", action="store_true", help="also find the Python allocation sites")
    parser.add_argument("--only", help="comma-separated scenario names")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    data = workdir / "data"
    data.mkdir()
    servers: list[bench.ServerProcess] = []
    try:
        server = start(workdir, data, "fill")
        servers.append(server)
        with bench.client(server.base) as http:
            written, seconds = bench.fill(http, DB, args.big, 1000, float("inf"))
            ids = [r["id"] for r in bench.check(http.get(f"/{DB}/_all_docs"), 200).json()["rows"]]
        server.stop()
        size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
        print(f"filled {written} documents in {seconds:.1f} s; data dir {size / 1e6:.1f} MB")

        def phones(n: int) -> list[Any]:
            return [bench.phone_job(DB, ids, i) for i in range(n)]

        def full(path: str) -> Any:
            return bench.full_read(DB, path)

        concurrently = bench.concurrently

        scenarios: dict[str, tuple[Any, dict[str, Any]]] = {
            "idle (open db)": (lambda base: 0, {}),
            "_changes, no docs": (lambda base: concurrently(base, [full("_changes")]), {}),
            "_changes?include_docs": (lambda base: concurrently(base, [full("_changes?include_docs=true")]), {}),
            "_all_docs?include_docs": (lambda base: concurrently(base, [full("_all_docs?include_docs=true")]), {}),
            "2 concurrent _changes?include_docs": (
                lambda base: concurrently(base, [full("_changes?include_docs=true")] * 2), {}),
            "4 phones (pages, GETs, _bulk_get)": (lambda base: concurrently(base, phones(4)), {}),
            "full burst (bench_server)": (lambda base: bench.burst(base, DB, ids, 8)[1], {}),
            "full burst, threads=8": (lambda base: bench.burst(base, DB, ids, 8)[1], {"threads": 8}),
            "full burst, MALLOC_ARENA_MAX=2": (lambda base: bench.burst(base, DB, ids, 8)[1],
                                               {"env": {"MALLOC_ARENA_MAX": "2"}}),
        }
        wanted = set(args.only.split(",")) if args.only else None
        print("\n| scenario | VmRSS before (MB) | VmHWM (MB) | VmRSS after (MB) | SQLite heap now / highwater (MB) "
              "| reader connections | threads | seconds |")
        print("|" + "---|" * 8)
        for name, (scenario, options) in scenarios.items():
            if wanted and name not in wanted:
                continue
            server = start(workdir, data, "probe", threads=options.get("threads", 100), env=options.get("env"))
            servers.append(server)
            with bench.client(server.base) as http:
                bench.check(http.get(f"/{DB}"), 200)
            before = bench._status(server.pid)  # noqa: SLF001
            started = time.perf_counter()
            scenario(server.base)
            seconds = time.perf_counter() - started
            after = bench._status(server.pid)  # noqa: SLF001
            probe = httpx.get(server.base + "/_probe", trust_env=False, timeout=30).json()
            server.stop()
            print(f"| {name} | {before['VmRSS'] / 1024:.1f} | {after['VmHWM'] / 1024:.1f} | {after['VmRSS'] / 1024:.1f} "
                  f"| {probe.get('sqlite_used_mb', 0):.1f} / {probe.get('sqlite_highwater_mb', 0):.1f} "
                  f"| {probe['reader_connections']} | {probe['threads']} | {seconds:.1f} |", flush=True)
        if args.tracemalloc:
            for path in ("_changes?include_docs=true", "_all_docs?include_docs=true"):
                server = start(workdir, data, "trace", trace=True)
                servers.append(server)
                concurrently(server.base, [full(path)])
                probe = httpx.get(server.base + "/_probe", trust_env=False, timeout=30).json()
                server.stop()
                print(f"\ntracemalloc, GET /{DB}/{path}: python peak {probe.get('traced_peak_mb', 0):.1f} MB")
                for line in probe["top"]:
                    print("   ", line)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0



if __name__ == "__main__":
    sys.exit(main())
