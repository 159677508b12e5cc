"""A cell meeting on a kiosk: N phones (tests/peers/phones.js) while other requests go on.

Shared by ``bench/bench_phones.py`` and ``tests/integration/test_phones.py``. The kiosk is a
server started with ``--sample`` and an admin (the sample province: handbook, the cell's
database, its accounts); :func:`prepare` adds one member account with a PIN (and its
``member`` document) per phone, and optionally more handbook articles and meetings;
:func:`run` starts the phones, probes the kiosk with other requests meanwhile (``GET /``,
``POST /_session`` of the admin, an admin ``PUT``) and returns what was measured.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PHONES_JS = ROOT / "tests" / "peers" / "phones.js"
CELL = "TQ.NH.KH.C01"
CELL_DB = "cell-tq-nh-kh-c01"
HANDBOOK_DB = "handbook"
MEETING = f"meeting:{CELL}:5d0c9a4e-2f1b-4c3d-8e7f-a1b2c3d4e5f6"  # sync_server/handbook/sample.py MEETING_NEXT
SCHEDULED = "2026-12-03T19:30:00+07:00"  # its time (prepare sets it): a check-in carries it and falls inside its window (issue 13)
CHECKED_IN_AT = "2026-12-03T19:40:00+07:00"
PROBE_DB = "probe"
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))


def member_no(index: int) -> str:
    return f"{1000 + index:04d}"


def prepare(url: str, admin: tuple[str, str], phones: int, *, articles: int = 0, meetings: int = 0,
            seed: int = 20240601) -> dict[str, int]:
    """Accounts and documents for ``phones`` members; returns what each phone must pull."""
    from cell_dataset import article, meeting  # noqa: PLC0415 (bench/, put on sys.path above)

    rng = random.Random(seed)
    with httpx.Client(base_url=url, auth=admin, timeout=120) as client:
        users = [{"_id": f"org.couchdb.user:{CELL}.{member_no(i)}", "type": "user", "name": f"{CELL}.{member_no(i)}",
                  "roles": ["member", f"cell:{CELL}"], "pin": f"{(i * 7919) % 10000:04d}"} for i in range(phones)]
        _bulk(client, "_users", users)
        members = [{"_id": f"member:{CELL}:{member_no(i)}", "type": "member", "cell": CELL, "member_no": member_no(i),
                    "name": f"Đảng viên {i}", "born": 1950 + i % 50, "gender": "male" if i % 2 else "female",
                    "status": "active", "smartphone": True, "installed": True, "registered": True}
                   for i in range(phones)]
        _bulk(client, CELL_DB, members + [meeting(rng, CELL) for _ in range(meetings)])
        _bulk(client, HANDBOOK_DB, [article(i, rng) for i in range(articles)])
        # The sample's meeting is made in the last half hour; its check-ins here carry fixed times.
        sample_meeting = client.get(f"/{CELL_DB}/{MEETING}").raise_for_status().json()
        client.put(f"/{CELL_DB}/{MEETING}", json={**sample_meeting, "scheduled": SCHEDULED}).raise_for_status()
        client.put(f"/{PROBE_DB}").raise_for_status()
        return {"handbook": client.get(f"/{HANDBOOK_DB}").json()["doc_count"],
                "cell": client.get(f"/{CELL_DB}").json()["doc_count"]}


def _bulk(client: httpx.Client, db: str, docs: list[dict]) -> None:
    for start in range(0, len(docs), 200):
        response = client.post(f"/{db}/_bulk_docs", json={"docs": docs[start:start + 200]})
        response.raise_for_status()
        failed = [row for row in response.json() if "error" in row]
        if failed:
            raise RuntimeError(f"{db}: {failed[:3]}")


@dataclass
class Probe:
    """Other requests made while the phones sync, one after another, each on its own keep-alive client."""

    url: str
    admin: tuple[str, str]
    timeout: float = 30.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Probe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                for method, path, kwargs in (
                        ("GET", "/", {}),
                        ("POST", "/_session", {"json": {"name": self.admin[0], "password": self.admin[1]}}),
                        ("PUT", f"/{PROBE_DB}/doc-{n}", {"json": {"n": n}, "auth": self.admin})):
                    started = time.perf_counter()
                    try:
                        response = client.request(method, path, **kwargs)
                        if response.status_code >= 400:
                            self.errors.append(f"{method} {path}: HTTP {response.status_code}")
                    except httpx.HTTPError as exc:
                        self.errors.append(f"{method} {path}: {type(exc).__name__} {exc}")
                    self.latencies.append(time.perf_counter() - started)
                self._stop.wait(0.2)


def run_phones(url: str, phones: int, expect: dict[str, int], *, checkins: int = 10,
               catchup_timeout: float = 90.0, checkin_timeout: float = 20.0) -> dict[str, Any]:
    """Run phones.js; its JSON result."""
    command = {"url": url, "handbook": HANDBOOK_DB, "cell_db": CELL_DB, "cell": CELL, "meeting": MEETING,
               "scheduled": SCHEDULED, "checked_in_at": CHECKED_IN_AT,
               "phones": [{"name": f"{CELL}.{member_no(i)}", "pin": f"{(i * 7919) % 10000:04d}",
                           "member_no": member_no(i)} for i in range(phones)],
               "expect": expect, "checkins": checkins,
               "catchup_timeout_ms": int(catchup_timeout * 1000), "checkin_timeout_ms": int(checkin_timeout * 1000)}
    limit = catchup_timeout + checkins * (checkin_timeout + 1) + 120
    done = subprocess.run(["node", str(PHONES_JS), json.dumps(command)], cwd=ROOT, capture_output=True,
                          text=True, timeout=limit, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"phones.js failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def summarize(result: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """The figures of one run: caught up, check-in latency, other requests, errors."""
    caught = [t for t in result["caught_up_ms"] if t is not None]
    seen = [lat for row in result["checkins"] for lat in row]
    return {
        "phones": result["phones"],
        "caught_up": len(caught),
        "caught_up_last_s": max(caught) / 1000 if caught else None,
        "signed_in_s": result["signed_in_ms"] / 1000,
        "checkin_pairs": len(seen),
        "checkin_missed": sum(1 for lat in seen if lat is None),
        "checkin_p95_s": None if not seen or any(lat is None for lat in seen) else p95(seen) / 1000,
        "checkin_max_s": None if not seen or any(lat is None for lat in seen) else max(seen) / 1000,
        "other_requests": len(probe.latencies),
        "other_p95_s": p95(probe.latencies),
        "other_median_s": statistics.median(probe.latencies) if probe.latencies else None,
        "errors": len(result["errors"]) + len(probe.errors),
        "error_samples": (result["errors"] + probe.errors)[:8],
        "retried": result["retried"],
        "requests": result["requests"],
        "statuses": result["statuses"],
        "timings": result.get("timings", {}),
    }
