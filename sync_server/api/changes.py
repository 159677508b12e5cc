"""``/{db}/_changes``: normal, longpoll and continuous feeds, with filters.

Longpoll and continuous requests wait on the database's condition variable,
not on a poll loop, and each holds one worker thread while it waits; the
server's thread pool is sized for many phones waiting at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, request

from ..errors import BadRequest
from ..store.database import Database
from ..store.selector import compile_selector
from .access import open_db
from .http import flag, integer, json_body, json_param, settings, stream


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

    def scan(self, since: int, limit: int | None) -> tuple[list[str], int]:
        """Rows after ``since`` (JSON text) and the sequence the scan reached."""
        end = self.db.update_seq
        rows, last = [], since if not self.descending else end
        for change in self.db.changes(since, until=end, limit=limit, descending=self.descending,
                                      all_leaves=self.all_leaves, include_docs=self.include_docs,
                                      doc_ids=self.doc_ids, predicate=self.predicate):
            rows.append(change.to_json())
            last = int(change.seq.split("-", 1)[0])
        if (limit is None or len(rows) < limit) and not self.descending:
            last = end
        return rows, last


def changes(name: str) -> Response:
    """``GET/POST /{db}/_changes``."""
    feed = _parse(open_db(name))
    kind = request.args.get("feed", "normal")
    if kind == "continuous":
        return stream(_continuous(feed), live=True)
    if kind == "longpoll":
        return stream(_longpoll(feed), live=True)
    if kind != "normal":
        raise BadRequest(f"Supported feeds are normal, longpoll and continuous, not {kind[:40]!r}")
    rows, last = feed.scan(feed.since, feed.limit)
    return stream(_document(feed, rows, last))


def _parse(db: Database) -> _Feed:
    body = json_body() if request.method == "POST" else {}
    since = request.args.get("since", body.get("since", 0))
    if isinstance(since, str) and since.startswith('"'):
        since = json.loads(since)
    style = request.args.get("style", "main_only")
    if style not in ("main_only", "all_docs"):
        raise BadRequest("style must be main_only or all_docs", error="query_parse_error")
    doc_ids, predicate = _filter(body)
    cap = settings().couchdb.changes_timeout_ms
    timeout = min(integer("timeout", cap) or 0, cap) / 1000
    heartbeat = request.args.get("heartbeat")
    beat = None if heartbeat in (None, "false") else (60.0 if heartbeat == "true" else (integer("heartbeat") or 0) / 1000)
    return _Feed(db, db.parse_since(since), integer("limit"), flag("descending"), style == "all_docs",
                 flag("include_docs"), doc_ids, predicate, timeout, beat or None)


def _filter(body: dict) -> tuple[list[str] | None, Any]:
    name = request.args.get("filter")
    if name is None:
        return None, None
    if name == "_doc_ids":
        ids = body.get("doc_ids", json_param("doc_ids"))
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("`doc_ids` filter parameter is not a list of doc ids.")
        return ids, None
    if name == "_selector":
        if "selector" not in body:
            raise BadRequest("Selector must be specified in POST payload")
        return None, compile_selector(body["selector"])
    if name == "_design":
        return None, lambda doc: str(doc.get("_id", "")).startswith("_design/")
    raise BadRequest(f"filter {name[:60]!r} is not supported here: use _doc_ids, _selector or _design")


def _document(feed: _Feed, rows: list[str], last: int) -> Iterator[str]:
    pending = 0 if feed.descending else max(feed.db.update_seq - last, 0)
    yield '{"results":[\n'
    yield ",\n".join(rows)
    yield f'\n],\n"last_seq":"{feed.db.seq_string(last)}","pending":{pending}}}\n'


def _longpoll(feed: _Feed) -> Iterator[str]:
    """Answer at once when there are changes, else wait for the first one (or the timeout)."""
    rows, last = feed.scan(feed.since, feed.limit)
    deadline = time.monotonic() + feed.timeout
    while not rows and time.monotonic() < deadline:
        if _wait(feed, last, deadline):
            rows, last = feed.scan(last, feed.limit)
        else:
            yield "\n"  # heartbeat
    yield from _document(feed, rows, last)


def _wait(feed: _Feed, seq: int, deadline: float) -> bool:
    """Wait for a change after ``seq``, at most until the next heartbeat."""
    remaining = max(deadline - time.monotonic(), 0)
    return feed.db.wait_for_change(seq, min(remaining, feed.heartbeat or remaining))


def _continuous(feed: _Feed) -> Iterator[str]:
    """One JSON line per change; waits for more until ``timeout`` passes with nothing new."""
    sent, last = 0, feed.since
    deadline = time.monotonic() + feed.timeout
    while True:
        rows, last = feed.scan(last, None if feed.limit is None else feed.limit - sent)
        for row in rows:
            yield row + "\n"
        sent += len(rows)
        if rows:
            deadline = time.monotonic() + feed.timeout
        if (feed.limit is not None and sent >= feed.limit) or time.monotonic() >= deadline:
            break
        if not _wait(feed, last, deadline):
            yield "\n" if feed.heartbeat else ""
    yield json.dumps({"last_seq": feed.db.seq_string(last)}) + "\n"
