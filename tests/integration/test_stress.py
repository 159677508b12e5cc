"""No interleaving of requests crashes the server or loses an acknowledged write.

A real server process (the ``kiosk`` fixture) takes, for a bounded time, many
threads at once: reads (``_all_docs?include_docs``, single documents), writes
(``POST /{db}``, ``_bulk_docs``), longpoll and continuous ``_changes``,
attachment uploads, ``_compact``, and one thread that deletes and recreates the
churned databases under all of them. Afterwards the process must be alive and
answer, no request may have got a 5xx, the log must hold no SQLite error, and
every write acknowledged on the database that is never deleted must be there
with the acknowledged revision.

``STRESS_SECONDS`` (environment) sets the duration; 12 s by default.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx

ADMIN = ("admin", "secret")
STABLE = "stress-stable"
CHURN = [f"stress-churn-{i}" for i in range(3)]
SECONDS = float(os.environ.get("STRESS_SECONDS", "12"))
# Answers a request may get while its database is deleted and recreated under it.
ALLOWED = {200, 201, 202, 404, 409, 412}


class Run:
    """What the threads share: the deadline, the statuses seen, the acknowledged writes."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.deadline = time.monotonic() + SECONDS
        self.lock = threading.Lock()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.acked: dict[str, str] = {}
        self.errors: list[str] = []

    def live(self) -> bool:
        return time.monotonic() < self.deadline

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=ADMIN, trust_env=False, timeout=60.0)

    def note(self, what: str, response: httpx.Response) -> httpx.Response:
        with self.lock:
            self.statuses[(what, response.status_code)] += 1
        return response

    def loop(self, name: str, step: Any) -> threading.Thread:
        """A thread calling ``step(http, rng)`` until the deadline; a transport error is recorded."""
        def body() -> None:
            rng = random.Random(name)
            with self.client() as http:
                while self.live():
                    try:
                        step(http, rng)
                    except httpx.TransportError as exc:
                        with self.lock:
                            self.errors.append(f"{name}: {exc!r}")
                        return
        return threading.Thread(target=body, name=name, daemon=True)


def test_no_interleaving_crashes_or_loses_writes(kiosk: Any) -> None:
    run = Run(kiosk.base)
    with run.client() as http:
        for name in [STABLE, *CHURN]:
            assert http.put(f"/{name}").status_code == 201

    counter = iter(range(10**9))

    def post(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice([STABLE, *CHURN])
        doc_id = f"p{next(counter)}"
        r = run.note("post", http.post(f"/{db}", json={"_id": doc_id, "n": rng.random(), "pad": "x" * rng.randint(0, 2000)}))
        if db == STABLE and r.status_code in (201, 202):
            with run.lock:
                run.acked[doc_id] = r.json()["rev"]

    def bulk(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice([STABLE, *CHURN])
        docs = [{"_id": f"b{next(counter)}", "i": i} for i in range(rng.randint(1, 30))]
        r = run.note("bulk", http.post(f"/{db}/_bulk_docs", json={"docs": docs}))
        if db == STABLE and r.status_code == 201:
            with run.lock:
                run.acked.update({row["id"]: row["rev"] for row in r.json() if "rev" in row})

    def read(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice([STABLE, *CHURN])
        run.note("all_docs", http.get(f"/{db}/_all_docs", params={"include_docs": "true", "limit": 200}))
        run.note("info", http.get(f"/{db}"))

    def longpoll(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice([STABLE, *CHURN])
        run.note("longpoll", http.get(f"/{db}/_changes", params={
            "feed": "longpoll", "since": "now", "timeout": 1500, "heartbeat": 500}))

    def continuous(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice(CHURN)
        run.note("continuous", http.get(f"/{db}/_changes", params={
            "feed": "continuous", "timeout": 800, "include_docs": "true", "heartbeat": 300}))

    def attach(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice([STABLE, *CHURN])
        doc_id = f"a{next(counter)}"
        r = run.note("attach", http.put(f"/{db}/{doc_id}/file.bin", content=rng.randbytes(rng.randint(1, 60_000)),
                                        headers={"Content-Type": "application/octet-stream"}))
        if db == STABLE and r.status_code in (201, 202):
            with run.lock:
                run.acked[doc_id] = r.json()["rev"]

    def compact(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice([STABLE, *CHURN])
        run.note("compact", http.post(f"/{db}/_compact", headers={"Content-Type": "application/json"}))
        time.sleep(0.2)

    def churn(http: httpx.Client, rng: random.Random) -> None:
        db = rng.choice(CHURN)
        run.note("delete", http.delete(f"/{db}"))
        time.sleep(rng.random() * 0.05)
        run.note("create", http.put(f"/{db}"))
        time.sleep(rng.random() * 0.1)

    steps = {"post": post, "bulk": bulk, "read": read, "longpoll": longpoll, "continuous": continuous,
             "attach": attach, "compact": compact, "churn": churn}
    counts = {"post": 3, "bulk": 2, "read": 3, "longpoll": 4, "continuous": 2, "attach": 2, "compact": 1, "churn": 1}
    threads = [run.loop(f"{name}-{i}", steps[name]) for name, n in counts.items() for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 90)

    assert kiosk.proc.poll() is None, f"the server died ({kiosk.proc.returncode}):\n{kiosk.log.read_text()[-4000:]}"
    assert not run.errors, run.errors[:5]
    assert not any(t.is_alive() for t in threads), "a request never returned"
    bad = {key: n for key, n in run.statuses.items() if key[1] not in ALLOWED}
    assert not bad, f"unexpected statuses: {bad}"
    assert sum(n for (what, status), n in run.statuses.items() if what == "delete" and status == 200) > 3
    assert sum(n for (what, status), n in run.statuses.items() if status in (200, 201)) > 100
    log = kiosk.log.read_text()
    for sign in ("sqlite3.", "Traceback", "Segmentation"):
        assert sign not in log, log[-4000:]

    with run.client() as http:
        assert http.get("/").status_code == 200
        assert run.acked, "no write on the stable database was acknowledged"
        ids = sorted(run.acked)
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            rows = http.post(f"/{STABLE}/_all_docs", json={"keys": ids[start:start + 500]}).json()["rows"]
            found.update({row["key"]: row["value"]["rev"] for row in rows if "value" in row})
    lost = [doc_id for doc_id in ids if found.get(doc_id) != run.acked[doc_id]]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"


def test_a_feed_waiting_on_a_deleted_database_ends_cleanly(kiosk: Any) -> None:
    """A longpoll and a continuous feed end with valid JSON when their database is deleted."""
    results: dict[str, httpx.Response] = {}

    def wait(kind: str) -> None:
        with httpx.Client(base_url=kiosk.base, auth=ADMIN, trust_env=False, timeout=30.0) as http:
            results[kind] = http.get("/gone/_changes", params={"feed": kind, "since": "now", "timeout": 20000})

    with httpx.Client(base_url=kiosk.base, auth=ADMIN, trust_env=False, timeout=30.0) as http:
        assert http.put("/gone").status_code == 201
        threads = [threading.Thread(target=wait, args=(kind,)) for kind in ("longpoll", "continuous")]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        assert http.delete("/gone").status_code == 200
        for thread in threads:
            thread.join(25)
        assert time.monotonic() - started < 10, "the feeds waited out their timeout"
        assert results["longpoll"].status_code == 200 and results["longpoll"].json()["results"] == []
        assert "last_seq" in results["continuous"].text.strip().splitlines()[-1]
        assert http.get("/gone/_changes", params={"feed": "longpoll"}).status_code == 404
    assert "Traceback" not in kiosk.log.read_text()
