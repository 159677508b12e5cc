"""bench/linkproxy.py: the emulated mobile link used by the link benchmark and the flaky-link test.

Everything runs on loopback against a small echo server. No wall-clock assertions:
the pacing model is checked by its arithmetic, the proxy by bytes and by cut behaviour.
"""

from __future__ import annotations

import random
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from linkproxy import PROFILES, LinkProxy, _Link

WAIT = 20.0  # generous socket timeout: a failure, never a measurement


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(65536, n - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def echo_through(port: int, payload: bytes, chunk: int = 7000) -> bytes:
    """Send payload in chunks (a thread), read the echo back in full, close."""
    sock = connect(port)
    sender = threading.Thread(target=lambda: [sock.sendall(payload[i:i + chunk])
                                              for i in range(0, len(payload), chunk)])
    sender.start()
    received = recv_exactly(sock, len(payload))
    sender.join()
    sock.close()
    return received


def refused(port: int) -> bool:
    """True when a new connection is reset at once (at connect or at the first read)."""
    try:
        sock = connect(port)
    except ConnectionError:
        return True
    with sock:
        return closed_by_peer(sock)


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the connection was reset or closed by the other side."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return True


# -- the link model (pure arithmetic) -------------------------------------------------


def test_link_is_a_shared_fifo_serializer_followed_by_a_delay_line() -> None:
    link = _Link(8000, 0.5)  # 1000 bytes per second, 0.5 s one way
    assert link.schedule(1000, 10.0) == (11.0, 11.5)
    # Offered while the first is still transmitting: queued behind it, not delayed by the latency again.
    assert link.schedule(500, 10.2) == (11.5, 12.0)
    # Offered after the link went idle: starts at once.
    assert link.schedule(1000, 20.0) == (21.0, 21.5)


def test_unlimited_link_only_adds_latency() -> None:
    link = _Link(None, 0.15)
    assert link.schedule(10_000_000, 3.0) == (3.0, 3.15)


def test_profiles() -> None:
    assert PROFILES["3G"] == (1_000_000, 384_000, 0.150)
    assert PROFILES["2G"] == (128_000, 64_000, 0.400)
    proxy = LinkProxy.profile("2G", 1)
    assert (proxy.down.bps, proxy.up.bps, proxy.latency, proxy.rtt) == (128_000, 64_000, 0.4, 0.8)


# -- the proxy --------------------------------------------------------------------------


def test_bytes_pass_through_intact_and_are_counted(echo_port: int) -> None:
    payload = random.Random(1).randbytes(1_000_000)
    with LinkProxy(echo_port) as proxy:
        assert echo_through(proxy.port, payload) == payload
        stats = proxy.stats.snapshot()
    assert (stats.bytes_up, stats.bytes_down, stats.connections) == (len(payload), len(payload), 1)
    assert (stats.cuts, stats.refused) == (0, 0)


def test_latency_and_bandwidth_keep_order_across_concurrent_connections(echo_port: int) -> None:
    rng = random.Random(2)
    payloads = [rng.randbytes(rng.randrange(50_000, 150_000)) for _ in range(4)]
    results: list[bytes | None] = [None] * len(payloads)

    def run(i: int) -> None:
        results[i] = echo_through(proxy.port, payloads[i], chunk=rng.randrange(100, 5000))

    with LinkProxy(echo_port, down_bps=40_000_000, up_bps=20_000_000, latency=0.02) as proxy:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = proxy.stats.snapshot()
    assert results == payloads
    assert stats.bytes_up == stats.bytes_down == sum(map(len, payloads))
    assert stats.connections == len(payloads)


def test_a_small_exchange_through_a_slow_link(echo_port: int) -> None:
    with LinkProxy.profile("2G", echo_port) as proxy:
        sock = connect(proxy.port)
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert recv_exactly(sock, 18) == b"GET / HTTP/1.1\r\n\r\n"
        sock.close()
    assert proxy.stats.bytes_up == proxy.stats.bytes_down == 18


def test_cut_resets_open_connections_and_new_ones_work(echo_port: int) -> None:
    with LinkProxy(echo_port, latency=0.01) as proxy:
        first, second = connect(proxy.port), connect(proxy.port)
        for sock in (first, second):
            sock.sendall(b"ping")
            assert recv_exactly(sock, 4) == b"ping"
        assert proxy.cut() == 2
        assert closed_by_peer(first) and closed_by_peer(second)
        first.close()
        second.close()
        assert echo_through(proxy.port, b"after the cut") == b"after the cut"
        stats = proxy.stats.snapshot()
    assert (stats.cuts, stats.connections_cut, stats.connections) == (1, 2, 3)


def test_cut_drops_data_in_flight(echo_port: int) -> None:
    with LinkProxy(echo_port, down_bps=80_000, up_bps=80_000, latency=0.05) as proxy:
        sock = connect(proxy.port)
        sock.sendall(b"x" * 100_000)  # ten seconds of link time: still queued at the cut
        assert recv_exactly(sock, 10) == b"x" * 10
        proxy.cut()
        received = 10
        try:
            while chunk := sock.recv(65536):
                received += len(chunk)
        except ConnectionResetError:
            pass
        sock.close()
        stats = proxy.stats.snapshot()
    assert received < 100_000
    assert stats.bytes_up < 100_000 and stats.bytes_down >= received - 10


def test_outage_after_a_cut_refuses_new_connections(echo_port: int) -> None:
    with LinkProxy(echo_port, down_for=3600) as proxy:
        sock = connect(proxy.port)
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        proxy.cut()
        assert closed_by_peer(sock)
        sock.close()
        assert refused(proxy.port)  # accepted by the kernel, then reset by the proxy
        stats = proxy.stats.snapshot()
    assert (stats.refused, stats.connections) == (1, 1)


def test_periodic_cuts_close_idle_connections(echo_port: int) -> None:
    with LinkProxy(echo_port, cut_every=0.2) as proxy:
        sock = connect(proxy.port)
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        assert closed_by_peer(sock)  # blocks until the next periodic cut
        sock.close()
        stats = proxy.stats.snapshot()
    assert stats.cuts >= 1 and stats.connections_cut >= 1


def test_unreachable_upstream_resets_the_client() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with LinkProxy(dead_port) as proxy:
        assert refused(proxy.port)
        stats = proxy.stats.snapshot()
    assert (stats.refused, stats.connections) == (1, 0)


def test_server_closing_first_is_passed_on(echo_port: int) -> None:
    with LinkProxy(echo_port, latency=0.01) as proxy:
        sock = connect(proxy.port)
        sock.sendall(b"bye")
        assert recv_exactly(sock, 3) == b"bye"
        sock.shutdown(socket.SHUT_WR)  # the echo server sees EOF and closes; the FIN comes back
        assert sock.recv(1) == b""
        sock.close()
