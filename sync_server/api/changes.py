"""``/{db}/_changes``: normal, longpoll and continuous feeds, with filters.

Where a longpoll or continuous feed has to wait for a change, its generator
yields a :class:`FeedWait`: the server (sync_server/api/serving.py) then waits for
the database's next write without a thread and resumes the generator, so
hundreds of phones can wait at once. Under a WSGI server that does not know
``FeedWait`` (an empty chunk to it), the generator waits on the database's
condition variable itself, holding that server's thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, request

from ..design import filters
from ..errors import BadRequest, DatabaseGone
from ..store.database import Database
from ..store.selector import compile_selector
from .access import open_db
from .design import design_function
from .http import FeedWait, doc_read_options, flag, integer, json_body, json_param, raw_body, server, settings, stream


@dataclass
class _Feed:
    """What one _changes request asked for."""

    db: Database
    since: int
    limit: int | None
    descending: bool
    all_leaves: bool
    include_docs: bool
    doc_ids: list[str] | None
    predicate: Callable[[dict], bool] | None
    timeout: float
    heartbeat: float | None
    doc_options: dict[str, bool] | None = None

    def scan(self, since: int, limit: int | None) -> _Scan:
        """The rows after ``since``, as a lazy scan that knows where it ended."""
        return _Scan(self, since, limit)


class _Scan:
    """Rows (JSON text) of one pass over the feed; ``last`` is the sequence it reached.

    Rows are produced while the response is written, so a full feed of a large
    database never sits in memory.
    """

    def __init__(self, feed: _Feed, since: int, limit: int | None) -> None:
        self.feed, self.limit, self.count = feed, limit, 0
        self.end = feed.db.update_seq
        self.last = since if not feed.descending else self.end
        self._rows = self._generate(since)

    def _generate(self, since: int) -> Iterator[str]:
        feed = self.feed
        for change in feed.db.changes(since, until=self.end, limit=self.limit, descending=feed.descending,
                                      all_leaves=feed.all_leaves, include_docs=feed.include_docs,
                                      doc_ids=feed.doc_ids, predicate=feed.predicate,
                                      doc_options=feed.doc_options):
            self.count += 1
            self.last = int(change.seq.split("-", 1)[0])
            yield change.to_json()
        if (self.limit is None or self.count < self.limit) and not feed.descending:
            self.last = self.end

    def __iter__(self) -> Iterator[str]:
        return self._rows

    def first(self) -> str | None:
        """The first row, or None (the scan is then complete)."""
        return next(self._rows, None)


def changes(name: str) -> Response:
    """``GET/POST /{db}/_changes``."""
    feed = _parse(open_db(name))
    kind = request.args.get("feed", "normal")
    if kind in ("continuous", "live"):  # CouchDB reads "live" as continuous
        return stream(_continuous(feed), live=True)
    if kind == "eventsource":
        response = stream(_continuous(feed, _EVENTSOURCE), live=True, content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        return response
    if kind == "longpoll":
        scan = feed.scan(feed.since, feed.limit)  # before the response: a missing database is a 404
        first = scan.first()
        if first is not None:  # changes already: answered at once, whole, with a length
            return stream(_document(feed, scan, first))
        return stream(_longpoll(feed, scan, first), live=True)
    if kind != "normal":
        raise BadRequest(f"Supported feeds are normal, longpoll, continuous and eventsource, not {kind[:40]!r}")
    return stream(_document(feed, feed.scan(feed.since, feed.limit)))


def _parse(db: Database) -> _Feed:
    body = json_body() if request.method == "POST" and raw_body() else {}  # CouchDB takes an empty POST
    since = request.args.get("since", body.get("since", 0))
    if request.args.get("feed") == "eventsource" and "Last-Event-ID" in request.headers:
        since = request.headers["Last-Event-ID"]  # a browser's EventSource resuming: where it stopped
    if isinstance(since, str) and since.startswith('"'):
        since = json.loads(since)
    style = request.args.get("style", "main_only")
    if style not in ("main_only", "all_docs"):
        raise BadRequest("style must be main_only or all_docs", error="query_parse_error")
    doc_ids, predicate = _filter(db, body)
    cap = settings().couchdb.changes_timeout_ms
    timeout = min(integer("timeout", cap) or 0, cap) / 1000
    heartbeat = request.args.get("heartbeat")
    beat = None if heartbeat in (None, "false") else (60.0 if heartbeat == "true" else _heartbeat(heartbeat))
    return _Feed(db, db.parse_since(since), integer("limit"), flag("descending"), style == "all_docs",
                 flag("include_docs"), doc_ids, predicate, timeout, beat or None, doc_read_options())


# A heartbeat more often than this is sent at this pace: a member's feeds asking for one every
# millisecond would keep the kiosk's one Python core busy writing newlines (five took 58% of it).
# PouchDB asks for 10 s; CouchDB's own tests wait one second for a beat.
MIN_HEARTBEAT_MS = 200


def _heartbeat(text: str) -> float:
    """``heartbeat`` in milliseconds, refused in CouchDB's words; seconds (0: none)."""
    try:
        value = int(text)
    except ValueError:
        raise BadRequest("Invalid heartbeat value. Expecting a positive integer value (in milliseconds).") from None
    if value < 0:
        raise BadRequest("The heartbeat value should be a positive integer (in milliseconds).")
    return 0.0 if value == 0 else max(value, MIN_HEARTBEAT_MS) / 1000


