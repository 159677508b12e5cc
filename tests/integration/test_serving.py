"""Serving a whole cell at once, from the outside (a real server process, real sockets).

- waiting ``_changes`` feeds hold no thread: with 4 threads, 40 waiting longpolls and
  20 continuous feeds leave the kiosk answering, and one write wakes them all;
- past a connection limit a request is refused at once with 503 and Retry-After;
- idle connections and half-sent requests (HTTP and HTTPS) do not take the kiosk off the
  air, and are closed after ``server.header_timeout``;
- a burst of PIN sign-ins leaves the kiosk's memory bounded (scrypt in a small pool,
  its buffers given back).

No test asserts a duration: each bound below is "answered at all" within a generous time.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN, Kiosk, free_port

pytestmark = pytest.mark.peers

GENEROUS = 60.0  # seconds: a stalled kiosk, not a slow one, fails


@pytest.fixture
def kiosk_with(tmp_path: Path) -> Iterator[Callable[..., Kiosk]]:
    """Start our server with a config.yaml of the given text; stopped at the end."""
    started: list[Kiosk] = []

    def start(config: str, *extra: str) -> Kiosk:
        data_dir = tmp_path / f"kiosk{len(started)}"
        data_dir.mkdir()
        kiosk = Kiosk(data_dir, free_port())
        path = tmp_path / f"kiosk{len(started)}.yaml"
        path.write_text(config)
        kiosk.extra_args = ["--config", str(path), *extra]
        started.append(kiosk)
        return kiosk.start()

    yield start
    for kiosk in started:
        kiosk.stop()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def raw_request(port: int, request: bytes, timeout: float = GENEROUS, source: tuple[str, int] | None = None) -> bytes:
    """Send a request on a new connection; everything the server answers until it closes or a body ends."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=source) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(body) >= int(length[0].split(b":")[1]):
                return data


def test_waiting_feeds_hold_no_thread_and_one_write_wakes_them_all(kiosk_with: Callable[..., Kiosk]) -> None:
    kiosk = kiosk_with("server:\n  threads: 4\n  max_connections_per_client: 100\n")
    with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as admin:
        _feeds_wake(kiosk, admin)


def _feeds_wake(kiosk: Kiosk, admin: httpx.Client) -> None:
    admin.put("/cell").raise_for_status()
    since = admin.get("/cell").json()["update_seq"]

    def longpoll(_: int) -> dict:
        with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as client:
            response = client.get("/cell/_changes", params={"feed": "longpoll", "since": since,
                                                             "heartbeat": 1000, "timeout": 50_000})
            return json.loads(response.text.strip())

    def continuous(_: int) -> list[str]:
        with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as client, \
                client.stream("GET", "/cell/_changes", params={"feed": "continuous", "since": since,
                                                                "heartbeat": 1000, "timeout": 50_000}) as response:
            for line in response.iter_lines():
                if line.strip():
                    return [json.loads(line)["id"]]
        return []

    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        waiting = [pool.submit(longpoll, i) for i in range(40)] + [pool.submit(continuous, i) for i in range(20)]
        time.sleep(3.0)  # every feed is waiting now (4 threads: a thread-per-feed server would be full)
        assert not any(f.done() for f in waiting), [f.result() for f in waiting if f.done()][:2]
        assert admin.get("/").status_code == 200
        assert admin.put("/other").status_code == 201
        assert admin.put("/cell/wake", json={"n": 1}).status_code == 201
        results = [f.result(timeout=GENEROUS) for f in waiting]
    assert [r["results"][0]["id"] for r in results[:40]] == ["wake"] * 40
    assert results[40:] == [["wake"]] * 20


def test_a_heartbeat_of_one_millisecond_is_paced_and_costs_the_kiosk_next_to_nothing(
        kiosk_with: Callable[..., Kiosk]) -> None:
    # A member asking for a beat every millisecond on a few feeds kept the kiosk's core busy.
    kiosk = kiosk_with("server:\n  max_connections_per_client: 100\n")
    with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as admin:
        admin.put("/cell").raise_for_status()
    beats = 5

    def feed(_: int) -> float:
        started = time.monotonic()
        with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as client, \
                client.stream("GET", "/cell/_changes", params={"feed": "continuous", "since": "now",
                                                                "heartbeat": 1}) as response:
            seen = 0
            for chunk in response.iter_bytes():
                seen += chunk.count(b"\n")
                if seen >= beats:
                    return time.monotonic() - started
        raise AssertionError("the feed ended")

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        took = list(pool.map(feed, range(5)))
    # a lower bound only (a loaded machine makes beats later, never sooner): the floor is 200 ms
    assert min(took) >= beats * 0.2 * 0.9, took
    with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as admin:
        bad = admin.get("/cell/_changes", params={"feed": "longpoll", "heartbeat": "-1"})
        assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


