"""Profile one benchmark step of OUR server in-process (cProfile), to see where its time goes.

    .venv/bin/python bench/profile_server.py --step all_docs [--docs 10000] [--top 25]

Serves the app as ``sync-server serve`` does (sync_server/api/serving.py: uvicorn in front,
the app on ``server.threads`` threads, here the least, 2; the client sends one request at a
time, so the profiler is on in one worker thread at a time) while a client thread prepares the database
with the same workload as bench/bench_server.py, then profiles only the requests
of the chosen step, including the streaming of their response bodies. Also
times the step without the profiler, to show the profiler's overhead. Only
127.0.0.1 is used; the data directory is a fresh temporary one.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server as bench  # noqa: E402
from bench_server import ROOT  # noqa: E402

from sync_server.api.serving import Serving, listen  # noqa: E402
from sync_server.app import create_app  # noqa: E402
from sync_server.settings import Settings  # noqa: E402


class Coalesced:
    """WSGI middleware (experiment): join the body's chunks into pieces of at least ``size`` bytes."""

    def __init__(self, app: Any, size: int) -> None:
        self.app, self.size = app, size

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        try:
            pending: list[bytes] = []
            length = 0
            for chunk in body:
                pending.append(chunk)
                length += len(chunk)
                if length >= self.size:
                    yield b"".join(pending)
                    pending, length = [], 0
            if pending:
                yield b"".join(pending)
        finally:
            if hasattr(body, "close"):
                body.close()


class Profiled:
    """WSGI middleware: profile the app call and the iteration of its body while ``on`` is set."""

    def __init__(self, app: Any) -> None:
        self.app, self.on, self.profile = app, False, cProfile.Profile()

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        if not self.on:
            return self.app(environ, start_response)
        self.profile.enable()
        try:
            body = self.app(environ, start_response)
        finally:
            self.profile.disable()
        return self._iterate(body)

    def _iterate(self, body: Iterable[bytes]) -> Iterable[bytes]:
        iterator = iter(body)
        try:
            while True:
                self.profile.enable()
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
                finally:
                    self.profile.disable()
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close:
                close()


def run_step(step: str, http: httpx.Client, work: bench.Workload, db_a: str, db_b: str,
             toggle: Any) -> tuple[float, int]:
    """Prepare the databases for ``step``, then run it with ``toggle(True)``; returns (seconds, requests)."""
    for db in (db_a, db_b):
        bench.check(http.put(f"/{db}"), 201)
    revs: dict[str, str] = {}

    def timed(fn: Any) -> tuple[float, int]:
        toggle(True)
        started = time.perf_counter()
        count = fn()
        seconds = time.perf_counter() - started
        toggle(False)
        return seconds, count

    def bulk_docs() -> int:
        for body in work.bulk_bodies:
            for row in bench.check(http.post(f"/{db_a}/_bulk_docs", content=body), 201).json():
                revs[row["id"]] = row["rev"]
        return len(work.bulk_bodies)

    if step == "bulk_docs":
        return timed(bulk_docs)
    bulk_docs()
    if step == "changes":
        return timed(lambda: len([bench.check(http.get(f"/{db_a}/_changes?include_docs=true"), 200)]))
    if step == "all_docs":
        return timed(lambda: len([bench.check(http.get(f"/{db_a}/_all_docs?include_docs=true"), 200)]))
    if step == "revs_diff":
        bodies = work.revs_diff_bodies(revs)
        return timed(lambda: len([bench.check(http.post(f"/{db_a}/_revs_diff", content=b), 200) for b in bodies]))

    def replicated() -> int:
        for body in work.replicated_bodies:
            bench.check(http.post(f"/{db_b}/_bulk_docs", content=body), 201)
        return len(work.replicated_bodies)

    if step == "bulk_docs_replicated":
        return timed(replicated)
    replicated()
    if step == "bulk_get":
        return timed(lambda: len([bench.check(http.post(f"/{db_b}/_bulk_get?revs=true", content=b), 200)
                                  for b in work.bulk_get_bodies]))
    raise SystemExit(f"unknown step {step}")


def _name(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    if filename == "~":
        return func
    short = filename.split("/site-packages/")[-1].split("/python3.11/")[-1].replace(str(ROOT) + "/", "")
    return f"{short}:{line}({func})"


def print_table(stats: pstats.Stats, total: float, top: int) -> None:
    """The top functions by own time and by cumulative time, as percentages of the profiled total."""
    rows = stats.stats  # type: ignore[attr-defined]
    for title, index in (("own time (tottime)", 2), ("cumulative time (cumtime)", 3)):
        print(f"top {top} by {title}:")
        print(f"  {'%':>6} {'seconds':>8} {'calls':>8}  function")
        for key, value in sorted(rows.items(), key=lambda kv: kv[1][index], reverse=True)[:top]:
            print(f"  {value[index] / total:6.1%} {value[index]:8.3f} {value[1]:8d}  {_name(key)}")
        print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", required=True, choices=[s for s, _ in bench.STEPS])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--revs-diff-batch", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full",
                        help="storage.synchronous of the server (full is the default: an fsync per commit)")
    parser.add_argument("--coalesce", type=int, default=0, metavar="BYTES",
                        help="experiment: hand the server the response in pieces of at least BYTES (0: as the app yields)")
    parser.add_argument("--save", type=Path, help="write the raw pstats file here")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    settings = Settings().replace("server", data_dir=str(data), admin=":".join(bench.ADMIN), threads=2).replace(
        "storage", synchronous=args.synchronous)
    app = create_app(settings)
    profiled = Profiled(Coalesced(app, args.coalesce) if args.coalesce else app)
    serving = Serving(profiled, settings)
    sock = listen(bench.HOST, 0)
    base = f"http://{bench.HOST}:{sock.getsockname()[1]}"
    serving.add(sock)
    done: dict[str, Any] = {}

    def drive() -> None:
        """The client, on a thread of its own: the server's event loop has the main thread (its signals)."""
        try:
            work = bench.Workload.build(list(bench.make_docs(args.docs)), args.batch, args.revs_diff_batch)
            with bench.client(base) as http:
                done["plain"], _ = run_step(args.step, http, work, "plain-a", "plain-b", lambda on: None)

                def toggle(on: bool) -> None:
                    profiled.on = on

                done["profiled"], done["requests"] = run_step(args.step, http, work, "prof-a", "prof-b", toggle)
        except BaseException as exc:  # noqa: BLE001 - shown after the server stopped
            done["error"] = exc
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # stops serving.run()

    threading.Thread(target=drive, daemon=True).start()
    try:
        serving.run()
        if "error" in done:
            raise done["error"]
        plain, profiled_s, requests = done["plain"], done["profiled"], done["requests"]
        print(f"step {args.step}: {args.docs} docs, {requests} request(s); "
              f"{plain:.3f} s without the profiler, {profiled_s:.3f} s with it")
        stats = pstats.Stats(profiled.profile)
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"profiled time inside the app (worker thread): {total:.3f} s "
              f"({total / profiled_s:.0%} of the step's wall time with the profiler; the rest is the server "
              "moving bytes, the client and the profiler)\n")
        print_table(stats, total, args.top)
        if args.save:
            stats.dump_stats(str(args.save))
    finally:
        serving.bridge.close()
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