def _filter(db: Database, body: dict) -> tuple[list[str] | None, Any]:
    name = request.args.get("filter")
    if name is None:
        return None, None
    if name == "_doc_ids":
        ids = body.get("doc_ids", json_param("doc_ids"))
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("`doc_ids` filter parameter is not a list of doc ids.")
        return ids, None
    if name == "_selector":
        if request.method != "POST":
            raise BadRequest("Selector must be specified in POST payload")
        if not raw_body():  # an empty POST is taken without this filter; with it CouchDB parses the nothing
            raise BadRequest("invalid UTF-8 JSON")
        if not isinstance(body.get("selector"), dict):  # CouchDB's words here; _find says them otherwise
            raise BadRequest("Selector error: expected a JSON object")
        return None, compile_selector(body["selector"])
    if name == "_design":
        return None, lambda doc: str(doc.get("_id", "")).startswith("_design/")
    # CouchDB's answers for a malformed or missing filter come first (api/design.py), then QuickJS runs it.
    if name == "_view":
        view = request.args.get("view")
        if view is None:
            raise BadRequest("`view` filter parameter is not provided.")
        design_function(db, view, "views", "`view` must be of the form `designname/viewname`")
    elif name.startswith("_"):
        raise BadRequest("unknown builtin filter name")
    else:
        design_function(db, name, "filters", "`filter` must be of the form `designname/filtername`")
    return None, _design_filter(name, db)


# -- filter functions of design documents (#18): sync_server/design/filters.py ------------------

def _design_filter(name: str, db: Database) -> Any:
    """``filter=ddoc/name`` or ``filter=_view``: the design document's JavaScript decides."""
    query = request.args.to_dict()
    raw = request.get_data(as_text=True) if request.method == "POST" else None
    return filters.predicate(db, name, query, lambda: filters.request_object(
        db, request.method, [p for p in request.path.split("/") if p], query, dict(request.headers), raw,
        request.remote_addr, server().uuid))


def _document(feed: _Feed, scan: _Scan, first: str | None = None) -> Iterator[str]:
    """The body of a normal or longpoll feed, streamed row by row.

    A database deleted while its rows are written ends the list there, so the
    body stays valid JSON.
    """
    yield '{"results":[\n'
    pending = 0
    try:
        if first is None:
            first = scan.first()
        if first is not None:
            yield first
            for row in scan:
                yield ",\n" + row
        pending = 0 if feed.descending else feed.db.count_since(scan.last)  # documents, as CouchDB counts
    except DatabaseGone:
        pass
    yield f'\n],\n"last_seq":"{feed.db.seq_string(scan.last)}","pending":{pending}}}\n'


def _longpoll(feed: _Feed, scan: _Scan, first: str | None) -> Iterator[str | FeedWait]:
    """Answer at once when there are changes, else wait for the first one (or the timeout).

    A database deleted while the request waits ends the feed with what it has.
    """
    deadline = time.monotonic() + feed.timeout
    try:
        while first is None and time.monotonic() < deadline:
            if (yield from _wait(feed, scan.last, deadline)):
                scan = feed.scan(scan.last, feed.limit)
                first = scan.first()
            else:
                yield "\n"  # heartbeat
    except DatabaseGone:
        pass
    yield from _document(feed, scan, first)


def _wait(feed: _Feed, seq: int, deadline: float) -> Generator[FeedWait, None, bool]:
    """Wait for a change after ``seq``, at most until the next heartbeat; whether one came.

    Yields the wait to the server; when the server did not do it (``changed`` still
    None), waits here.
    """
    remaining = max(deadline - time.monotonic(), 0)
    wait = FeedWait(feed.db, seq, min(remaining, feed.heartbeat or remaining))
    yield wait
    if wait.changed is None:
        wait.changed = feed.db.wait_for_change(seq, wait.timeout)
    return wait.changed


@dataclass(frozen=True)
class _Lines:
    """How a live feed writes a change, a heartbeat and its end."""

    row: Callable[[str], str]
    beat: str
    end: Callable[[str], str]


_CONTINUOUS = _Lines(lambda row: row + "\n", "\n", lambda seq: json.dumps({"last_seq": seq}) + "\n")
# Server-sent events, as CouchDB writes them: the change as data, its sequence as the event id
# (a browser's EventSource sends it back as Last-Event-ID), heartbeats as events; no end line.
_EVENTSOURCE = _Lines(lambda row: f"data: {row}\nid: {json.dumps(json.loads(row)['seq'])}\n\n",
                      "event: heartbeat\ndata: \n\n", lambda seq: "")


def _continuous(feed: _Feed, lines: _Lines = _CONTINUOUS) -> Iterator[str | FeedWait]:
    """One JSON line (or event) per change; waits for more until ``timeout`` passes with nothing new."""
    sent, last = 0, feed.since
    deadline = time.monotonic() + feed.timeout
    while True:
        try:
            scan = feed.scan(last, None if feed.limit is None else feed.limit - sent)
            for row in scan:
                yield lines.row(row)
        except DatabaseGone:
            break  # deleted under the feed: it ends
        sent, last = sent + scan.count, scan.last
        if scan.count:
            deadline = time.monotonic() + feed.timeout
        if (feed.limit is not None and sent >= feed.limit) or time.monotonic() >= deadline:
            break
        if not (yield from _wait(feed, last, deadline)):
            yield lines.beat if feed.heartbeat else ""
    yield lines.end(feed.db.seq_string(last))
