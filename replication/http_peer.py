"""A peer over HTTP: any CouchDB-protocol database URL.

Frugal on the wire: one keep-alive connection, gzip-compressed request bodies,
gzip responses asked for, few headers, the server's uuid asked once. Every
request the replicator makes is idempotent (``new_edits: false`` writes, reads,
checkpoints re-read on conflict), so a dropped connection is retried on a fresh
one; after ``retries`` attempts the peer is unavailable.

Thread-safe: the replicator overlaps requests (httpx.Client is thread-safe and
pools keep-alive connections; a second request in flight opens a second one).
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, unquote

import httpx

from sync_server.errors import CouchError, NotFound, PeerUnavailable, StartupError, error_for
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
# Statuses that say "try again later" rather than "this request is wrong".
_TRANSIENT = {500, 502, 503, 504}


def split_url(url: str) -> tuple[str, str, tuple[str, str] | None]:
    """(server root URL, database name, credentials) from a database URL."""
    parsed = httpx.URL(url)
    auth = (unquote(parsed.username), unquote(parsed.password)) if parsed.username else None
    raw_path = parsed.raw_path.decode().split("?", 1)[0].strip("/")
    if not raw_path:
        raise PeerUnavailable(f"{url}: the URL names no database")
    root = str(parsed.copy_with(username=None, password=None, raw_path=b"/", query=None, fragment=None)).rstrip("/")
    return root, unquote(raw_path), auth


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


class HttpPeer:
    """A CouchDB-protocol database at a URL (credentials may be in it)."""

    def __init__(self, url: str, *, timeout: float = 60.0, retries: int = DEFAULT_RETRIES,
                 transport: httpx.BaseTransport | None = None, ca_bundle: str | None = None) -> None:
        self.root, self.db_name, auth = split_url(url)
        self.name = f"{self.root}/{self.db_name}"
        self.remote = True
        self.traffic = Traffic()
        self.retries = retries
        self._db_path = "/" + quote(self.db_name, safe="")
        self._gzip_ok = True
        self._has_bulk_get = True
        self._server_selector = True
        # False for a peer whose attachments do not resume with Range (pouchdb-server 4.2 sends
        # them whole): a broken transfer starts again from byte 0, so they cross the link one
        # after the other (see _Relay), never several stretched over a cut.
        self.resumes_attachments = True
        self._relay = _Relay()
        self._exists = False
        self._uuid: str | None = None
        self._count_lock = threading.Lock()
        self._client = httpx.Client(
            base_url=self.root, auth=auth, transport=transport, trust_env=False, verify=tls_context(ca_bundle),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            headers={"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "hbsync/1"},
        )

    # -- one request ---------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                headers: dict | None = None, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        """Send one request with retries; return the parsed JSON body.

        :raises CouchError: the peer's own error; PeerUnavailable when it cannot be reached.
        """
        response = self._send(method, path, params, body, headers)
        if response.status_code in ok:
            return response.json() if response.content else None
        raise self._error(response)

    def _send(self, method: str, path: str, params: dict | None, body: Any, headers: dict | None) -> httpx.Response:
        content, extra = self._encode(body)
        extra.update(headers or {})
        pause = RETRY_PAUSE
        for attempt in range(self.retries + 1):
            try:
                response = self._client.request(method, path, params=params, content=content, headers=extra)
            except httpx.TransportError as exc:
                failure: Exception = exc
            else:
                self._count(response, content)
                if response.status_code == 415 and "Content-Encoding" in extra:
                    self._gzip_ok = False  # this peer refuses gzip bodies: send them plain from now on
                    return self._send(method, path, params, body, headers)
                if response.status_code not in _TRANSIENT:
                    return response
                failure = self._error(response)
            if attempt < self.retries:
                time.sleep(pause)
                pause *= 2
        raise PeerUnavailable(f"{self.name}: {method} {path} failed after {self.retries + 1} attempts: {failure}")

    def _encode(self, body: Any) -> tuple[bytes | None, dict[str, str]]:
        if body is None:
            return None, {}
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self._gzip_ok and len(raw) >= GZIP_MIN_BYTES:
            headers["Content-Encoding"] = "gzip"
            raw = gzip.compress(raw, 6, mtime=0)
        return raw, headers

    def _count(self, response: httpx.Response, content: bytes | None) -> None:
        request = response.request
        head = len(request.method) + len(request.url.raw_path) + 12
        head += sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
        received = 17 + sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + response.num_bytes_downloaded
        with self._count_lock:
            self.traffic.bytes_sent += head + len(content or b"")
            self.traffic.bytes_received += received
            self.traffic.requests += 1

    def _error(self, response: httpx.Response) -> CouchError:
        try:
            body = response.json()
            return error_for(str(body["error"]), str(body.get("reason", "")), response.status_code)
        except (ValueError, KeyError, TypeError):
            return error_for("unknown_error", response.text[:200] or response.reason_phrase, response.status_code)

    # -- the protocol ----------------------------------------------------------

    def info(self, create: bool = False) -> PeerInfo:
        """``GET /`` and ``GET db`` (once per peer, together); with ``create``, ``PUT db`` on 404.

        The two GETs go out at once on two connections, so they cost one round trip,
        and the replication's next requests find a second connection open (a new one
        costs a round trip of its own). ``extra["created"]`` says the database was
        created just now: it then holds no checkpoint worth asking for.
        """
        seq = None
        extra: dict[str, Any] = {}
        if self._uuid is None or create and not self._exists:
            welcome: dict[str, Any] = {}
            asker = None
            if self._uuid is None:
                def ask() -> None:
                    try:
                        welcome.update(self.request("GET", "/"))
                    except BaseException as exc:  # noqa: BLE001 - raised again below
                        welcome["_failure"] = exc

                asker = threading.Thread(target=ask, name="http-peer-info", daemon=True)
                asker.start()
            try:
                seq, created = self._db_info(create)
                if created:
                    extra["created"] = True
            finally:
                if asker is not None:
                    asker.join()
            if "_failure" in welcome:
                raise welcome["_failure"]
            if self._uuid is None:
                self._uuid = str(welcome.get("uuid") or "")
                # express-pouchdb (pouchdb-server 4.2) has no _selector filter on _changes, and an
                # unknown filter crashes it: filter on our side for it (CouchDB 2+ has the filter).
                self._server_selector = "express-pouchdb" not in welcome
                self.resumes_attachments = "express-pouchdb" not in welcome
        identity = f"{self._uuid}/{self.db_name}" if self._uuid else self.name
        return PeerInfo(identity, seq, extra)

    def _db_info(self, create: bool) -> tuple[Any, bool]:
        """(update_seq or None, created now); a missing database is created with ``create``."""
        try:
            seq = self.request("GET", self._db_path)["update_seq"]
        except NotFound:
            if not create:
                return None, False  # the first request on it says so (a probe may ask for no database)
            made = self.request("PUT", self._db_path, ok=(201, 202, 412))
            self._exists = True
            # 412: someone else created it meanwhile; it may hold a checkpoint already
            return None, not (isinstance(made, dict) and made.get("error"))
        except CouchError:
            if create:
                raise
            return None, False  # only a warm-up for a source: let its _changes report the problem
        if create:
            self._exists = True  # asked once per peer: a kiosk's idle round must stay cheap
        return seq, False

    def changes(self, since: Any, limit: int, *, doc_ids: list[str] | None = None,
                selector: dict | None = None, wait: float = 0.0) -> ChangesPage:
        params: dict[str, Any] = {"style": "all_docs", "since": since if isinstance(since, str) else json.dumps(since),
                                  "limit": limit}
        if wait > 0:
            # no heartbeat: in CouchDB a heartbeat overrides the timeout and the poll never ends
            params.update(feed="longpoll", timeout=int(wait * 1000))
        body = None
        if doc_ids is not None:
            params["filter"], body = "_doc_ids", {"doc_ids": doc_ids}
        elif selector is not None and self._server_selector:
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
            self._server_selector = False
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
        timeout = httpx.Timeout(wait + LONGPOLL_GRACE, connect=self._client.timeout.connect)
        body = bytearray()
        try:
            with self._client.stream("GET", self._db_path + "/_changes", params=params, timeout=timeout) as response:
                for chunk in response.iter_bytes():
                    body += chunk
                    if time.monotonic() > deadline:
                        return None
                self._count(response, None)
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
        if self._has_bulk_get:
            params = {"revs": "true", "latest": "true", **({"attachments": "true"} if attachments else {})}
            try:
                result = self.request("POST", self._db_path + "/_bulk_get", params=params, body={"docs": wanted})
                return [d["ok"] for r in result["results"] for d in r["docs"] if "ok" in d]
            except CouchError as exc:
                if exc.status not in (400, 404, 405, 501):
                    raise
                self._has_bulk_get = False  # an older peer: ask open_revs one document at a time
        return [doc for item in wanted for doc in self._open_revs(item, attachments)]

    def _open_revs(self, item: dict, attachments: bool) -> list[dict]:
        params = {"open_revs": json.dumps([item["rev"]]), "revs": "true", "latest": "true"}
        if attachments:
            params.update(attachments="true", atts_since=json.dumps(item.get("atts_since") or []))
        results = self.request("GET", f"{self._db_path}/{quote(item['id'], safe='')}", params=params)
        return [r["ok"] for r in results if "ok" in r]

    def attachment(self, doc_id: str, rev: str, name: str, offset: int = 0) -> bytes:
        """Attachment data from ``offset`` on, resuming with ``Range`` when a transfer breaks."""
        path = f"{self._db_path}/{quote(doc_id, safe='')}/{quote(name, safe='/')}"
        data = bytearray()
        failure: Exception | None = None
        # Retries included: others wait rather than spend their attempts while the link is down.
        relay = None if self.resumes_attachments else self._relay
        key = object()
        if relay is not None:
            relay.enter(key)
        try:
            for attempt in range(self.retries + 1):
                try:
                    data += self._attachment_part(path, rev, offset + len(data), relay, key)
                    return bytes(data)
                except _Partial as exc:
                    data += exc.data  # resume after what arrived
                    failure = exc
                except httpx.TransportError as exc:
                    failure = exc
                if attempt < self.retries:
                    time.sleep(RETRY_PAUSE * 2**attempt)
        finally:
            if relay is not None:
                relay.leave(key)
        raise PeerUnavailable(f"{self.name}: attachment {doc_id}/{name}: {failure}")

    def _attachment_part(self, path: str, rev: str, offset: int, relay: _Relay | None = None,
                         key: object = None) -> bytes:
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        chunks = bytearray()
        if relay is not None:
            relay.restart(key)
        try:
            with self._client.stream("GET", path, params={"rev": rev}, headers=headers) as response:
                if response.status_code not in (200, 206):
                    response.read()
                    raise self._error(response)
                length = int(response.headers.get("Content-Length") or 0)
                for chunk in response.iter_raw():
                    chunks += chunk
                    if relay is not None:
                        relay.progress(key, length, len(chunks))
                self._count(response, None)
                skip = offset if response.status_code == 200 else 0  # a peer that ignores Range
                if skip:
                    self.resumes_attachments = False
                return bytes(chunks[skip:])
        except httpx.TransportError:
            if chunks:  # keep what arrived; the caller resumes after it
                with self._count_lock:
                    self.traffic.bytes_received += len(chunks)
                raise _Partial(bytes(chunks)) from None
            raise

    def bulk_docs(self, docs: list[dict]) -> list[dict]:
        if not docs:
            return []
        rows = self.request("POST", self._db_path + "/_bulk_docs", body={"docs": docs, "new_edits": False})
        return [row for row in rows if "error" in row]

    def get_local(self, local_id: str) -> dict | None:
        try:
            return self.request("GET", f"{self._db_path}/_local/{quote(local_id, safe='')}")
        except NotFound:
            return None

    def put_local(self, local_id: str, doc: dict) -> str:
        return self.request("PUT", f"{self._db_path}/_local/{quote(local_id, safe='')}", body=doc)["rev"]

    def sibling(self, db_name: str) -> HttpPeer:
        """A peer for another database of the same server, sharing this one's connection and uuid."""
        other = object.__new__(HttpPeer)
        other.__dict__.update(self.__dict__)
        other.db_name, other.name = db_name, f"{self.root}/{db_name}"
        other._db_path = "/" + quote(db_name, safe="")
        other.traffic, other._exists, other._owns_client = self.traffic, False, False
        return other

    def close(self) -> None:
        if getattr(self, "_owns_client", True):
            self._client.close()


def _error_fields(body: bytes, response: httpx.Response) -> tuple[str, str, int]:
    try:
        parsed = json.loads(body)
        return str(parsed["error"]), str(parsed.get("reason", "")), response.status_code
    except (ValueError, KeyError, TypeError):
        return "unknown_error", body[:200].decode("utf-8", "replace"), response.status_code


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

