"""Benchmark our CouchDB-compatible server against pouchdb-server, in one run.

    .venv/bin/python bench/bench_server.py [--docs 10000] [--big 100000] [--quick]

Starts both servers as subprocesses on free loopback ports with fresh temporary
data directories, runs the same replication-shaped workload against each with one
keep-alive ``httpx.Client`` per server (identical headers, ``Accept-Encoding:
identity``), prints the median of the repetitions, then fills each server with a
big database and samples its resident memory while it serves full reads and a
burst of concurrent reads. See bench/README.md for what each step measures.

Both servers are stopped by process id at the end, also on error or Ctrl-C.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from procs import stop_group

ROOT = Path(__file__).resolve().parent.parent
POUCHDB_SERVER_JS = ROOT / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
HOST = "127.0.0.1"
ADMIN = ("admin", "secret")
START_TIMEOUT = 60.0  # seconds a server may take to print its ready line and answer GET /
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
REQUEST_TIMEOUT = 900.0  # one request (a full 100k-document read on a noisy machine)
SEED = 20240315

Doc = dict[str, Any]

# --- deterministic, realistic documents ------------------------------------------------

# Meeting text shared with the link benchmark's data set (bench/cell_dataset.py).
from cell_dataset import AGENDA, PLACES, TITLES  # noqa: E402

NOTES = ["Đồng chí phát biểu ý kiến về công tác phát triển đảng viên mới.",
         "Đề nghị chi ủy xem xét hỗ trợ gia đình có hoàn cảnh khó khăn.",
         "Đã nộp đảng phí đầy đủ, đúng hạn.",
         "Nhận nhiệm vụ vận động bà con giữ gìn vệ sinh môi trường khu phố.",
         "Báo cáo tình hình an ninh trật tự tại tổ dân phố.",
         "Xin phép về sớm do có việc riêng."]


def make_docs(count: int, seed: int = SEED) -> Iterator[Doc]:
    """``count`` documents valid under schemas/: a meeting, then its ~9 attendance records, and so on.

    Valid documents matter: our server checks every typed write against its schema,
    and that cost belongs in the measurement.
    """
    rng = random.Random(seed)
    made = 0
    while made < count:
        day = datetime.date(2025, 1, 1) + datetime.timedelta(days=rng.randrange(700))
        cell = f"TQ.NH.X{rng.randrange(1, 20):02d}.C{rng.randrange(1, 60):02d}"
        meeting_id = f"meeting:{cell}:{day.isoformat()}-{rng.getrandbits(48):012x}"
        meeting = {"_id": meeting_id, "type": "meeting", "cell": cell, "kind": "regular",
                   "scheduled": f"{day.isoformat()}T19:30:00+07:00", "place": rng.choice(PLACES),
                   "agenda": [rng.choice(TITLES).format(m=day.month, y=day.year)] + rng.sample(AGENDA, 3),
                   "status": "held", "held_at": f"{day.isoformat()}T19:40:00+07:00"}
        while len(encode(meeting)) < rng.randint(300, 500):
            meeting["agenda"].append(rng.choice(NOTES)[:300])
        yield meeting
        made += 1
        for number in rng.sample(range(100000), min(9, count - made)):  # distinct members per meeting
            member_no = f"{number:06d}"
            status = rng.choices(["present", "excused", "absent"], [8, 2, 1])[0]
            doc = {"_id": f"attendance:{meeting_id}:{member_no}", "type": "attendance", "cell": cell,
                   "meeting": meeting_id, "member": f"member:{cell}:{member_no}", "status": status}
            if status == "present":
                doc["checked_in_at"] = f"{day.isoformat()}T19:{rng.randrange(60):02d}:{rng.randrange(60):02d}+07:00"
            yield doc
            made += 1


def rev_hash(label: str) -> str:
    return hashlib.md5(label.encode()).hexdigest()


def replicated(doc: Doc, index: int) -> Doc:
    """The document as a replicator pushes it: ``_rev`` of generation 1-4 with ``_revisions``."""
    generation = 1 + index % 4
    ids = [rev_hash(f"{doc['_id']}/{g}") for g in range(generation, 0, -1)]
    return {**doc, "_rev": f"{generation}-{ids[0]}", "_revisions": {"start": generation, "ids": ids}}


def encode(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


# --- processes ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One server subprocess in its own session (process group = its pid)."""

    label: str
    args: list[str]
    cwd: Path
    log: Path
    ready_text: str
    port: int
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ServerProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=None if self.env is None else {**os.environ, **self.env})
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if self.ready_text in self.log.read_text(errors="replace"):
                try:
                    if httpx.get(self.base + "/", timeout=2.0, trust_env=False, auth=ADMIN).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} not ready in {START_TIMEOUT} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM the process group led by our pid, SIGKILL if it lingers, then reap."""
        stop_group(self.proc, STOP_TIMEOUT)

    def exe(self) -> str:
        try:
            return os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return "?"


# Where the sync_server package that "ours" runs comes from (--ours-src; default: this checkout).
OURS_SRC = ROOT
# With --encrypted, ours keeps bodies and attachments encrypted at rest (storage.encryption_key).
ENCRYPTED = False


def ours(workdir: Path, tag: str = "") -> ServerProcess:
    """Our server as ``python -m sync_server serve``: the pid is the Python process itself."""
    data = workdir / f"ours-data{tag}"
    data.mkdir()
    port = free_port()
    args = [sys.executable, "-m", "sync_server", "serve", "--data-dir", str(data), "--host", HOST,
            "--port", str(port), "--admin", ":".join(ADMIN)]
    env = None
    if ENCRYPTED:
        config = workdir / f"ours-config{tag}.yaml"
        config.write_text("storage:\n  encryption_key: env:BENCH_PASSPHRASE\n")
        args += ["--config", str(config)]
        env = {"BENCH_PASSPHRASE": "bench passphrase"}
    # cwd is the source dir: ``-m`` puts it first on sys.path, ahead of the editable install.
    return ServerProcess("ours", args, OURS_SRC, workdir / f"ours{tag}.log", "listening on", port, env)


def pouchdb_server(workdir: Path, tag: str = "") -> ServerProcess:
    """pouchdb-server run by node directly (no npm/.bin wrapper), so its pid is the node process."""
    home = workdir / f"pouchdb-server{tag}"
    (home / "dbs").mkdir(parents=True)
    # The same admin as ours, so both get the same Authorization header (pouchdb-server
    # hashes it into config.json at start).
    (home / "config.json").write_text(json.dumps({"admins": {ADMIN[0]: ADMIN[1]}}))
    port = free_port()
    args = ["node", str(POUCHDB_SERVER_JS), "--port", str(port), "--host", HOST, "--dir", str(home / "dbs"),
            "--config", str(home / "config.json"), "--no-color"]
    # cwd is its own dir: pouchdb-server writes log.txt into its working directory.
    return ServerProcess("pouchdb-server", args, home, workdir / f"pouchdb-server{tag}.log",
                         "pouchdb-server has started", port)


# --- memory sampling -----------------------------------------------------------------------

def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of one process, in kB (empty when it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{current}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


class MemorySampler:
    """Samples VmRSS of a pid (and of any children) every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = 0
        self.peak_tree_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        children: list[int] = []
        tick = 0
        while not self._stop.is_set():
            if tick % 50 == 0:
                children = _descendants(self.pid)
            tick += 1
            rss = _status(self.pid).get("VmRSS", 0)
            tree = rss + sum(_status(c).get("VmRSS", 0) for c in children)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_tree_kb = max(self.peak_tree_kb, tree)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


