"""A peer over HTTP: any CouchDB-protocol database URL, or a database on a shared ``Connection``.

A ``Connection`` is one server: the link, its retries and what the server supports; an
``HttpPeer`` is one database on it (the peer the replicator takes). A job that works on many
databases of one server (the nightly pull, the kiosk's round) opens one connection and asks it
for a peer per database: one link, one uuid, one set of manners after a cut.

Frugal on the wire: one keep-alive connection, gzip-compressed request bodies,
gzip responses asked for, few headers, the server's uuid asked once. Every
request the replicator makes is idempotent (``new_edits: false`` writes, reads,
checkpoints re-read on conflict), so a dropped connection is retried on a fresh
one; after ``retries`` attempts the peer is unavailable.

Thread-safe: the replicator overlaps requests (httpx.Client is thread-safe and
pools keep-alive connections; a second request in flight opens a second one).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, unquote

import httpx

from sync_server.errors import (
    CouchError,
    NotFound,
    PeerUnavailable,
    StartupError,
    error_for,
)
from sync_server.store.selector import compile_selector

from .peer import ChangesPage, PeerInfo, Traffic

# Bodies smaller than this go uncompressed: gzip's 18-byte frame would not pay.
GZIP_MIN_BYTES = 200
# Attempts per request before the peer counts as unavailable.
DEFAULT_RETRIES = 4
# First pause between attempts (doubles each time): short, the round's back-off is the scheduler's.
RETRY_PAUSE = 0.5
# Seconds a longpoll may run past the wait we asked for before we stop reading.
LONGPOLL_GRACE = 5.0
# A kept-alive connection the server closed while idle fails the next request sent on it
# before any answer; that request is sent again at once on a fresh connection (as browsers
# and Node's agent do), at most this many times in a row (the pool may hold several such).
# On a slow link it is the rule, not the exception: Node (pouchdb-server) starts its 5 s
# keep-alive timer when it has handed a response to the kernel, and a 100 KB response takes
# longer than that to cross 2G, so the connection is closed by the time it is done.
STALE_RETRIES = 10
# Seldom needed, because connections are not lent past the server's keep-alive timeout: idle
# ones expire after KEEPALIVE_SECONDS, and when the server announces its timeout
# (``Keep-Alive: timeout=5``: Node), one whose exchange took longer than that timeout minus
# KEEPALIVE_SECONDS is closed at once: the server may have started counting as soon as it
# received the request, and the pool could lend the connection for KEEPALIVE_SECONDS more.
KEEPALIVE_SECONDS = 2.5
# Statuses that say "try again later" rather than "this request is wrong".
_TRANSIENT = {500, 502, 503, 504}


def split_url(url: str) -> tuple[str, str, tuple[str, str] | None]:
    """(server root URL, database name, credentials) from a database URL."""
    raw_path = httpx.URL(url).raw_path.decode().split("?", 1)[0].strip("/")
    if not raw_path:
        raise PeerUnavailable(f"{url}: the URL names no database")
    root, auth = _server_root(url)
    return root, unquote(raw_path), auth


def _server_root(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the server's root URL without credentials or path, the credentials) from any URL on it."""
    parsed = httpx.URL(url)
    auth = (unquote(parsed.username), unquote(parsed.password)) if parsed.username else None
    root = str(parsed.copy_with(username=None, password=None, raw_path=b"/", query=None, fragment=None)).rstrip("/")
    return root, auth


def db_path(db_name: str) -> str:
    """``/{db}``: the database name percent-encoded whole (``/`` in a name is ``%2F``)."""
    return "/" + quote(db_name, safe="")


