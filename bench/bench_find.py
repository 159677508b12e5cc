"""Mango ``_find`` with and without a JSON index: our server (in clear and encrypted at rest)
against Apache CouchDB 3.4.3, in one run, with ratios.

    .venv/bin/python bench/bench_find.py [--docs 20000] [--writes 200] [--queries 100]

Each server gets the same documents (a cell's records: ``kind``, ``n``, ``who``). The script
times (1) ``--queries`` selective ``_find`` queries (one kind, a range of 50 on ``n``, ``limit``
25) with no index, every document read; (2) the first ``_find`` after ``POST /_index`` on
``["kind", "n"]``, which builds the index; (3) the same queries through the index; (4) the
query after ``--writes`` single-document writes (the index follows the changes). Answers are
checked to be the same on every server. CouchDB is the shared release started by
tests/peers/couch_node.py; every server runs on 127.0.0.1 and is stopped by its process id.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests" / "peers"))

import bench_server  # noqa: E402
import couch_node  # noqa: E402
from bench_server import client, ours  # noqa: E402

KINDS = ["meeting", "minutes", "attendance", "feedback", "member"]
INDEX = {"index": {"fields": ["kind", "n"]}, "ddoc": "by-kind", "name": "kind-n"}


def selectors(docs: int, queries: int) -> list[dict]:
    rng = random.Random(11)
    out = []
    for _ in range(queries):
        low = rng.randint(0, docs)
        out.append({"selector": {"kind": rng.choice(KINDS), "n": {"$gte": low, "$lt": low + 50}}, "limit": 25})
    return out


def run(base: str, docs: int, writes: int, queries: int) -> tuple[dict[str, float], list[list[str]]]:
    rng = random.Random(7)
    timings: dict[str, float] = {}
    found: list[list[str]] = []
    bodies = selectors(docs, queries)
    with client(base) as http:
        assert http.put("/bench").status_code in (201, 202)
        for start in range(0, docs, 1000):
            batch = [{"_id": f"d{i:07d}", "kind": rng.choice(KINDS), "n": i, "who": f"m{rng.randint(0, 40)}"}
                     for i in range(start, min(start + 1000, docs))]
            assert http.post("/bench/_bulk_docs", content=json.dumps({"docs": batch})).status_code == 201

        def find_all(label: str) -> None:
            began = time.perf_counter()
            for body in bodies:
                answer = http.post("/bench/_find", content=json.dumps(body))
                assert answer.status_code == 200, answer.text[:300]
                found.append([d["_id"] for d in answer.json()["docs"]])
            timings[label] = (time.perf_counter() - began) / len(bodies)

        find_all("scan")
        assert http.post("/bench/_index", content=json.dumps(INDEX)).status_code == 200
        began = time.perf_counter()
        assert http.post("/bench/_find", content=json.dumps(bodies[0])).status_code == 200
        timings["build"] = time.perf_counter() - began
        find_all("indexed")
        for i in range(writes):
            http.put(f"/bench/w{i:05d}", content=json.dumps({"kind": rng.choice(KINDS), "n": rng.randint(0, docs)}))
        began = time.perf_counter()
        answer = http.post("/bench/_find", content=json.dumps(bodies[0]))
        assert answer.status_code == 200
        timings["update"] = time.perf_counter() - began
        found.append([d["_id"] for d in answer.json()["docs"]])
    return timings, found


class Couch:
    """The shared CouchDB 3.4.3 as a bench peer (label, base, stop)."""

    label = "couchdb"

    def __init__(self, workdir: Path) -> None:
        rel = couch_node.release()
        if rel is None:
            raise SystemExit(couch_node.why_missing())
        self.server = couch_node.CouchServer(workdir / "couchdb", rel)
        self.base = self.server.base

    def stop(self) -> None:
        self.server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-find-"))
    results: dict[str, dict[str, float]] = {}
    answers: dict[str, list[list[str]]] = {}
    for label in ("ours", "ours-encrypted", "couchdb"):
        server: Any
        if label == "couchdb":
            server = Couch(workdir)
        else:
            bench_server.ENCRYPTED = label == "ours-encrypted"
            server = ours(workdir, tag=label).start()
        try:
            print(f"bench: {label} on {server.base}", flush=True)
            results[label], answers[label] = run(server.base, args.docs, args.writes, args.queries)
        finally:
            server.stop()
    assert answers["ours"] == answers["couchdb"] == answers["ours-encrypted"], "the servers' answers differ"
    print(f"{args.docs} documents, {args.queries} queries, {args.writes} writes (answers identical on all three)")
    labels = {"scan": "_find, no index (each)", "build": "first _find after _index", "indexed": "_find, index (each)",
              "update": f"_find after {args.writes} writes"}
    print(f"{'step':<28}{'ours':>11}{'encrypted':>12}{'CouchDB':>11}{'ours/Couch':>12}{'enc/Couch':>11}")
    for key, label in labels.items():
        a, e, c = (results[s][key] for s in ("ours", "ours-encrypted", "couchdb"))
        print(f"{label:<28}{a * 1000:>9.1f}ms{e * 1000:>10.1f}ms{c * 1000:>9.1f}ms{a / c:>11.2f}x{e / c:>10.2f}x")
    for server in ("ours", "ours-encrypted", "couchdb"):
        speedup = results[server]["scan"] / results[server]["indexed"]
        print(f"{server}: an index makes _find {speedup:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
