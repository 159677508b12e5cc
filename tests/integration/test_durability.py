"""An acknowledged write survives SIGKILL.

Our server runs as a subprocess (the ``kiosk`` fixture). A thread streams
``_bulk_docs`` batches (new documents and updates of earlier ones) and records
every row acknowledged with 201. At a random moment after some acknowledgements
the server gets SIGKILL, is started again on the same data directory, and every
acknowledged id must be there with exactly the acknowledged revision (or, for a
document whose later update was in flight at the kill, a descendant of it).
Several rounds; the seed of the random choices is in every failure message.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from typing import Any

import httpx

ADMIN = ("admin", "secret")
DB = "dur"
BATCH = 20
ROUNDS = 5
TIMEOUT = 30.0


def client(kiosk: Any) -> httpx.Client:
    return httpx.Client(base_url=kiosk.base, auth=ADMIN, trust_env=False, timeout=TIMEOUT)


class Writer(threading.Thread):
    """Streams _bulk_docs batches until the server goes away; records what was acknowledged."""

    def __init__(self, kiosk: Any, round_no: int, known: dict[str, str], rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.kiosk, self.round_no, self.rng = kiosk, round_no, rng
        self.known = dict(known)  # id -> rev the server had before this round
        self.acked: dict[str, str] = {}
        self.unexpected: list[str] = []
        self.lock = threading.Lock()

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.acked)

    def batch(self, number: int) -> list[dict]:
        updates = self.rng.sample(sorted(self.known), min(5, len(self.known)))
        docs = [{"_id": doc_id, "_rev": self.known[doc_id], "round": self.round_no, "batch": number}
                for doc_id in updates]
        docs += [{"_id": f"r{self.round_no}-b{number:04d}-{i:02d}", "round": self.round_no, "batch": number,
                  "pad": "đ" * self.rng.randint(0, 400)} for i in range(BATCH - len(docs))]
        return docs

    def run(self) -> None:
        try:
            with client(self.kiosk) as http:
                number = 0
                while True:
                    try:
                        response = http.post(f"/{DB}/_bulk_docs", json={"docs": self.batch(number)})
                    except httpx.TransportError:
                        return  # the server was killed
                    if response.status_code != 201:
                        self.unexpected.append(f"batch {number}: {response.status_code} {response.text[:200]}")
                        return
                    for row in response.json():
                        if row.get("ok"):
                            with self.lock:
                                self.acked[row["id"]] = row["rev"]
                            self.known[row["id"]] = row["rev"]
                        else:
                            self.unexpected.append(f"batch {number}: row {row}")
                    number += 1
        except Exception as exc:  # reported by the test
            self.unexpected.append(repr(exc))


def revisions(http: httpx.Client, doc_id: str) -> list[str]:
    """Every revision in the history of the winner of doc_id."""
    doc = http.get(f"/{DB}/{doc_id}", params={"revs": "true"}).json()
    start, ids = doc["_revisions"]["start"], doc["_revisions"]["ids"]
    return [f"{start - i}-{h}" for i, h in enumerate(ids)]


def test_acknowledged_writes_survive_sigkill(kiosk: Any) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    with client(kiosk) as http:
        assert http.put(f"/{DB}").status_code == 201
    known: dict[str, str] = {}
    every_acked: dict[str, str] = {}
    for round_no in range(ROUNDS):
        writer = Writer(kiosk, round_no, known, random.Random(rng.random()))
        writer.start()
        wanted = rng.randint(BATCH, 12 * BATCH)
        deadline = time.monotonic() + TIMEOUT
        while writer.acknowledged() < wanted and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert writer.acknowledged() >= wanted, (seed, round_no, writer.unexpected)
        time.sleep(rng.uniform(0, 0.05))
        kiosk.kill9()
        writer.join(TIMEOUT)
        assert not writer.is_alive(), (seed, "writer thread did not stop after the kill")
        assert writer.unexpected == [], (seed, round_no, writer.unexpected)
        every_acked.update(writer.acked)

        kiosk.start()
        with client(kiosk) as http:
            rows = http.post(f"/{DB}/_all_docs", json={"keys": sorted(every_acked)}).json()["rows"]
            lost = [r["key"] for r in rows if "error" in r or r["value"].get("deleted")]
            assert lost == [], (seed, round_no, f"{len(lost)} acknowledged documents lost", lost[:10])
            current = {r["id"]: r["value"]["rev"] for r in rows}
            for doc_id, rev in every_acked.items():
                if current[doc_id] != rev:
                    # only an update in flight at the kill may have moved the document on
                    assert rev in revisions(http, doc_id), (seed, round_no, doc_id, rev, current[doc_id])
                    assert int(current[doc_id].split("-")[0]) == int(rev.split("-")[0]) + 1, (seed, doc_id)
            known = current
            assert http.get(f"/{DB}").json()["doc_count"] >= len(every_acked)

    with client(kiosk) as http:
        # the database opens and takes writes after the kills
        response = http.put(f"/{DB}/after-kill", json={"ok": True})
        assert response.status_code == 201, response.text
        assert http.get(f"/{DB}/after-kill").json()["ok"] is True
        bulk = http.post(f"/{DB}/_bulk_docs", json={"docs": [{"_id": f"after-{i}"} for i in range(BATCH)]})
        assert bulk.status_code == 201 and all(row.get("ok") for row in bulk.json())
        # every document once in _changes, at increasing sequences
        feed = http.get(f"/{DB}/_changes").json()
        ids = [row["id"] for row in feed["results"]]
        assert len(ids) == len(set(ids))
        assert set(every_acked) | {"after-kill"} <= set(ids)
        numbers = [int(row["seq"].split("-")[0]) for row in feed["results"]]
        assert numbers == sorted(numbers)
        info = http.get(f"/{DB}").json()
        assert info["doc_count"] == len(ids)
    db_file = kiosk.data_dir / "dbs" / f"{DB}.sqlite"
    conn = sqlite3.connect(str(db_file))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {doc_id: json.loads(tree) for doc_id, tree in conn.execute("SELECT id, tree FROM docs")}
    finally:
        conn.close()
    assert set(every_acked) <= set(stored)


def test_database_created_just_before_kill_survives(kiosk: Any) -> None:
    """PUT /{db} and a first write acknowledged, then SIGKILL: both are there after restart."""
    with client(kiosk) as http:
        assert http.put("/fresh").status_code == 201
        rev = http.put("/fresh/only", json={"v": 1}).json()["rev"]
        assert http.put("/fresh/_local/cp", json={"seq": 1}).status_code == 201
    kiosk.kill9()
    kiosk.start()
    with client(kiosk) as http:
        assert "fresh" in http.get("/_all_dbs").json()
        assert http.get("/fresh/only").json()["_rev"] == rev
        assert http.get("/fresh/_local/cp").json()["seq"] == 1
        assert http.put("/fresh/second", json={}).status_code == 201
