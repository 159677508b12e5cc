"""The production server: uvicorn (asyncio) in front, the Flask app on a small thread pool.

Why: a kiosk serves a whole cell at once, 60-100 phones, each with a live pull of
the handbook and of the cell database that waits on ``_changes`` most of the time,
and up to 6 keep-alive connections. A thread-per-request server (waitress) held a
worker thread per waiting feed, so 50 phones filled its 100 threads and every other
request hung (issue 14). Here:

- connections, idle keep-alive, request heads and bodies, and responses being sent
  are handled by uvicorn's event loop: they cost no thread, only a socket and a few
  kilobytes;
- a request runs on the Flask app in a pool of ``server.threads`` threads only while
  it computes: its body is read before (so a slow sender holds no thread), and its
  response is sent after each chunk is produced (so a slow reader holds none);
- a feed that has to wait yields a :class:`~sync_server.api.http.FeedWait`; the
  generator is parked (no thread) until the database's next write (one listener per
  database, ``Database.on_change``; another process's writes are seen by one poll a
  second for all feeds), its timeout, or the client leaving;
- phones' sign-ins (``POST /_session``, ``POST /_pairing/claim``) run on a lane of their
  own, so a burst of PIN checks (scrypt) never queues the other requests nor the kiosk's
  own screen; the checks themselves are bounded by ``passwords``' hashing pool.

Limits (``server.*`` in config.yaml): past ``max_connections`` in all or
``max_connections_per_client`` from one address, a request is answered at once with
503 and ``Retry-After`` and the connection closed; a request head must be complete
within ``header_timeout`` seconds of its first byte (or of the connection opening),
a body or a response may stall at most ``io_timeout`` seconds, idle keep-alive
connections close after ``keepalive_timeout`` seconds. So idle or half-sent
connections (HTTP or HTTPS) cannot take the kiosk off the air.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import io
import json
import logging
import resource
import signal
import socket
import sys
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import CouchError, RequestTimeout, StartupError, Unavailable
from .http import FeedWait

log = logging.getLogger(__name__)

# Seconds a refused client is asked to wait before trying again (503 Retry-After).
RETRY_AFTER_SECONDS = 5
# Seconds between checks for writes made by another process (the store's CROSS_PROCESS_POLL).
CROSS_PROCESS_POLL = 1.0
# A request body up to this size stays in memory; a larger one goes to a temporary file.
BODY_IN_MEMORY = 1_048_576
# What one trip to the thread pool produces of a streamed response before it is sent.
CHUNK_BUDGET = 262_144
# Paths whose POST checks a PIN or password: they run on the sign-in lane.
SIGN_IN_PATHS = ("/_session", "/_pairing/claim", "/_pairing/remember")
# Addresses of the kiosk itself: no per-client connection limit.
SELF = ("127.0.0.1", "::1")
# Threads of the sign-in lane (the hashing itself is bounded by passwords.HASH_WORKERS).
SIGN_IN_THREADS = 4
# Seconds between looks for a new certificate to serve (the certificate round installs one).
TLS_RELOAD_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    """Connection limits and timeouts (from ``server.*`` settings)."""

    max_connections: int = 1000
    max_per_client: int = 32
    header_timeout: float = 20.0
    io_timeout: float = 60.0
    keepalive_timeout: float = 60.0

    @classmethod
    def from_settings(cls, server: Any) -> Limits:
        return cls(server.max_connections, server.max_connections_per_client, server.header_timeout,
                   server.io_timeout, server.keepalive_timeout)


class Connections:
    """Open connections, in all and per client address (updated by the protocol, read by the app)."""

    def __init__(self) -> None:
        self.total = 0
        self.by_client: Counter[str] = Counter()

    def opened(self, client: str) -> None:
        self.total += 1
        self.by_client[client] += 1

    def closed(self, client: str) -> None:
        self.total -= 1
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]

    def over(self, client: str, limits: Limits) -> str | None:
        """Why a request from ``client`` must be refused now, or None.

        The machine itself (127.0.0.1, ::1: the kiosk's own screen, its command line) has
        no per-client limit; another address on the Wi-Fi has.
        """
        if self.total > limits.max_connections:
            return f"the kiosk has {self.total} connections open (limit {limits.max_connections})"
        if client not in SELF and self.by_client[client] > limits.max_per_client:
            return f"{client} has {self.by_client[client]} connections open (limit {limits.max_per_client})"
        return None


def protocol_class(connections: Connections, limits: Limits) -> type:
    """uvicorn's HTTP/1.1 protocol (httptools' C parser, else h11), counting connections, timing heads out."""
    Base: type[Any]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        Base = HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency; h11 is uvicorn's own fallback
        from uvicorn.protocols.http.h11_impl import H11Protocol
        Base = H11Protocol

    class Protocol(Base):
        _head_timer: asyncio.TimerHandle | None = None
        _stall_timer: asyncio.TimerHandle | None = None
        _who = ""

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._who = self.client[0] if self.client else "?"
            connections.opened(self._who)
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._who:
                connections.closed(self._who)
                self._who = ""
            self._stop_head_timer()
            self._stop_stall_timer()
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            """The client reads less than the kiosk sends: it has ``io_timeout`` seconds to catch up."""
            super().pause_writing()
            if self._stall_timer is None:
                self._stall_timer = self.loop.call_later(limits.io_timeout, self._stalled)

        def resume_writing(self) -> None:
            self._stop_stall_timer()
            super().resume_writing()

        def _stop_stall_timer(self) -> None:
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None

        def _stalled(self) -> None:
            """A response has waited ``io_timeout`` seconds for the client to read: drop the connection
            (its waiting send returns, and the request ends as when a client leaves)."""
            self._stall_timer = None
            self.transport.abort()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            between = cycle is None or cycle.response_complete
            super().data_received(data)
            if self.cycle is not cycle:  # a request head was complete
                self._stop_head_timer()
            elif between and self._head_timer is None:  # the first bytes of the next head
                self._start_head_timer()

        def _start_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_timeout)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            """No complete request head in time: an idle or slow-loris connection; close it."""
            self._head_timer = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

    return Protocol


class FeedWaiter:
    """Parks waiting feeds without threads and wakes them on their database's next write."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor) -> None:
        self._loop, self._pool = loop, pool
        self._waiting: dict[Any, dict[asyncio.Future, int]] = {}
        self._subscribed: weakref.WeakSet = weakref.WeakSet()
        self._poller: asyncio.Task | None = None

    @property
    def count(self) -> int:
        """Feeds waiting now."""
        return sum(len(w) for w in self._waiting.values())

    async def wait(self, wait: FeedWait, gone: asyncio.Future) -> bool | None:
        """True on a change (or the database closing), False at the timeout, None when the client left."""
        db = wait.db
        if db not in self._subscribed:
            db.on_change(self._on_change)
            self._subscribed.add(db)
        woken: asyncio.Future = self._loop.create_future()
        self._waiting.setdefault(db, {})[woken] = wait.seq
        if self._poller is None or self._poller.done():
            self._poller = self._loop.create_task(self._poll())
        try:
            done, _ = await asyncio.wait([woken, gone], timeout=wait.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting = self._waiting.get(db, {})
            waiting.pop(woken, None)
            if not waiting:
                self._waiting.pop(db, None)
        if woken in done:
            return True
        return None if gone.done() else False

    def _on_change(self, db: Any) -> None:
        """Called on the writing thread."""
        self._loop.call_soon_threadsafe(self._wake, db)

    def _wake(self, db: Any) -> None:
        for woken in list(self._waiting.get(db, {})):
            if not woken.done():
                woken.set_result(True)

    async def _poll(self) -> None:
        """Once a second, while feeds wait: one look at each database for another process's writes."""
        while self._waiting:
            await asyncio.sleep(CROSS_PROCESS_POLL)
            dbs = {db: min(w.values()) for db, w in self._waiting.items() if w}
            moved = await self._loop.run_in_executor(self._pool, _moved, dbs)
            for db in moved:
                self._wake(db)


def _moved(dbs: dict[Any, int]) -> list[Any]:
    out = []
    for db, seq in dbs.items():
        try:
            if db.closed or db.update_seq > seq:
                out.append(db)
        except CouchError:  # deleted meanwhile
            out.append(db)
    return out


class _End:
    """The app's iterator is exhausted."""


class WsgiBridge:
    """An ASGI application running a WSGI app (Flask) on thread pools, feeds parked off-thread."""

    def __init__(self, app: Callable, threads: int, limits: Limits, connections: Connections,
                 max_body: int) -> None:
        self.app, self.limits, self.connections, self.max_body = app, limits, connections, max_body
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="api")
        self.sign_in_pool = ThreadPoolExecutor(SIGN_IN_THREADS, thread_name_prefix="sign-in")
        self._waiter: FeedWaiter | None = None

    def waiter(self) -> FeedWaiter:
        if self._waiter is None:
            self._waiter = FeedWaiter(asyncio.get_running_loop(), self.pool)
        return self._waiter

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        client = (scope.get("client") or ("?", 0))[0]
        why = self.connections.over(client, self.limits)
        if why is not None:
            log.warning("refused a request: %s", why)
            await _refuse(send, Unavailable(f"The kiosk is busy ({why}); try again in {RETRY_AFTER_SECONDS} s."))
            return
        body, complete = await self._read_body(scope, receive)
        if body is None:  # the client left, or stalled sending its body
            if complete is False:
                await _refuse(send, RequestTimeout())
            return
        # Phones' sign-ins queue among themselves; the kiosk's own screen never waits behind them.
        signing_in = scope["method"] == "POST" and scope["path"] in SIGN_IN_PATHS and client not in SELF
        pool = self.sign_in_pool if signing_in else self.pool
        await self._respond(scope, receive, send, _environ(scope, body, bool(complete)), pool)

    async def _read_body(self, scope: dict, receive: Callable) -> tuple[Any, bool | None]:
        """The body in a spooled file (at most max_body + 1 bytes kept), and whether all of it was read.

        (None, None): the client left; (None, False): it stalled longer than io_timeout.
        A request that announces no body (most: GET, HEAD) has it already: nothing to wait for.
        """
        if not any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"]):
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, None
            return io.BytesIO(message.get("body", b"")), True
        body = tempfile.SpooledTemporaryFile(max_size=BODY_IN_MEMORY)  # noqa: SIM115 (closed with the environ)
        size = 0
        while True:
            try:
                async with asyncio.timeout(self.limits.io_timeout):
                    message = await receive()
            except TimeoutError:
                body.close()
                return None, False
            if message["type"] == "http.disconnect":
                body.close()
                return None, None
            data = message.get("body", b"")
            if data:
                room = self.max_body + 1 - size
                body.write(data[:max(room, 0)])
                size += len(data)
            if not message.get("more_body"):
                break
            if size > self.max_body:  # the app refuses it (413); the rest is not read
                body.seek(0)
                return body, False
        body.seek(0)
        return body, True

    async def _respond(self, scope: dict, receive: Callable, send: Callable, environ: dict,
                       pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        state: dict[str, Any] = {"started": False}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info and state["started"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = int(status.split(" ", 1)[0]), headers
            return state.setdefault("written", []).append  # WSGI's legacy write()

        def call() -> tuple[Any, list[bytes], Any]:
            result = self.app(environ, start_response)
            iterator = iter(result)
            chunks, after = _pull(iterator)
            return result, state.pop("written", []) + chunks, (iterator, after)

        async def begin() -> None:
            if not state["started"]:
                state["started"] = True
                headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in state["headers"]]
                if environ.get("sync_server.body_unread"):
                    headers.append((b"connection", b"close"))
                # WSGI drops it from a 304; CouchDB sends Content-Length: 0
                if state["status"] == 304 and not any(k == b"content-length" for k, _ in headers):
                    headers.append((b"content-length", b"0"))
                await send({"type": "http.response.start", "status": state["status"], "headers": headers})

        gone: asyncio.Future = loop.create_future()
        listener: asyncio.Task | None = None  # watches for the client leaving, once an answer streams
        result = None
        after: Any = None
        try:
            result, chunks, (iterator, after) = await loop.run_in_executor(pool, call)
            if after is _End:  # the whole answer at once (most requests): one trip to the client
                await begin()
                await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": False})
                return
            listener = loop.create_task(_until_disconnect(receive, gone))
            while True:
                data = b"".join(chunks)
                if data:
                    await begin()
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                if gone.done():
                    return  # the client left (or stalled past io_timeout): the generator is closed below
                if after is _End:
                    break
                if isinstance(after, FeedWait):
                    await begin()  # the client sees the answer has started before it waits
                    changed = await self.waiter().wait(after, gone)
                    if changed is None:
                        return
                    after.changed = changed
                chunks, after = await loop.run_in_executor(pool, _pull, iterator)
            await begin()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if listener is not None:
                listener.cancel()
            if result is not None and hasattr(result, "close"):
                if after is _End:  # exhausted: closing it runs no more of the app
                    result.close()
                else:
                    await loop.run_in_executor(pool, result.close)
            environ["wsgi.input"].close()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.sign_in_pool.shutdown(wait=False, cancel_futures=True)


def _pull(iterator: Any) -> tuple[list[bytes], Any]:
    """Chunks of the response up to CHUNK_BUDGET bytes; then what stopped it: _End, a FeedWait, or None (more)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in iterator:
        if isinstance(chunk, FeedWait):
            return chunks, chunk
        if chunk:
            chunks.append(bytes(chunk))
            size += len(chunk)
            if size >= CHUNK_BUDGET:
                return chunks, None
    return chunks, _End


async def _until_disconnect(receive: Callable, gone: asyncio.Future) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not gone.done():
                gone.set_result(True)
            return


async def _refuse(send: Callable, error: CouchError) -> None:
    body = (json.dumps(error.to_json()) + "\n").encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), (b"cache-control", b"must-revalidate")]
    if error.status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _environ(scope: dict, body: Any, complete: bool) -> dict[str, Any]:
    """The WSGI environ of an ASGI request (PEP 3333), with the raw URI in ``REQUEST_URI`` (the router decodes ids from it)."""
    query = scope.get("query_string", b"")
    raw_path = scope.get("raw_path") or scope["path"].encode()
    server = scope.get("server") or ("localhost", 0)
    client = scope.get("client") or ("", 0)
    size = body.seek(0, 2)
    body.seek(0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"], "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "REQUEST_URI": (raw_path + (b"?" + query if query else b"")).decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0], "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(size),
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"), "wsgi.input": body,
        "wsgi.input_terminated": True, "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    if not complete:
        environ["sync_server.body_unread"] = True
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key == "CONTENT_LENGTH":
            if not complete:
                environ["CONTENT_LENGTH"] = value.decode("latin-1")  # the client's claim: over the limit
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        text = value.decode("latin-1")
        if key in environ:
            text = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + text
        environ[key] = text
    return environ


# -- memory: give scrypt's buffers back --------------------------------------

def tune_malloc(mmap_threshold: int = 1_048_576, arenas: int = 4) -> bool:
    """glibc: allocations above ``mmap_threshold`` are mapped and unmapped (returned at once), arenas capped.

    A PIN check (scrypt) allocates 16 MiB; with glibc's sliding threshold those land in a
    thread's arena and stay resident after the burst (809 MB after 50 sign-ins, issue 14).
    A fixed threshold stops the sliding. No effect (False) on another C library.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_arena_max, m_mmap_threshold = -8, -3
    return bool(mallopt(m_mmap_threshold, mmap_threshold)) and bool(mallopt(m_arena_max, arenas))


def raise_file_limit(wanted: int) -> None:
    """Raise the soft limit of open files towards ``wanted`` (each connection is one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# -- running -----------------------------------------------------------------

def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or StartupError naming the address.

    Made with ``IPPROTO_TCP`` (not 0) so asyncio sets TCP_NODELAY on the connections it
    accepts: otherwise a response's body waits for the ACK of its headers (Nagle against the
    client's delayed ACK), 40 ms per request.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class Serving:
    """The kiosk's HTTP (and optional HTTPS) listeners, one event loop, one thread pool."""

    def __init__(self, app: Callable, settings: Any) -> None:
        import uvicorn

        server = settings.server
        self.limits = Limits.from_settings(server)
        self.connections = Connections()
        self.bridge = WsgiBridge(app, server.threads, self.limits, self.connections,
                                 settings.couchdb.max_request_size)
        protocol = protocol_class(self.connections, self.limits)
        self._uvicorn = uvicorn
        self._common: dict[str, Any] = {"http": protocol, "lifespan": "off", "access_log": False, "log_config": None,
                        "server_header": False, "timeout_keep_alive": int(self.limits.keepalive_timeout),
                        "timeout_graceful_shutdown": 5, "interface": "asgi3"}
        self.servers: list[tuple[Any, socket.socket]] = []
        self._watches: list[tuple[Any, Callable[[], tuple[str, str, str]], Callable[[str], None] | None]] = []
        raise_file_limit(self.limits.max_connections + 256)

    def add(self, sock: socket.socket, certfile: str | None = None, keyfile: str | None = None,
            watch: Callable[[], tuple[str, str, str]] | None = None, changed: Callable[[str], None] | None = None) -> None:
        """Listen on ``sock``; with a certificate, HTTPS.

        :param watch: called every TLS_RELOAD_SECONDS (on the thread pool): the certificate to serve
            now as (certfile, keyfile, fingerprint); a new fingerprint is loaded into the listener's
            TLS context without a restart (new connections get it), then ``changed`` is told.
        """
        config = self._uvicorn.Config(self.bridge, ssl_certfile=certfile, ssl_keyfile=keyfile, **self._common)
        server = self._uvicorn.Server(config)
        self.servers.append((server, sock))
        if watch is not None:
            self._watches.append((server, watch, changed))

    async def _watch_tls(self, server: Any, watch: Callable[[], tuple[str, str, str]],
                         changed: Callable[[str], None] | None) -> None:
        loop = asyncio.get_running_loop()
        last = None
        while True:
            try:
                certfile, keyfile, fingerprint = await loop.run_in_executor(self.bridge.pool, watch)
                if last is not None and fingerprint != last:
                    server.config.ssl.load_cert_chain(certfile, keyfile)
                    log.warning("now serving the certificate %s (%s)", certfile, fingerprint)
                    if changed is not None:
                        changed(fingerprint)
                last = fingerprint
            except (OSError, ValueError, StartupError) as exc:  # a half-written or unreadable file: keep the old one
                log.error("cannot load the new TLS certificate: %s", exc)
            await asyncio.sleep(TLS_RELOAD_SECONDS)

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (on uvloop's event loop where it is installed)."""
        try:
            import uvloop
        except ImportError:  # pragma: no cover - a dependency except on Windows
            asyncio.run(self._main())
        else:
            uvloop.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        first = self.servers[0][0]
        for server, sock in self.servers:
            server.server_state = first.server_state  # one set of connections, one Date header
            server.config.load()
            server.lifespan = server.config.lifespan_class(server.config)
            await server.startup(sockets=[sock])

        def stop() -> None:
            for server, _ in self.servers:
                server.should_exit = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        watchers = [loop.create_task(self._watch_tls(*watch)) for watch in self._watches]
        await first.main_loop()
        for task in watchers:
            task.cancel()
        for server, sock in self.servers:
            await server.shutdown(sockets=[sock])
        self.bridge.close()