def doc_path(db_name: str, doc_id: str) -> str:
    """``/{db}/{id}`` as CouchDB expects it: ``_design/`` and ``_local/`` stay literal.

    CouchDB 3.4 answers a GET of ``/db/_design%2Fname`` with 301 to ``/db/_design/name``
    (chttpd_db.erl: "Special case to enable using an unencoded slash in the URL of design
    docs"); PouchDB keeps the prefix literal too (its ``encodeDocId``). The rest of the id is
    encoded whole, so an id holding ``/`` or ``?`` names one document.
    """
    for prefix in ("_design/", "_local/"):
        if doc_id.startswith(prefix):
            return f"{db_path(db_name)}/{prefix}{quote(doc_id[len(prefix):], safe='')}"
    return f"{db_path(db_name)}/{quote(doc_id, safe='')}"


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate checks for HTTPS peers: always on; against ``ca_bundle`` (a province's own CA) when given.

    :raises StartupError: when the CA bundle cannot be read.
    """
    if ca_bundle is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"cannot read the CA bundle {ca_bundle}: {exc}") from None


class Connection:
    """One CouchDB-protocol server over HTTP: the link to it, shared by every database on it.

    Holds the keep-alive connections, the credentials, the retries, the server's uuid and what
    it turned out to support, and the link's manners: after a cut, a request that has the link to
    itself holds back the others, and attachments from a server that cannot resume them come one
    after the other, whichever database they are in. ``peer(db)`` is one of its databases;
    root-level calls (``/_users``, ``_security``, a document by path) go through ``request``.
    """

    def __init__(self, url: str, *, timeout: float = 60.0, retries: int = DEFAULT_RETRIES,
                 transport: httpx.BaseTransport | None = None, ca_bundle: str | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        """:param url: the server's root (credentials may be in it, or in ``auth``); a path is ignored."""
        self.root, url_auth = _server_root(url)
        self.name = self.root
        self.retries = retries
        self.traffic = Traffic()  # everything on this link: every peer's requests and the root-level ones
        self.uuid: str | None = None  # asked once, by the first peer's info()
        self.gzip_bodies = True
        self.has_bulk_get = True
        self.server_selector = True
        # False for a server whose attachments do not resume with Range (pouchdb-server 4.2 sends
        # them whole): a broken transfer starts again from byte 0, so they cross the link one
        # after the other (see _Relay), never several stretched over a cut.
        self.resumes_attachments = True
        self._relay = _Relay()
        self._gate = _Gate()
        self._count_lock = threading.Lock()
        self._client = httpx.Client(
            base_url=self.root, auth=auth or url_auth, transport=transport, trust_env=False,
            verify=tls_context(ca_bundle), timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            headers={"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "hbsync/1"},
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        )

    def peer(self, db_name: str) -> HttpPeer:
        """The database ``db_name`` on this server, over this connection (closing it leaves the connection open)."""
        return HttpPeer(self, db_name)

    def welcome(self, traffic: Traffic | None = None) -> dict[str, Any]:
        """``GET /``: the server's uuid and vendor, kept for every peer on this connection.

        :raises PeerUnavailable: when the server cannot be reached.
        """
        welcome = self.request("GET", "/", traffic=traffic)
        # express-pouchdb (pouchdb-server 4.2) has no _selector filter on _changes, and an
        # unknown filter crashes it: filter on our side for it (CouchDB 2+ has the filter).
        self.server_selector = "express-pouchdb" not in welcome
        self.resumes_attachments = "express-pouchdb" not in welcome
        self.uuid = str(welcome.get("uuid") or "")
        return welcome

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                headers: dict | None = None, ok: tuple[int, ...] = (200, 201, 202),
                traffic: Traffic | None = None) -> Any:
        """Send one request with retries; return the parsed JSON body.

        :param traffic: where its bytes are counted besides the connection's own (a peer's).
        :raises CouchError: the server's own error; PeerUnavailable when it cannot be reached.
        """
        response = self._send(method, path, params, body, headers, traffic or self.traffic)
        if response.status_code in ok:
            return response.json() if response.content else None
        raise self._error(response)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, params: dict | None, body: Any, headers: dict | None,
              traffic: Traffic) -> httpx.Response:
        content, extra = self._encode(body)
        extra.update(headers or {})
        pause = RETRY_PAUSE
        failure: Exception | None = None
        broke = False  # an attempt broke off in the middle of its answer: the link was up
        for attempt in range(self.retries + 1):
            # After a cut, the requests it broke are sent again one at a time, each with the link to
            # itself: all at once, each would take as long as all of them and might never fit
            # between two cuts (2G cut every 20 s, bench/LINKS.md). New requests wait meanwhile.
            alone = self._gate.alone() if isinstance(failure, httpx.TransportError) else self._gate.opened()
            try:
                with alone:
                    response = _again_if_stale(lambda: self._exchange(method, path, params, content, extra))
            except httpx.TransportError as exc:
                failure = exc
                broke = broke or isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError))
            else:
                self._count(response, content, traffic)
                if response.status_code == 415 and "Content-Encoding" in extra:
                    self.gzip_bodies = False  # this server refuses gzip bodies: send them plain from now on
                    return self._send(method, path, params, body, headers, traffic)
                if response.status_code not in _TRANSIENT:
                    return response
                failure = self._error(response)
            if attempt < self.retries:
                time.sleep(pause)
                pause *= 2
        error = ResponseBroke if broke else PeerUnavailable
        raise error(f"{self.name}: {method} {path} failed after {self.retries + 1} attempts: {failure}")

    def _exchange(self, method: str, path: str, params: dict | None, content: bytes | None,
                  headers: dict[str, str]) -> httpx.Response:
        """One request, its answer read whole; its connection dropped if the server may be closing it."""
        started = time.monotonic()
        request = self._client.build_request(method, path, params=params, content=content, headers=headers)
        response = self._client.send(request, stream=True)
        try:
            response.read()
            _drop_if_closing(response, started)
        finally:
            response.close()
        return response

    def _encode(self, body: Any) -> tuple[bytes | None, dict[str, str]]:
        if body is None:
            return None, {}
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.gzip_bodies and len(raw) >= GZIP_MIN_BYTES:
            headers["Content-Encoding"] = "gzip"
            raw = gzip.compress(raw, 6, mtime=0)
        return raw, headers

    def _count(self, response: httpx.Response, content: bytes | None, traffic: Traffic) -> None:
        request = response.request
        head = len(request.method) + len(request.url.raw_path) + 12
        head += sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
        received = 17 + sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + response.num_bytes_downloaded
        sent = head + len(content or b"")
        with self._count_lock:
            for counter in self._counters(traffic):
                counter.bytes_sent += sent
                counter.bytes_received += received
                counter.requests += 1

    def _count_received(self, traffic: Traffic, count: int) -> None:
        with self._count_lock:
            for counter in self._counters(traffic):
                counter.bytes_received += count

    def _counters(self, traffic: Traffic) -> tuple[Traffic, ...]:
        return (traffic,) if traffic is self.traffic else (self.traffic, traffic)

    def _error(self, response: httpx.Response) -> CouchError:
        try:
            body = response.json()
            return error_for(str(body["error"]), str(body.get("reason", "")), response.status_code)
        except (ValueError, KeyError, TypeError):
            return error_for("unknown_error", response.text[:200] or response.reason_phrase, response.status_code)