# --- HTTP ----------------------------------------------------------------------------------

def headers() -> dict[str, str]:
    token = base64.b64encode(":".join(ADMIN).encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": "application/json",
            "Accept-Encoding": "identity", "Content-Type": "application/json", "User-Agent": "bench/1"}


def client(base: str) -> httpx.Client:
    """One keep-alive client; exactly the same headers for every server."""
    return httpx.Client(base_url=base, headers=headers(), timeout=REQUEST_TIMEOUT, trust_env=False,
                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))


class Failure(Exception):
    """A server answered wrongly (status or content)."""


def check(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise Failure(f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
                      f"{response.text[:300]}")
    return response


@dataclass
class Measure:
    """One measured step on one server: seconds, bytes sent and received, items handled."""

    seconds: float = 0.0
    sent: int = 0
    received: int = 0
    requests: int = 0

    def post(self, http: httpx.Client, path: str, body: bytes, *statuses: int) -> httpx.Response:
        started = time.perf_counter()
        response = http.post(path, content=body)
        self.seconds += time.perf_counter() - started
        self._count(response, len(body))
        return check(response, *statuses)

    def get(self, http: httpx.Client, path: str) -> httpx.Response:
        started = time.perf_counter()
        response = http.get(path)
        self.seconds += time.perf_counter() - started
        self._count(response, 0)
        return check(response, 200)

    def _count(self, response: httpx.Response, sent: int) -> None:
        self.sent += sent
        self.received += response.num_bytes_downloaded
        self.requests += 1


# --- the workload --------------------------------------------------------------------------

@dataclass
class Workload:
    """Request bodies prepared (serialized) before anything is timed."""

    docs: list[Doc]
    batch: int
    revs_diff_batch: int
    bulk_bodies: list[bytes] = field(default_factory=list)
    replicated_bodies: list[bytes] = field(default_factory=list)
    revs_diff_asked: dict[str, list[str]] = field(default_factory=dict)
    expected_missing: dict[str, set[str]] = field(default_factory=dict)
    existing_revs: int = 0
    bulk_get_bodies: list[bytes] = field(default_factory=list)
    replicated_revs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, docs: list[Doc], batch: int, revs_diff_batch: int) -> Workload:
        work = cls(docs, batch, revs_diff_batch)
        work.bulk_bodies = [encode({"docs": docs[i:i + batch]}) for i in range(0, len(docs), batch)]
        pushed = [replicated(doc, i) for i, doc in enumerate(docs)]
        work.replicated_revs = {d["_id"]: d["_rev"] for d in pushed}
        work.replicated_bodies = [encode({"docs": pushed[i:i + batch], "new_edits": False})
                                  for i in range(0, len(pushed), batch)]
        asked = [{"id": d["_id"], "rev": d["_rev"]} for d in pushed]
        work.bulk_get_bodies = [encode({"docs": asked[i:i + batch]}) for i in range(0, len(asked), batch)]
        return work

    def revs_diff_bodies(self, revs: dict[str, str]) -> list[bytes]:
        """The existing leaf of every document, plus 5% newer revs and 5% unknown documents (missing)."""
        rng = random.Random(SEED + 1)
        asked: dict[str, list[str]] = {}
        missing: dict[str, set[str]] = {}
        ids = list(revs)
        newer = set(rng.sample(ids, len(ids) // 20))
        for doc_id in ids:
            asked[doc_id] = [revs[doc_id]]
            if doc_id in newer:
                extra = f"2-{rev_hash(doc_id + '/newer')}"
                asked[doc_id].append(extra)
                missing[doc_id] = {extra}
        for i in range(len(ids) // 20):
            doc_id = f"attendance:unknown:{i:06d}"
            asked[doc_id] = [f"1-{rev_hash(doc_id)}"]
            missing[doc_id] = set(asked[doc_id])
        keys = list(asked)
        rng.shuffle(keys)  # a replicator's batch follows _changes order, not id order
        self.revs_diff_asked, self.expected_missing = asked, missing
        self.existing_revs = len(ids)
        step = self.revs_diff_batch or len(keys)
        return [encode({k: asked[k] for k in keys[i:i + step]}) for i in range(0, len(keys), step)]


STEPS = [
    ("bulk_docs", "_bulk_docs, new_edits default, batches of {batch}"),
    ("changes", "_changes?include_docs=true, one request"),
    ("revs_diff", "_revs_diff, batches of {rdb} ids"),
    ("all_docs", "_all_docs?include_docs=true, one request"),
    ("bulk_docs_replicated", "_bulk_docs new_edits:false + _revisions, batches of {batch}"),
    ("bulk_get", "_bulk_get?revs=true, batches of {batch}"),
]


def run_steps(http: httpx.Client, work: Workload, db_a: str, db_b: str) -> dict[str, tuple[Measure, int]]:
    """All steps on one server, on two fresh databases. Returns {step: (measure, items)}."""
    n = len(work.docs)
    out: dict[str, tuple[Measure, int]] = {}
    for db in (db_a, db_b):
        check(http.put(f"/{db}"), 201)

    def warm(db: str) -> None:  # untimed: makes sure the keep-alive connection is open and live
        check(http.get(f"/{db}"), 200)

    # 1. interactive writes
    warm(db_a)
    m = Measure()
    revs: dict[str, str] = {}
    for body in work.bulk_bodies:
        for row in m.post(http, f"/{db_a}/_bulk_docs", body, 201).json():
            if not row.get("ok") or "rev" not in row:
                raise Failure(f"_bulk_docs row failed: {row}")
            revs[row["id"]] = row["rev"]
    if len(revs) != n:
        raise Failure(f"_bulk_docs wrote {len(revs)} documents, expected {n}")
    out["bulk_docs"] = (m, n)

    # 2. full changes feed with documents
    warm(db_a)
    m = Measure()
    results = m.get(http, f"/{db_a}/_changes?include_docs=true").json()["results"]
    if len(results) != n or any("doc" not in r for r in results):
        raise Failure(f"_changes returned {len(results)} rows, expected {n} with docs")
    if {r["id"]: r["changes"][0]["rev"] for r in results} != revs:
        raise Failure("_changes revisions differ from what _bulk_docs answered")
    out["changes"] = (m, n)
    del results

    # 3. revs_diff as a replicator pushing to this database asks it
    bodies = work.revs_diff_bodies(revs)
    warm(db_a)
    m = Measure()
    got: dict[str, set[str]] = {}
    for body in bodies:
        for doc_id, entry in m.post(http, f"/{db_a}/_revs_diff", body, 200).json().items():
            got[doc_id] = set(entry["missing"])
    if got != work.expected_missing:
        wrong = sorted(set(got) ^ set(work.expected_missing))[:5]
        raise Failure(f"_revs_diff missing set is wrong ({len(got)} vs {len(work.expected_missing)} ids; e.g. {wrong})")
    out["revs_diff"] = (m, sum(len(v) for v in work.revs_diff_asked.values()))

    # 4. all_docs with documents
    warm(db_a)
    m = Measure()
    rows = m.get(http, f"/{db_a}/_all_docs?include_docs=true").json()["rows"]
    if len(rows) != n or any(r.get("doc") is None for r in rows):
        raise Failure(f"_all_docs returned {len(rows)} rows, expected {n} with docs")
    out["all_docs"] = (m, n)
    del rows

    # 5. replicated writes (what a pushing replicator sends)
    warm(db_b)
    m = Measure()
    for body in work.replicated_bodies:
        errors = m.post(http, f"/{db_b}/_bulk_docs", body, 201).json()
        if errors:
            raise Failure(f"_bulk_docs new_edits:false answered errors: {errors[:3]}")
    out["bulk_docs_replicated"] = (m, n)

    # 6. bulk_get of every replicated revision, with history (what a pulling replicator asks)
    warm(db_b)
    m = Measure()
    fetched = 0
    for body in work.bulk_get_bodies:
        for result in m.post(http, f"/{db_b}/_bulk_get?revs=true", body, 200).json()["results"]:
            doc = result["docs"][0].get("ok")
            if doc is None or doc["_rev"] != work.replicated_revs[result["id"]] or "_revisions" not in doc:
                raise Failure(f"_bulk_get result is wrong: {json.dumps(result)[:300]}")
            fetched += 1
    if fetched != n:
        raise Failure(f"_bulk_get returned {fetched} documents, expected {n}")
    out["bulk_get"] = (m, n)

    for db in (db_a, db_b):
        check(http.delete(f"/{db}"), 200)
    return out


# --- the memory phase ----------------------------------------------------------------------

def fill(http: httpx.Client, db: str, count: int, batch: int, budget: float) -> tuple[int, float]:
    """Write ``count`` documents in batches; stop early once ``budget`` seconds have been spent."""
    check(http.put(f"/{db}"), 201)
    written, spent = 0, 0.0
    docs = make_docs(count, SEED + 7)
    while written < count:
        chunk = [next(docs) for _ in range(min(batch, count - written))]
        body = encode({"docs": chunk})
        started = time.perf_counter()
        rows = check(http.post(f"/{db}/_bulk_docs", content=body), 201).json()
        spent += time.perf_counter() - started
        if not all(r.get("ok") for r in rows):
            raise Failure(f"fill: _bulk_docs errors: {[r for r in rows if not r.get('ok')][:3]}")
        written += len(chunk)
        if spent > budget:
            break
    return written, spent


def phone_job(db: str, ids: list[str], seed: int) -> Callable[[httpx.Client], int]:
    """A phone syncing bits: 10 x (a page of 500 changes with docs, 10 single GETs, a _bulk_get of 100)."""
    def run(http: httpx.Client) -> int:
        rng, size = random.Random(seed), 0
        for _ in range(10):
            since = rng.randrange(len(ids))
            size += len(check(http.get(f"/{db}/_changes?include_docs=true&limit=500&since={since}"), 200).content)
            for doc_id in rng.sample(ids, 10):
                size += len(check(http.get(f"/{db}/{quote(doc_id, safe='')}"), 200).content)
            asked = [{"id": i} for i in rng.sample(ids, 100)]
            size += len(check(http.post(f"/{db}/_bulk_get?revs=true", content=encode({"docs": asked})), 200).content)
        return size
    return run


def full_read(db: str, path: str) -> Callable[[httpx.Client], int]:
    """One full read (e.g. a kiosk's initial sync) of ``/{db}/{path}``."""
    def run(http: httpx.Client) -> int:
        return len(check(http.get(f"/{db}/{path}"), 200).content)
    return run


def concurrently(base: str, jobs: list[Callable[[httpx.Client], int]]) -> int:
    """Run each job in its own thread with its own keep-alive client; total bytes received."""
    def run(job: Callable[[httpx.Client], int]) -> int:
        with client(base) as http:
            return job(http)

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        return sum(pool.map(run, jobs))


def burst(base: str, db: str, ids: list[str], clients: int) -> tuple[float, int]:
    """``clients`` concurrent clients: two full _changes?include_docs, two full _all_docs?include_docs,
    and the rest phones (see phone_job). Returns (seconds, bytes received)."""
    jobs = [full_read(db, "_changes?include_docs=true")] * 2 + [full_read(db, "_all_docs?include_docs=true")] * 2
    jobs += [phone_job(db, ids, i) for i in range(max(clients - len(jobs), 0))]
    started = time.perf_counter()
    total = concurrently(base, jobs)
    return time.perf_counter() - started, total


def memory_phase(server: ServerProcess, count: int, batch: int, budget: float, clients: int) -> dict[str, Any]:
    db = "bench-big"
    report: dict[str, Any] = {"pid": server.pid, "exe": server.exe(), "cmdline":
                              Path(f"/proc/{server.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]}
    report["rss_start_mb"] = _status(server.pid).get("VmRSS", 0) / 1024
    with client(server.base) as http:
        with MemorySampler(server.pid) as sampler:
            written, spent = fill(http, db, count, batch, budget)
        report.update(filled=written, fill_s=spent, fill_peak_mb=sampler.peak_rss_kb / 1024)
        report["rss_after_fill_mb"] = _status(server.pid).get("VmRSS", 0) / 1024
        if written < count:
            report["note"] = f"fill stopped after {written} documents: {budget:.0f} s budget spent"
        phases = {}
        check(http.get(f"/{db}"), 200)
        before = {"changes": _status(server.pid).get("VmRSS", 0)}
        with MemorySampler(server.pid) as sampler:
            started = time.perf_counter()
            response = check(http.get(f"/{db}/_changes?include_docs=true"), 200)
            seconds = time.perf_counter() - started
        rows = response.json()["results"]
        if len(rows) != written:
            raise Failure(f"big _changes returned {len(rows)} rows, expected {written}")
        ids = [r["id"] for r in rows]
        del rows
        phases["changes"] = (seconds, len(response.content), sampler.peak_rss_kb, sampler.peak_tree_kb)
        del response
        check(http.get(f"/{db}"), 200)
        before["all_docs"] = _status(server.pid).get("VmRSS", 0)
        with MemorySampler(server.pid) as sampler:
            started = time.perf_counter()
            response = check(http.get(f"/{db}/_all_docs?include_docs=true"), 200)
            seconds = time.perf_counter() - started
        if len(response.json()["rows"]) != written:
            raise Failure("big _all_docs row count is wrong")
        phases["all_docs"] = (seconds, len(response.content), sampler.peak_rss_kb, sampler.peak_tree_kb)
        del response
    before["burst"] = _status(server.pid).get("VmRSS", 0)
    with MemorySampler(server.pid) as sampler:
        seconds, size = burst(server.base, db, ids, clients)
    phases["burst"] = (seconds, size, sampler.peak_rss_kb, sampler.peak_tree_kb)
    status = _status(server.pid)
    report["phases"] = {k: {"seconds": v[0], "bytes": v[1], "rss_before_mb": before[k] / 1024,
                            "peak_rss_mb": v[2] / 1024, "peak_tree_mb": v[3] / 1024} for k, v in phases.items()}
    report["rss_end_mb"] = status.get("VmRSS", 0) / 1024
    report["vmhwm_mb"] = status.get("VmHWM", 0) / 1024
    report["peak_sampled_mb"] = max(p["peak_rss_mb"] for p in report["phases"].values())
    return report


# --- reporting -----------------------------------------------------------------------------

def fmt_rate(items: int, seconds: float) -> str:
    return f"{items / seconds:,.0f}" if seconds > 0 else "-"


def table(results: dict[str, dict[str, list[tuple[Measure, int]]]], errors: dict[str, list[str]],
          args: argparse.Namespace) -> str:
    head = ("| step | what | ours (s) | pouchdb-server (s) | ratio theirs/ours | ours items/s | theirs items/s "
            "| ours MB sent/recv | theirs MB sent/recv |")
    lines = [head, "|" + "---|" * 9]
    for step, what in STEPS:
        cells = [step, what.format(batch=args.batch, rdb=args.revs_diff_batch or "all")]
        med: dict[str, float | None] = {}
        extra: dict[str, tuple[str, str]] = {}
        for side in ("ours", "pouchdb-server"):
            runs = results[side].get(step, [])
            if not runs:
                med[side] = None
                extra[side] = ("ERROR" if errors[side] else "-", "-")
                continue
            seconds = statistics.median(m.seconds for m, _ in runs)
            items = runs[0][1]
            med[side] = seconds
            m0 = runs[0][0]
            extra[side] = (fmt_rate(items, seconds), f"{m0.sent / 1e6:.2f} / {m0.received / 1e6:.2f}")
        ours_s, theirs_s = med["ours"], med["pouchdb-server"]
        cells += [f"{ours_s:.3f}" if ours_s is not None else "ERROR",
                  f"{theirs_s:.3f}" if theirs_s is not None else "ERROR",
                  f"{theirs_s / ours_s:.2f}" if ours_s and theirs_s else "-",
                  extra["ours"][0], extra["pouchdb-server"][0], extra["ours"][1], extra["pouchdb-server"][1]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(reports: dict[str, dict[str, Any]]) -> str:
    lines = ["| server | docs filled | fill (s) | RSS after fill (MB) | _changes: RSS before -> peak (MB) "
             "| _all_docs: before -> peak (MB) | burst: before -> peak (MB) | VmHWM at end (MB) |", "|" + "---|" * 8]
    for side, rep in reports.items():
        if "error" in rep:
            lines.append(f"| {side} | ERROR: {rep['error'][:150]} |" + " |" * 6)
            continue
        ph = rep["phases"]
        lines.append(f"| {side} | {rep['filled']:,} | {rep['fill_s']:.1f} | {rep['rss_after_fill_mb']:.1f} "
                     + "".join(f"| {ph[k]['rss_before_mb']:.0f} -> {ph[k]['peak_rss_mb']:.0f} ({ph[k]['seconds']:.1f} s) "
                               for k in ("changes", "all_docs", "burst"))
                     + f"| {rep['vmhwm_mb']:.1f} |")
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents per measured run")
    parser.add_argument("--big", type=int, default=100_000, help="documents in the memory test (0: skip it)")
    parser.add_argument("--quick", action="store_true", help="one repetition instead of three")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3, 1 with --quick)")
    parser.add_argument("--batch", type=int, default=100, help="documents per _bulk_docs/_bulk_get request")
    parser.add_argument("--revs-diff-batch", type=int, default=1000,
                        help="document ids per _revs_diff request (0: one request)")
    parser.add_argument("--big-batch", type=int, default=1000, help="documents per _bulk_docs in the memory fill")
    parser.add_argument("--pouchdb-fill-budget", type=float, default=900.0,
                        help="seconds pouchdb-server may spend on the big fill before it is cut short")
    parser.add_argument("--burst-clients", type=int, default=8, help="concurrent clients in the read burst")
    parser.add_argument("--ours-src", type=Path, default=ROOT,
                        help="directory holding the sync_server package to run (e.g. a `git archive` of a commit)")
    parser.add_argument("--encrypted", action="store_true", help="run ours with encryption at rest")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    global OURS_SRC, ENCRYPTED
    OURS_SRC = args.ours_src.resolve()
    ENCRYPTED = args.encrypted

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    workdir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    servers = [ours(workdir), pouchdb_server(workdir)]
    print(f"bench: {datetime.datetime.now().isoformat(timespec='seconds')}  {platform.platform()}  "
          f"cpus={os.cpu_count()}  python {platform.python_version()}  node {_node_version()}", flush=True)
    print(f"bench: docs={args.docs} reps={reps} batch={args.batch} revs_diff_batch={args.revs_diff_batch or 'all'} "
          f"big={args.big} workdir={workdir}", flush=True)
    print(f"bench: ours runs sync_server from {OURS_SRC}{_git_describe(OURS_SRC)}"
          f"{' with encryption at rest' if ENCRYPTED else ''}", flush=True)
    try:
        for server in servers:
            server.start()
            print(f"bench: {server.label} pid {server.pid} ({server.exe()}) on {server.base}", flush=True)
        docs = list(make_docs(args.docs))
        sizes = sorted(len(encode(d)) for d in docs)
        print(f"bench: {len(docs)} documents, JSON size min/median/max "
              f"{sizes[0]}/{sizes[len(sizes) // 2]}/{sizes[-1]} bytes", flush=True)
        work = Workload.build(docs, args.batch, args.revs_diff_batch)
        results: dict[str, dict[str, list[tuple[Measure, int]]]] = {s.label: {} for s in servers}
        errors: dict[str, list[str]] = {s.label: [] for s in servers}
        for rep in range(reps):
            order = servers if rep % 2 == 0 else servers[::-1]  # alternate who goes first
            for server in order:
                try:
                    with client(server.base) as http:
                        steps = run_steps(http, work, f"bench-{rep}-a", f"bench-{rep}-b")
                except (Failure, httpx.HTTPError) as exc:
                    errors[server.label].append(f"rep {rep}: {type(exc).__name__}: {exc}")
                    print(f"bench: {server.label} rep {rep} FAILED: {exc}", flush=True)
                    continue
                for step, value in steps.items():
                    results[server.label].setdefault(step, []).append(value)
                print(f"bench: rep {rep + 1}/{reps} {server.label}: " +
                      ", ".join(f"{k} {v[0].seconds:.3f}s" for k, v in steps.items()), flush=True)
        print(f"\nMedian of {reps} run(s), {args.docs} documents; ratio > 1 means ours is faster.\n")
        print(table(results, errors, args), flush=True)
        for side, errs in errors.items():
            for err in errs:
                print(f"ERROR {side}: {err}")
        memory: dict[str, dict[str, Any]] = {}
        if args.big:
            # Fresh processes and data dirs, so that VmHWM (a lifetime peak) is about the big database only.
            for server in servers:
                status = _status(server.pid)
                print(f"bench: {server.label} after the measured runs: VmRSS {status.get('VmRSS', 0) / 1024:.1f} MB, "
                      f"VmHWM {status.get('VmHWM', 0) / 1024:.1f} MB; restarting it fresh", flush=True)
                server.stop()
            servers[:] = [ours(workdir, "-big"), pouchdb_server(workdir, "-big")]
            for server in servers:
                server.start()
                print(f"bench: {server.label} pid {server.pid} ({server.exe()}) on {server.base}", flush=True)
            for server in servers:
                budget = float("inf") if server.label == "ours" else args.pouchdb_fill_budget
                print(f"\nbench: memory: filling {server.label} with {args.big} documents "
                      f"(batches of {args.big_batch})...", flush=True)
                try:
                    memory[server.label] = memory_phase(server, args.big, args.big_batch, budget, args.burst_clients)
                except (Failure, httpx.HTTPError) as exc:
                    memory[server.label] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"bench: memory {server.label}: {json.dumps(memory[server.label])}", flush=True)
            print(f"\nResident memory while serving a {args.big}-document database "
                  "(VmRSS sampled every 10 ms from /proc/PID/status; VmHWM = lifetime peak):\n")
            print(memory_table(memory))
            rep = memory.get("ours", {})
            if "vmhwm_mb" in rep:
                verdict = "MEETS" if rep["vmhwm_mb"] < 150 else "MISSES"
                print(f"\nours: lifetime peak (VmHWM) {rep['vmhwm_mb']:.1f} MB: {verdict} the 150 MB target")
            for side, rep in memory.items():
                if rep.get("note"):
                    print(f"note {side}: {rep['note']}")
        if args.json:
            args.json.write_text(json.dumps({
                "argv": sys.argv, "reps": reps, "errors": errors, "memory": memory,
                "steps": {side: {step: [{"seconds": m.seconds, "sent": m.sent, "received": m.received,
                                         "requests": m.requests, "items": items} for m, items in runs]
                                 for step, runs in res.items()} for side, res in results.items()},
            }, indent=1))
        return 1 if any(errors.values()) else 0
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _git_describe(path: Path) -> str:
    """' (git abc1234, N files modified)' for a checkout; '' elsewhere."""
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return ""
        if subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, timeout=10).stdout.strip() != str(path):
            return ""
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--", "sync_server"],
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
        return f" (git {head.stdout.strip()}, {len(dirty)} uncommitted change(s) in sync_server/)"
    except OSError:
        return ""


def _node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