def test_past_the_per_client_limit_a_request_gets_503_with_retry_after_at_once(kiosk_with: Callable[..., Kiosk]) -> None:
    kiosk = kiosk_with("server:\n  max_connections_per_client: 5\n")
    phone = ("127.0.0.3", 0)  # a phone on the Wi-Fi (the kiosk's own 127.0.0.1 has no per-client limit)
    idle = [socket.create_connection(("127.0.0.1", kiosk.port), source_address=phone) for _ in range(5)]
    try:
        time.sleep(0.5)
        answer = raw_request(kiosk.port, b"GET / HTTP/1.1\r\nHost: kiosk\r\n\r\n", source=phone)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), head
        assert b"retry-after: 5" in head.lower()
        assert json.loads(body)["error"] == "service_unavailable"
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    answer = raw_request(kiosk.port, b"GET / HTTP/1.1\r\nHost: kiosk\r\nConnection: close\r\n\r\n", source=phone)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]  # the limit counts open connections only


def test_idle_and_half_sent_connections_do_not_stall_the_kiosk_and_are_closed(kiosk_with: Callable[..., Kiosk]) -> None:
    tls_port = free_port()
    kiosk = kiosk_with(f"server:\n  header_timeout: 2\n  tls_port: {tls_port}\n")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    # From an attacker's address on the Wi-Fi (127.0.0.2): 100 idle TCP connections, 45 half-sent
    # HTTP requests, 45 half-sent HTTPS requests; members' phones come from other addresses.
    attacker = ("127.0.0.2", 0)
    idle = [socket.create_connection(("127.0.0.1", kiosk.port), source_address=attacker) for _ in range(100)]
    half = [socket.create_connection(("127.0.0.1", kiosk.port), source_address=attacker) for _ in range(45)]
    for sock in half:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: kiosk\r\nX-Slow: ")
    half_tls = [context.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), source_address=attacker),
                                    server_hostname="kiosk") for _ in range(45)]
    for sock in half_tls:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: kiosk\r\n")
    try:
        assert httpx.get(kiosk.base + "/", timeout=GENEROUS).status_code == 200
        assert httpx.get(f"https://127.0.0.1:{tls_port}/", verify=False, timeout=GENEROUS).status_code == 200
        for sock in idle + half + half_tls:  # closed by the kiosk after header_timeout (2 s)
            sock.settimeout(GENEROUS)
            assert sock.recv(1024) == b""
    finally:
        for sock in idle + half + half_tls:
            sock.close()


def test_a_burst_of_pin_sign_ins_leaves_memory_bounded(kiosk_with: Callable[..., Kiosk]) -> None:
    kiosk = kiosk_with("")
    names = [f"TQ.NH.KH.C01.{2000 + i}" for i in range(40)]
    with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as admin:
        admin.put("/_users")
        rows = admin.post("/_users/_bulk_docs", json={"docs": [
            {"_id": f"org.couchdb.user:{n}", "type": "user", "name": n, "roles": ["member"], "pin": "2468"}
            for n in names]}).json()
        assert all("ok" in row for row in rows), rows[:2]
    time.sleep(1.0)
    before = rss(kiosk.pid)

    def sign_in(name: str) -> int:
        with httpx.Client(base_url=kiosk.base, timeout=GENEROUS) as client:
            return client.post("/_session", json={"name": name, "password": "2468"}).status_code

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        assert list(pool.map(sign_in, names)) == [200] * 40
    grown = rss(kiosk.pid) - before
    # 40 scrypt checks of 16 MiB each: at once and kept by glibc's arenas that was 640 MB and more
    assert grown < 100 * 2**20, f"resident memory grew by {grown / 2**20:.0f} MiB"


def test_a_too_large_body_is_refused_and_a_stalled_body_times_out(kiosk_with: Callable[..., Kiosk]) -> None:
    kiosk = kiosk_with("server:\n  io_timeout: 2\ncouchdb:\n  max_request_size: 1000\n")
    big = b"x" * 5000
    answer = raw_request(kiosk.port, b"POST /_session HTTP/1.1\r\nHost: kiosk\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(big) + big)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    answer = raw_request(kiosk.port, b"PUT /db HTTP/1.1\r\nHost: kiosk\r\nContent-Length: 100\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert httpx.get(kiosk.base + "/", timeout=GENEROUS).status_code == 200


def test_a_client_that_stops_reading_a_large_answer_is_dropped_after_io_timeout(kiosk_with: Callable[..., Kiosk]) -> None:
    """A response the client does not read waits at most ``io_timeout`` in the kiosk's send buffers, then the
    connection is dropped; the kiosk goes on serving the others."""
    kiosk = kiosk_with("server:\n  io_timeout: 2\n")
    with httpx.Client(base_url=kiosk.base, auth=ADMIN, timeout=GENEROUS) as admin:
        assert admin.put("/big").status_code == 201
        filler = "x" * 1_000_000
        docs = [{"_id": f"d{i}", "text": filler} for i in range(16)]  # more than the kernel's buffers hold
        assert admin.post("/big/_bulk_docs", json={"docs": docs}).status_code == 201
    auth = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()
    sock = socket.create_connection(("127.0.0.1", kiosk.port))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big/_all_docs?include_docs=true HTTP/1.1\r\nHost: kiosk\r\n"
                     b"Authorization: " + auth.encode() + b"\r\n\r\n")
        time.sleep(6)  # reads nothing for three times io_timeout
        assert httpx.get(kiosk.base + "/", timeout=GENEROUS).status_code == 200
        received = 0
        sock.settimeout(GENEROUS)
        try:
            while chunk := sock.recv(65536):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 16_000_000, f"the whole answer ({received} bytes) waited for a client that read nothing"
    finally:
        sock.close()