class HttpPeer:
    """A CouchDB-protocol database: at a URL (credentials may be in it) over a connection of its own,
    or ``db_name`` on a shared ``Connection`` (``connection.peer(db_name)``)."""

    def __init__(self, url: str | Connection, db_name: str | None = None, *, timeout: float = 60.0,
                 retries: int = DEFAULT_RETRIES, transport: httpx.BaseTransport | None = None,
                 ca_bundle: str | None = None) -> None:
        """:param url: a database URL, whose connection the peer opens and closes; or a connection,
            with ``db_name`` (the options are the connection's then)."""
        if isinstance(url, Connection):
            if db_name is None:
                raise TypeError("HttpPeer(connection, db_name): which database?")
            self.connection, self._owns_connection = url, False
        else:
            if db_name is not None:
                raise TypeError("HttpPeer(url): the URL names the database")
            root, db_name, auth = split_url(url)
            self.connection = Connection(root, timeout=timeout, retries=retries, transport=transport,
                                         ca_bundle=ca_bundle, auth=auth)
            self._owns_connection = True
        self.db_name = db_name
        self.root = self.connection.root
        self.name = f"{self.root}/{db_name}"
        self.remote = True
        self.traffic = Traffic()
        self._db_path = db_path(db_name)
        self._exists = False

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                headers: dict | None = None, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        """``Connection.request``, its bytes counted in this peer's traffic."""
        return self.connection.request(method, path, params=params, body=body, headers=headers, ok=ok,
                                       traffic=self.traffic)

    # -- the protocol ----------------------------------------------------------

    def info(self, create: bool = False) -> PeerInfo:
        """``GET /`` (once per connection) and ``GET db`` (once per peer), with ``create`` also ``PUT db``: all at once.

        They go out together on separate connections, so they cost one round trip,
        and the replication's next requests find connections open (a new one costs a
        round trip of its own). ``PUT db`` does not wait for a 404 of ``GET db``: it
        answers 412 when the database exists (CouchDB's "file_exists"), and when it is
        refused (a member may not create databases) ``GET db`` still says whether it
        exists. ``extra["created"]`` says the database was created just now: it then
        holds no checkpoint worth asking for.
        """
        seq = None
        extra: dict[str, Any] = {}
        server = self.connection
        if server.uuid is None or create and not self._exists:
            asks: dict[str, Callable[[], Any]] = {"db": lambda: self.request("GET", self._db_path)}
            if server.uuid is None:
                asks["welcome"] = lambda: server.welcome(self.traffic)
            if create and not self._exists:
                asks["create"] = lambda: self.request("PUT", self._db_path, ok=(201, 202, 412))
            got = _together(asks)
            if isinstance(got.get("welcome"), BaseException):
                raise got["welcome"]
            seq, created = self._db_state(got["db"], got.get("create"), create)
            if created:
                extra["created"] = True
        identity = f"{server.uuid}/{self.db_name}" if server.uuid else self.name
        return PeerInfo(identity, seq, extra)

    def _db_state(self, db: Any, made: Any, create: bool) -> tuple[Any, bool]:
        """(update_seq or None, created now) from the answers to ``GET db`` and ``PUT db``."""
        seq = db.get("update_seq") if isinstance(db, dict) else None
        if create:
            if made is not None and not isinstance(made, BaseException):
                self._exists = True  # asked once per peer: a kiosk's idle round must stay cheap
                # 412: it was there already (or someone else created it meanwhile): it may hold a checkpoint
                return seq, not (isinstance(made, dict) and made.get("error"))
            if isinstance(db, dict):
                self._exists = True  # there, though we may not create databases
                return seq, False
            raise made if isinstance(made, BaseException) else db
        if isinstance(db, CouchError):
            return None, False  # only a warm-up for a source: its _changes reports the problem
        if isinstance(db, BaseException):
            raise db
        return seq, False

    def changes(self, since: Any, limit: int, *, doc_ids: list[str] | None = None,
                selector: dict | None = None, wait: float = 0.0) -> ChangesPage:
        params: dict[str, Any] = {"style": "all_docs", "since": since if isinstance(since, str) else json.dumps(since),
                                  "limit": limit}
        if wait > 0:
            # no heartbeat: in CouchDB a heartbeat overrides the timeout and the poll never ends
            params.update(feed="longpoll", timeout=int(wait * 1000))
        body: dict[str, Any] | None = None
        if doc_ids is not None:
            params["filter"], body = "_doc_ids", {"doc_ids": doc_ids}
        elif selector is not None and self.connection.server_selector:
            params["filter"], body = "_selector", {"selector": selector}
        elif selector is not None:
            params["include_docs"] = "true"
        try:
            if wait > 0 and body is None:
                result = self._longpoll(params, wait)
                if result is None:  # the peer kept the poll open past its timeout: nothing new
                    return ChangesPage([], since, 0)
            else:
                result = self.request("POST" if body else "GET", self._db_path + "/_changes", params=params, body=body)
        except CouchError as exc:
            if params.get("filter") != "_selector" or exc.status not in (400, 404):
                raise
            # pouchdb-server 4.2 has no _selector filter on _changes (CouchDB 3 has):
            # filter on our side, at the cost of the documents' bytes.
            self.connection.server_selector = False
            return self.changes(since, limit, selector=selector, wait=wait)
        rows = [r for r in result["results"] if "id" in r]
        if "include_docs" in params:
            match = compile_selector(selector or {})
            rows = [{k: v for k, v in r.items() if k != "doc"} for r in rows if r.get("doc") and match(r["doc"])]
        return ChangesPage(rows, result.get("last_seq"), result.get("pending"))

    def _longpoll(self, params: dict[str, Any], wait: float) -> Any:
        """A longpoll ``_changes`` read with a deadline of our own.

        pouchdb-server 4.2 ignores ``timeout`` and keeps the poll open with blank
        lines, so a read timeout never fires: stop reading at the deadline and
        call it "no changes" (None). A dropped connection raises as usual.
        """
        deadline = time.monotonic() + wait + LONGPOLL_GRACE
        client = self.connection._client
        timeout = httpx.Timeout(wait + LONGPOLL_GRACE, connect=client.timeout.connect)
        body = bytearray()
        try:
            with client.stream("GET", self._db_path + "/_changes", params=params, timeout=timeout) as response:
                for chunk in response.iter_bytes():
                    body += chunk
                    if time.monotonic() > deadline:
                        return None
                self.connection._count(response, None, self.traffic)
                if response.status_code != 200:
                    raise error_for(*_error_fields(bytes(body), response))
        except httpx.ReadTimeout:
            return None  # silent past the deadline (a gzip stream holds back the blank lines)
        except httpx.TransportError as exc:
            raise PeerUnavailable(f"{self.name}: longpoll _changes: {exc}") from None
        return json.loads(body)

    def revs_diff(self, revs: dict[str, list[str]]) -> dict[str, dict]:
        return self.request("POST", self._db_path + "/_revs_diff", body=revs) if revs else {}

    def bulk_get(self, wanted: list[dict], attachments: bool = False) -> list[dict]:
        if not wanted:
            return []
        if self.connection.has_bulk_get:
            params = {"revs": "true", "latest": "true", **({"attachments": "true"} if attachments else {})}
            try:
                result = self.request("POST", self._db_path + "/_bulk_get", params=params, body={"docs": wanted})
                return [d["ok"] for r in result["results"] for d in r["docs"] if "ok" in d]
            except ResponseBroke:
                if len(wanted) == 1 or not self.connection.retries:  # retries=0: fail fast, whatever the cause
                    raise
                # The link stays up, but not as long as this answer takes: ask for it in halves.
                half = len(wanted) // 2
                return self.bulk_get(wanted[:half], attachments) + self.bulk_get(wanted[half:], attachments)
            except CouchError as exc:
                if exc.status not in (400, 404, 405, 501):
                    raise
                self.connection.has_bulk_get = False  # an older server: ask open_revs one document at a time
        return [doc for item in wanted for doc in self._open_revs(item, attachments)]

    def _open_revs(self, item: dict, attachments: bool) -> list[dict]:
        params = {"open_revs": json.dumps([item["rev"]]), "revs": "true", "latest": "true"}
        if attachments:
            params.update(attachments="true", atts_since=json.dumps(item.get("atts_since") or []))
        results = self.request("GET", doc_path(self.db_name, item["id"]), params=params)
        return [r["ok"] for r in results if "ok" in r]

    def attachment(self, doc_id: str, rev: str, name: str, offset: int = 0) -> bytes:
        """Attachment data from ``offset`` on, resuming with ``Range`` when a transfer breaks."""
        path = f"{doc_path(self.db_name, doc_id)}/{quote(name, safe='/')}"
        data = bytearray()
        failure: Exception | None = None
        # Retries included: others wait rather than spend their attempts while the link is down.
        server = self.connection
        relay = None if server.resumes_attachments else server._relay
        key = object()
        alone = contextlib.ExitStack()
        if relay is not None:
            relay.enter(key)
        try:
            for attempt in range(server.retries + 1):
                try:
                    start = offset + len(data)
                    data += _again_if_stale(lambda: self._attachment_part(path, rev, start, relay, key))  # noqa: B023
                    return bytes(data)
                except _Partial as exc:
                    data += exc.data  # resume after what arrived
                    failure = exc
                except httpx.TransportError as exc:
                    failure = exc
                if relay is not None and attempt == 0:
                    # Broken, and it cannot resume: it gets the link to itself until done (other
                    # requests wait to start), or shared with the batches' retries it may never
                    # fit between two cuts (a 2G link cut every 20 s: bench/LINKS.md).
                    alone.enter_context(server._gate.alone())
                if attempt < server.retries:
                    time.sleep(RETRY_PAUSE * 2**attempt)
        finally:
            alone.close()
            if relay is not None:
                relay.leave(key)
        raise PeerUnavailable(f"{self.name}: attachment {doc_id}/{name}: {failure}")

    def _attachment_part(self, path: str, rev: str, offset: int, relay: _Relay | None = None,
                         key: object = None) -> bytes:
        """One GET of an attachment from ``offset`` on (its content, decoded).

        The first attempt accepts gzip: CouchDB keeps text, JSON and XML attachments gzip-encoded
        and sends them so, a fraction of their size. A resumed one asks ``identity`` with ``Range``
        (CouchDB does not serve ranges of encoded attachments): the part of a broken gzip transfer
        that arrived is decoded, and the transfer resumes after its content.
        """
        server = self.connection
        headers = {"Accept": "*/*", "Accept-Encoding": "identity" if offset else "gzip"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        chunks = bytearray()
        raw_count = skip = 0
        decoder: Any = None
        if relay is not None:
            relay.restart(key)
        started = time.monotonic()
        try:
            with server._client.stream("GET", path, params={"rev": rev}, headers=headers) as response:
                if response.status_code not in (200, 206):
                    response.read()
                    raise server._error(response)
                skip = offset if response.status_code == 200 else 0  # a peer that ignores Range
                length = int(response.headers.get("Content-Length") or 0)
                if response.headers.get("Content-Encoding", "").strip().lower() == "gzip":
                    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
                for chunk in response.iter_raw():
                    raw_count += len(chunk)
                    chunks += decoder.decompress(chunk) if decoder is not None else chunk
                    if relay is not None:
                        relay.progress(key, length, raw_count)
                if decoder is not None:
                    chunks += decoder.flush()
                _drop_if_closing(response, started)
                server._count(response, None, self.traffic)
                if skip:
                    server.resumes_attachments = False
                return bytes(chunks[skip:])
        except zlib.error as exc:
            raise PeerUnavailable(f"{self.name}: {path}: a gzip attachment that does not decode: {exc}") from None
        except httpx.TransportError:
            if raw_count:  # keep what arrived (decoded); the caller resumes after it
                server._count_received(self.traffic, raw_count)
            if len(chunks) > skip:
                raise _Partial(bytes(chunks[skip:])) from None
            raise

    def bulk_docs(self, docs: list[dict]) -> list[dict]:
        if not docs:
            return []
        rows = self.request("POST", self._db_path + "/_bulk_docs",
                            body={"docs": [_lean(doc) for doc in docs], "new_edits": False})
        return [row for row in rows if "error" in row]

    def get_local(self, local_id: str) -> dict | None:
        try:
            return self.request("GET", doc_path(self.db_name, "_local/" + local_id))
        except NotFound:
            return None

    def put_local(self, local_id: str, doc: dict) -> str:
        return self.request("PUT", doc_path(self.db_name, "_local/" + local_id), body=doc)["rev"]

    def close(self) -> None:
        """Close the connection if the peer opened it (a shared one stays open for the others)."""
        if self._owns_connection:
            self.connection.close()


def _error_fields(body: bytes, response: httpx.Response) -> tuple[str, str, int]:
    try:
        parsed = json.loads(body)
        return str(parsed["error"]), str(parsed.get("reason", "")), response.status_code
    except (ValueError, KeyError, TypeError):
        return "unknown_error", body[:200].decode("utf-8", "replace"), response.status_code


def _drop_if_closing(response: httpx.Response, started: float) -> None:
    """Close the connection of an exchange that took so long that the server, which keeps an idle
    connection ``Keep-Alive: timeout=N`` seconds, may close it while the pool lends it (``KEEPALIVE_SECONDS``).

    Closing the stream of a connection that is not yet back in the pool makes the pool
    discard it (httpcore: a closed socket counts as readable, so expired) instead of lending it.
    """
    announced = response.headers.get("keep-alive", "")
    timeout = next((part.split("=", 1)[1].strip() for part in announced.split(",")
                    if part.strip().lower().startswith("timeout=")), None)
    try:
        expired = timeout is not None and time.monotonic() - started >= float(timeout) - KEEPALIVE_SECONDS
    except ValueError:
        return
    stream = response.extensions.get("network_stream") if expired else None
    if stream is not None:
        stream.close()


def _again_if_stale(send: Callable[[], Any]) -> Any:
    """``send()``, sent again at once while it fails on a kept-alive connection the server had
    closed (no answer at all: the request was not handled); see ``STALE_RETRIES``."""
    for _ in range(STALE_RETRIES):
        try:
            return send()
        except httpx.RemoteProtocolError as exc:
            if "without sending a response" not in str(exc):
                raise
    return send()


def _lean(doc: dict) -> dict:
    """``doc`` without ``_revisions`` when it says no more than ``_rev`` (a first revision).

    With ``new_edits: false``, CouchDB (couch_doc:from_json_obj) and PouchDB (parseDoc)
    take the path from ``_rev`` alone when ``_revisions`` is absent: for ``1-h`` that is
    ``[h]``, the same tree. Saves a revision hash per new document on the way up.
    """
    revisions = doc.get("_revisions")
    if (isinstance(revisions, dict) and revisions.get("start") == 1 and len(revisions.get("ids") or ()) == 1
            and doc.get("_rev") == f"1-{revisions['ids'][0]}"):
        return {k: v for k, v in doc.items() if k != "_revisions"}
    return doc


def _together(asks: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run the calls at once (each in its own thread but the last); each one's result or exception."""
    got: dict[str, Any] = {}

    def one(name: str) -> None:
        try:
            got[name] = asks[name]()
        except BaseException as exc:  # noqa: BLE001 - the caller decides what each failure means
            got[name] = exc

    *others, last = asks
    threads = [threading.Thread(target=one, args=(name,), name="http-peer-info", daemon=True) for name in others]
    for thread in threads:
        thread.start()
    one(last)
    for thread in threads:
        thread.join()
    return got


class ResponseBroke(PeerUnavailable):
    """A request failed every attempt, one of them broken off in the middle of its answer: the
    link comes and goes, and may stay up less long than that answer takes to arrive."""


class _Gate:
    """Lets requests start, except while one transfer has the link to itself (``alone``)."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._holder = threading.Lock()

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """Once no transfer has the link to itself."""
        self._open.wait()
        yield

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._holder:
            self._open.clear()
            try:
                yield
            finally:
                self._open.set()


class _Relay:
    """Attachment downloads from a peer that cannot resume them, relayed one after the other.

    Several at once would share the link, each taking as long as all of them together, and a
    cut would lose them all (a burst of 10 PDFs over 2G cut every 20 s then never completed).
    One at a time, but the next one is asked for when the current one is about its own wait
    for the first byte from its end, so the link does not idle for a round trip between them.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: dict[object, list[float]] = {}  # key -> [asked at, first byte at, length, received]

    def enter(self, key: object) -> None:
        with self._cond:
            while not self._free():
                self._cond.wait(0.05)
            self._active[key] = [time.monotonic(), 0.0, 0.0, 0.0]

    def restart(self, key: object) -> None:
        """A new attempt of the download ``key``: its timing starts again."""
        with self._cond:
            if key in self._active:
                self._active[key] = [time.monotonic(), 0.0, 0.0, 0.0]

    def progress(self, key: object, length: int, received: int) -> None:
        with self._cond:
            entry = self._active.get(key)
            if entry is not None:
                if not entry[1]:
                    entry[1] = time.monotonic()
                entry[2], entry[3] = float(length), float(received)

    def leave(self, key: object) -> None:
        with self._cond:
            self._active.pop(key, None)
            self._cond.notify_all()

    def _free(self) -> bool:
        if not self._active:
            return True
        if len(self._active) > 1:
            return False
        asked, first, length, received = next(iter(self._active.values()))
        elapsed = time.monotonic() - first
        if not first or not length or received <= 0 or elapsed <= 0:
            return False
        eta = (length - received) / (received / elapsed)
        return eta <= first - asked


class _Partial(httpx.TransportError):
    """A broken attachment transfer, carrying the bytes that did arrive."""

    def __init__(self, data: bytes) -> None:
        super().__init__("attachment transfer broke")
        self.data = data

