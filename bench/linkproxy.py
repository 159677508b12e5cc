"""A user-space TCP proxy that behaves like a slow, flaky mobile link.

    .venv/bin/python bench/linkproxy.py UPSTREAM_PORT [--port P] [--profile 3G|2G]
        [--down-bps B] [--up-bps B] [--latency S] [--cut-every S] [--down-for S]

or, from Python::

    with LinkProxy(upstream_port, down_bps=1_000_000, up_bps=384_000, latency=0.150) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/cell"
        ...
        proxy.stats.bytes_down, proxy.stats.bytes_up, proxy.stats.connections

It listens on 127.0.0.1 and forwards every connection to 127.0.0.1:UPSTREAM_PORT; the
CLI prints its counters every ``--report-every`` seconds and stops on Ctrl-C or SIGTERM.
"Down" is upstream -> client (what a kiosk downloads), "up" is client -> upstream.

The link model, per direction (netem-like, store-and-forward):

* bandwidth: ONE serial link per direction, shared by every connection (the radio
  is shared): a segment of n bytes offered at time t starts transmitting at
  ``max(t, link free)`` and takes ``8 n / bps`` seconds. This is a token bucket
  with no burst allowance. Data is cut into segments of ``SEGMENT`` bytes so
  that concurrent connections interleave fairly.
* latency: each segment is delivered ``latency`` seconds after its transmission
  ends (a delay line: many segments are in flight at once, so throughput is not
  divided by the latency, and order is kept per connection). A FIN travels the
  same way, after the data before it.
* TCP handshake: a new connection costs one round trip before its first byte
  can leave the client (SYN, SYN-ACK), as on a real link.
* bounded queue: the proxy stops reading from a sender while its direction has
  more than ``MAX_BACKLOG`` seconds of data queued, so TCP back-pressure works
  and a cut loses at most that much queued data.
* cuts: every ``cut_every`` seconds (or on ``cut()``) every open connection is
  reset on both sides (SO_LINGER 0, so the peers see RST); for ``down_for``
  seconds afterwards new connections are accepted and reset at once (the peer
  sees a reset, like "connection refused").

Byte counters count what crossed the link: segments delivered, plus segments
whose transmission had finished when a cut dropped them.

Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import socket
import struct
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

HOST = "127.0.0.1"
SEGMENT = 1460  # bytes scheduled at a time: one TCP segment on an Ethernet-MTU path
READ_SIZE = 65536
MAX_BACKLOG = 0.25  # seconds of queued transmission per direction before senders are paused
MIN_BACKLOG_BYTES = 16384  # ... but always allow this much, so fast links are not throttled by timers

# Name -> (down bits/s, up bits/s, one-way latency in seconds).
PROFILES: dict[str, tuple[float | None, float | None, float]] = {
    "3G": (1_000_000, 384_000, 0.150),
    "2G": (128_000, 64_000, 0.400),
    "none": (None, None, 0.0),
}


@dataclass
class LinkStats:
    """What went through the proxy since it started (or since the snapshot subtracted)."""

    bytes_down: int = 0  # upstream -> client
    bytes_up: int = 0  # client -> upstream
    connections: int = 0  # accepted and forwarded
    refused: int = 0  # accepted during an outage and reset at once (or upstream unreachable)
    cuts: int = 0  # cut events
    connections_cut: int = 0  # connections reset by cuts

    def snapshot(self) -> LinkStats:
        return LinkStats(**asdict(self))

    def __sub__(self, other: LinkStats) -> LinkStats:
        return LinkStats(**{k: v - getattr(other, k) for k, v in asdict(self).items()})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Link:
    """One direction of the link: a FIFO serializer at ``bps`` followed by a delay line."""

    def __init__(self, bps: float | None, latency: float) -> None:
        self.bps, self.latency = bps, latency
        self.free_at = 0.0

    def schedule(self, nbytes: int, sent_at: float) -> tuple[float, float]:
        """(transmission end, delivery time) of ``nbytes`` offered at ``sent_at``."""
        if not self.bps:
            return sent_at, sent_at + self.latency
        start = max(sent_at, self.free_at)
        self.free_at = start + nbytes * 8 / self.bps
        return self.free_at, self.free_at + self.latency

    def backlog_limit(self) -> float:
        if not self.bps:
            return float("inf")
        return max(MAX_BACKLOG, MIN_BACKLOG_BYTES * 8 / self.bps)


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close a connection with RST (SO_LINGER 0), dropping anything unsent."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class _Pipe:
    """One direction of one connection: reads the sender, delivers to the receiver on time."""

    def __init__(self, conn: _Conn, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 down: bool, ready_at: float) -> None:
        self.conn, self.link, self.reader, self.writer = conn, link, reader, writer
        self.down, self.ready_at = down, ready_at
        self.queue: collections.deque[tuple[float, float, bytes | None]] = collections.deque()
        self.wake = asyncio.Event()
        self.last_delivery = 0.0

    def _count(self, nbytes: int) -> None:
        stats = self.conn.proxy.stats
        if self.down:
            stats.bytes_down += nbytes
        else:
            stats.bytes_up += nbytes

    def _put(self, data: bytes | None) -> None:
        loop = asyncio.get_running_loop()
        sent_at = max(loop.time(), self.ready_at)
        if data is None:  # FIN: after everything before it
            deliver = max(self.last_delivery, sent_at + self.link.latency)
            self.queue.append((deliver, deliver, None))
        for i in range(0, len(data or b""), SEGMENT):
            segment = data[i:i + SEGMENT]  # type: ignore[index]
            finish, deliver = self.link.schedule(len(segment), sent_at)
            self.last_delivery = max(self.last_delivery, deliver)
            self.queue.append((self.last_delivery, finish, segment))
        self.wake.set()

    async def pump_in(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self.reader.read(READ_SIZE)
            self._put(data or None)
            if not data:
                return
            limit = self.link.backlog_limit()
            while self.link.free_at - loop.time() > limit:
                await asyncio.sleep(self.link.free_at - loop.time() - limit / 2)

    async def pump_out(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            delay = self.queue[0][0] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            now = loop.time()
            chunks, eof = [], False
            while self.queue and self.queue[0][0] <= now:
                _, _, data = self.queue.popleft()
                if data is None:
                    eof = True
                    break
                chunks.append(data)
            if chunks:
                out = b"".join(chunks)
                self._count(len(out))
                self.writer.write(out)
                await self.writer.drain()
            if eof:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return

    def drop(self, now: float) -> None:
        """A cut: count what had already crossed the link, forget the rest."""
        self._count(sum(len(d) for _, finish, d in self.queue if d is not None and finish <= now))
        self.queue.clear()


class _Conn:
    """One proxied connection: two pipes and the tasks running them."""

    def __init__(self, proxy: LinkProxy, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy = proxy
        self.client_writer, self.upstream_writer = client[1], upstream[1]
        loop = asyncio.get_running_loop()
        # The client's first byte may leave only after SYN / SYN-ACK: one round trip.
        handshake = loop.time() + proxy.up.latency + proxy.down.latency if proxy.handshake else 0.0
        self.up = _Pipe(self, proxy.up, client[0], upstream[1], down=False, ready_at=handshake)
        self.down = _Pipe(self, proxy.down, upstream[0], client[1], down=True, ready_at=0.0)
        self.tasks: list[asyncio.Task[None]] = []
        self.cut = False

    async def run(self) -> None:
        self.tasks = [asyncio.ensure_future(p()) for p in
                      (self.up.pump_in, self.up.pump_out, self.down.pump_in, self.down.pump_out)]
        try:
            # Done when both directions delivered their FIN, or at the first error (a reset).
            pending = set(self.tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if any(t.exception() is not None for t in done if not t.cancelled()):
                    break
        finally:
            for task in self.tasks:
                task.cancel()
            failed = [t for t in self.tasks if t.done() and not t.cancelled() and t.exception() is not None]
            if self.cut:
                pass  # reset() already closed both sides
            elif failed:
                _reset(self.client_writer)  # one side reset: pass the reset on
                _reset(self.upstream_writer)
            else:
                self.client_writer.close()
                self.upstream_writer.close()

    def reset(self) -> None:
        now = asyncio.get_running_loop().time()
        self.cut = True
        self.up.drop(now)
        self.down.drop(now)
        for task in self.tasks:
            task.cancel()
        _reset(self.client_writer)
        _reset(self.upstream_writer)


class LinkProxy:
    """A loopback TCP proxy emulating a mobile link; a context manager running its own thread."""

    def __init__(self, upstream_port: int, *, down_bps: float | None = None, up_bps: float | None = None,
                 latency: float = 0.0, cut_every: float | None = None, down_for: float = 0.0,
                 port: int = 0, handshake: bool = True, upstream_host: str = HOST) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.down, self.up = _Link(down_bps, latency), _Link(up_bps, latency)
        self.latency, self.cut_every, self.down_for = latency, cut_every, down_for
        self.handshake = handshake
        self.stats = LinkStats()
        self.port = port
        self._conns: set[_Conn] = set()
        self._down_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @classmethod
    def profile(cls, name: str, upstream_port: int, **kwargs: Any) -> LinkProxy:
        """A proxy with a named profile's bandwidths and latency (``PROFILES``)."""
        down, up, latency = PROFILES[name]
        return cls(upstream_port, down_bps=down, up_bps=up, latency=latency, **kwargs)

    @property
    def rtt(self) -> float:
        return self.up.latency + self.down.latency

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> LinkProxy:
        self._thread = threading.Thread(target=self._run_thread, name="linkproxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()

    def __enter__(self) -> LinkProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, HOST, self.port)
        self.port = server.sockets[0].getsockname()[1]
        cutter = asyncio.ensure_future(self._cutter()) if self.cut_every else None
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            if cutter is not None:
                cutter.cancel()
            server.close()
            for conn in list(self._conns):
                conn.reset()
            await asyncio.sleep(0)
            await server.wait_closed()

    # -- connections -----------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._down_until:
            self.stats.refused += 1
            _reset(writer)
            return
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.stats.refused += 1
            _reset(writer)
            return
        self.stats.connections += 1
        conn = _Conn(self, (reader, writer), upstream)
        self._conns.add(conn)
        try:
            await conn.run()
        finally:
            self._conns.discard(conn)

    async def _cutter(self) -> None:
        assert self.cut_every
        while True:
            await asyncio.sleep(self.cut_every)
            self._cut_now()

    def _cut_now(self) -> int:
        loop = asyncio.get_running_loop()
        conns = list(self._conns)
        self.stats.cuts += 1
        self.stats.connections_cut += len(conns)
        for conn in conns:
            conn.reset()
            self._conns.discard(conn)
        # The queues are gone: the link is idle again.
        self.up.free_at = self.down.free_at = loop.time()
        self._down_until = loop.time() + self.down_for
        return len(conns)

    def cut(self) -> int:
        """Reset every open connection now (and start an outage of ``down_for``); returns how many."""
        assert self._loop is not None

        async def do() -> int:
            return self._cut_now()

        return asyncio.run_coroutine_threadsafe(do(), self._loop).result()

    def open_connections(self) -> int:
        return len(self._conns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream_port", type=int)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="none")
    parser.add_argument("--down-bps", type=float, help="downstream bits/s (overrides the profile)")
    parser.add_argument("--up-bps", type=float, help="upstream bits/s (overrides the profile)")
    parser.add_argument("--latency", type=float, help="one-way latency, seconds (overrides the profile)")
    parser.add_argument("--cut-every", type=float, help="reset every connection every S seconds")
    parser.add_argument("--down-for", type=float, default=0.0, help="after a cut, refuse connections for S seconds")
    parser.add_argument("--report-every", type=float, default=10.0, help="print the counters every S seconds")
    args = parser.parse_args(argv)
    down, up, latency = PROFILES[args.profile]
    proxy = LinkProxy(args.upstream_port, port=args.port,
                      down_bps=args.down_bps if args.down_bps is not None else down,
                      up_bps=args.up_bps if args.up_bps is not None else up,
                      latency=args.latency if args.latency is not None else latency,
                      cut_every=args.cut_every, down_for=args.down_for)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with proxy:
        print(f"listening on {HOST}:{proxy.port} -> {HOST}:{args.upstream_port} "
              f"(down {proxy.down.bps or 'unlimited'} bit/s, up {proxy.up.bps or 'unlimited'} bit/s, "
              f"latency {proxy.latency * 1000:.0f} ms each way, "
              f"{f'cut every {args.cut_every:g} s' if args.cut_every else 'never cut'})", flush=True)
        try:
            while not stop.wait(args.report_every):
                print(proxy.stats.as_dict(), flush=True)
        except KeyboardInterrupt:
            pass
    print(proxy.stats.as_dict(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
