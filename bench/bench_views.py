"""A view over many documents, built, queried, then brought up to date after 1,000 writes:
our server against pouchdb-server, in one run, with ratios.

    .venv/bin/python bench/bench_views.py [--docs 20000] [--writes 1000] [--queries 200]

Both servers get the same documents and the same design document (a map function and a
``_sum`` reduce); the script times (1) the first query, which builds the index, (2)
``--queries`` key-range queries on the built index, (3) the query after ``--writes`` single
document writes (the index follows the changes), and (4) a grouped reduce. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_server import client, ours, pouchdb_server  # noqa: E402

DDOC = {"_id": "_design/bench", "views": {"by_kind": {
    "map": "function (doc) { if (doc.kind) { emit([doc.kind, doc.n], doc.size); } }", "reduce": "_sum"}}}
KINDS = ["meeting", "minutes", "attendance", "feedback", "member"]


def run(base: str, docs: int, writes: int, queries: int) -> dict[str, float]:
    rng = random.Random(7)
    timings: dict[str, float] = {}
    with client(base) as http:
        assert http.put("/bench").status_code in (201, 202)
        http.put("/bench/_design/bench", content=json.dumps(DDOC))
        for start in range(0, docs, 1000):
            batch = [{"_id": f"d{i:07d}", "kind": rng.choice(KINDS), "n": i, "size": rng.randint(1, 500)}
                     for i in range(start, min(start + 1000, docs))]
            assert http.post("/bench/_bulk_docs", content=json.dumps({"docs": batch})).status_code == 201
        began = time.perf_counter()
        first = http.get("/bench/_design/bench/_view/by_kind", params={"limit": "1", "reduce": "false"}, timeout=3600)
        assert first.status_code == 200, first.text
        timings["build"] = time.perf_counter() - began
        began = time.perf_counter()
        for _ in range(queries):
            kind = rng.choice(KINDS)
            low = rng.randint(0, docs)
            answer = http.get("/bench/_design/bench/_view/by_kind", params={
                "startkey": json.dumps([kind, low]), "endkey": json.dumps([kind, low + 200]), "reduce": "false"})
            assert answer.status_code == 200
        timings["query"] = (time.perf_counter() - began) / queries
        for i in range(writes):
            http.put(f"/bench/w{i:05d}", content=json.dumps({"kind": rng.choice(KINDS), "n": docs + i, "size": 1}))
        began = time.perf_counter()
        assert http.get("/bench/_design/bench/_view/by_kind", params={"limit": "1", "reduce": "false"},
                        timeout=3600).status_code == 200
        timings["update"] = time.perf_counter() - began
        began = time.perf_counter()
        grouped = http.get("/bench/_design/bench/_view/by_kind", params={"group_level": "1"}, timeout=3600)
        assert grouped.status_code == 200 and len(grouped.json()["rows"]) == len(KINDS), grouped.text[:300]
        timings["reduce"] = time.perf_counter() - began
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-views-"))
    results = {}
    for make in (ours, pouchdb_server):
        server = make(workdir).start()
        try:
            results[server.label] = run(server.base, args.docs, args.writes, args.queries)
        finally:
            server.stop()
    print(f"{args.docs} documents, {args.writes} writes, {args.queries} range queries")
    print(f"{'step':<28}{'ours':>12}{'pouchdb-server':>16}{'ratio':>9}")
    labels = {"build": "first query (build)", "query": "range query (each)", "update": f"query after {args.writes} writes",
              "reduce": "group_level=1 reduce"}
    for key, label in labels.items():
        a, b = results["ours"][key], results["pouchdb-server"][key]
        print(f"{label:<28}{a * 1000:>10.1f}ms{b * 1000:>14.1f}ms{a / b:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
