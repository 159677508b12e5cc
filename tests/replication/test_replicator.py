"""The replicator over every pairing of peer kinds, in process (no sockets).

HTTP peers talk to our app through httpx.WSGITransport; faults are injected by
wrapping that transport.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import couch_dump  # noqa: F401  (tests/peers is on sys.path via conftest)
import dataset
import httpx
import pytest

from replication import Options, replicate
from replication.http_peer import Connection, HttpPeer
from replication.local_peer import LocalPeer
from replication.replicator import PLANNED_PER_SLOT
from sync_server.app import create_app
from sync_server.errors import PeerUnavailable
from sync_server.settings import Settings
from sync_server.store import Server


class Side:
    """One replica: an app over a store, reachable as a local or an HTTP peer."""

    def __init__(self, path: Any, **couchdb: Any) -> None:
        settings = Settings().replace("server", data_dir=str(path))
        if couchdb:
            settings = settings.replace("couchdb", **couchdb)
        self.app = create_app(settings)
        self.server: Server = self.app.extensions["sync_server"]

    def peer(self, kind: str, db: str = "cell", wrap: Callable | None = None) -> Any:
        if kind == "local":
            return LocalPeer(self.server, db)
        transport: httpx.BaseTransport = httpx.WSGITransport(app=self.app)
        if wrap is not None:
            transport = wrap(transport)
        return HttpPeer(f"http://replica.test/{db}", transport=transport, retries=0)

    def db(self, name: str = "cell") -> Any:
        return self.server.get(name)

    def state(self, name: str = "cell") -> dict[str, Any]:
        """Every document's leaves with _revisions and attachment data: the tree, comparable."""
        db = self.db(name)
        out = {}
        for change in db.changes(0, all_leaves=True):
            out[change.id] = sorted(
                (r["ok"]["_rev"], r["ok"]) for r in db.open_revs(change.id, "all", revs=True, attachments_=True))
            out[change.id].append(("winner", change.revs[0]))
        return out


@pytest.fixture
def sides(tmp_path: Any) -> Callable[..., Side]:
    made: list[Side] = []

    def make(**couchdb: Any) -> Side:
        made.append(Side(tmp_path / f"side{len(made)}", **couchdb))
        return made[-1]

    yield make
    for side in made:
        side.server.close()


KINDS = ["local", "http"]


@pytest.mark.parametrize("source_kind", KINDS)
@pytest.mark.parametrize("target_kind", KINDS)
def test_sync_both_ways_converges(sides, source_kind, target_kind):
    a, b = sides(), sides()
    a.server.create("cell").bulk_docs(dataset.SIDE_A, new_edits=False)
    b.server.create("cell").bulk_docs(dataset.SIDE_B, new_edits=False)
    first = replicate(a.peer(source_kind), b.peer(target_kind))
    second = replicate(b.peer(source_kind), a.peer(target_kind))
    assert first.ok and second.ok, (first.error, second.error)
    assert a.state() == b.state()
    winners = {doc_id: a.db().changes(0, doc_ids=[doc_id]).__next__().revs[0] for doc_id in dataset.ALL_IDS}
    assert winners == dataset.expected_winners()


def test_second_run_resumes_from_checkpoint(sides):
    a, b = sides(), sides()
    a.server.create("cell").bulk_docs([{"_id": f"d{i:03}"} for i in range(150)])
    assert replicate(a.peer("http"), b.peer("http")).docs_written == 150
    a.db().bulk_docs([{"_id": "late"}])
    again = replicate(a.peer("http"), b.peer("http"))
    assert again.ok and again.docs_read == 1 and again.start_seq == a.db().seq_string(150)


class Breaking(httpx.BaseTransport):
    """Passes requests through until ``fail_after`` of them, then raises ConnectError once."""

    def __init__(self, inner: httpx.BaseTransport, fail_after: int, path: str = "") -> None:
        self.inner, self.fail_after, self.path, self.seen, self.paths = inner, fail_after, path, 0, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.path in request.url.path:
            self.seen += 1
            if self.seen == self.fail_after:
                raise httpx.ConnectError("link cut", request=request)
        return self.inner.handle_request(request)


class BreakingWrite(httpx.BaseTransport):
    """Raises ConnectError, once, on the ``_bulk_docs`` whose body contains ``marker``."""

    def __init__(self, inner: httpx.BaseTransport, marker: str) -> None:
        self.inner, self.marker, self.fired = inner, marker.encode(), False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/_bulk_docs") and not self.fired:
            body = request.read()
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.marker in body:
                self.fired = True
                raise httpx.ConnectError("link cut", request=request)
        return self.inner.handle_request(request)


@pytest.mark.parametrize("pipeline", [1, 2])
def test_cut_link_costs_at_most_the_batches_in_flight(sides, pipeline):
    a, b = sides(), sides()
    a.server.create("cell").bulk_docs([{"_id": f"d{i:03}", "n": i} for i in range(500)])
    # the third batch's _bulk_docs is cut (by content: with a pipeline, the fourth may be sent first)
    peer = b.peer("http", wrap=lambda t: BreakingWrite(t, '"d200"'))
    cut = replicate(a.peer("local"), peer, Options(pipeline=pipeline))
    assert not cut.ok and "link cut" in cut.error
    assert cut.docs_written == 200  # counted in order: the two batches before the cut one
    # batches planned after the cut one may have landed too (new_edits: false writes commute)
    assert 200 <= b.db().doc_count <= 200 + 100 * (PLANNED_PER_SLOT * pipeline - 1)
    resumed = replicate(a.peer("local"), b.peer("http"))
    assert resumed.ok and resumed.docs_read == 300  # the checkpoint is at 200: nothing before it is read again
    assert a.state() == b.state()


class CutAfterAhead(httpx.BaseTransport):
    """Cuts, once, the ``endpoint`` request whose body holds ``marker``, but only after this
    side has recorded the run's checkpoint of ``final_seq`` (sent ahead with the last batch)."""

    def __init__(self, inner: httpx.BaseTransport, endpoint: str, marker: str, final_seq: str) -> None:
        self.inner, self.endpoint, self.marker, self.final_seq = inner, endpoint, marker.encode(), final_seq
        self.ahead, self.fired = threading.Event(), False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if request.method == "PUT" and "/_local/" in request.url.path:
            response = self.inner.handle_request(request)
            response.read()
            if response.status_code == 201 and json.loads(body)["source_last_seq"] == self.final_seq:
                self.local_id = request.url.path.rsplit("/", 1)[-1]
                self.ahead.set()
            return response
        if request.url.path.endswith(self.endpoint) and self.marker in body and not self.fired:
            self.fired = True
            assert self.ahead.wait(10), "the run's last checkpoint was not sent ahead of its last batch"
            raise httpx.ConnectError("link cut", request=request)
        return self.inner.handle_request(request)


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_checkpoint_sent_ahead_of_a_cut_batch_is_not_trusted(sides, direction):
    """The remote checkpoint of the run's end goes out with its last batch; when that batch is
    cut, the next run resumes from the local checkpoint, so nothing is skipped."""
    a, b = sides(), sides()
    a.server.create("cell").bulk_docs([{"_id": f"d{i:03}", "n": i} for i in range(250)])
    final, after_two = a.db().seq_string(250), a.db().seq_string(200)
    made: list[CutAfterAhead] = []
    if direction == "push":  # kiosk (local) -> hub (HTTP); the last _bulk_docs is cut
        made.append(CutAfterAhead(httpx.WSGITransport(app=b.app), "/_bulk_docs", '"d240"', final))
        source, target = a.peer("local"), b.peer("http", wrap=lambda _: made[0])
    else:  # hub (HTTP) -> kiosk (local); the last _bulk_get is cut
        made.append(CutAfterAhead(httpx.WSGITransport(app=a.app), "/_bulk_get", '"d240"', final))
        source, target = a.peer("http", wrap=lambda _: made[0]), b.peer("local")
    cut = replicate(source, target)
    assert not cut.ok and "link cut" in cut.error and cut.docs_written == 200
    hub = b if direction == "push" else a
    assert hub.db().get_local(made[0].local_id)["source_last_seq"] == final  # ahead, for a batch never landed
    resumed = replicate(a.peer("local" if direction == "push" else "http"),
                        b.peer("http" if direction == "push" else "local"))
    assert resumed.ok and resumed.start_seq == after_two and resumed.docs_read == 50
    assert a.state() == b.state()


class Recording(httpx.BaseTransport):
    """Passes requests through, noting when each starts and ends (to see them overlap)."""

    def __init__(self, inner: httpx.BaseTransport, pause: float = 0.02) -> None:
        self.inner, self.pause, self.spans, self.lock = inner, pause, [], threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        time.sleep(self.pause)  # a little latency, so that overlapping requests do overlap
        response = self.inner.handle_request(request)
        response.read()
        with self.lock:
            self.spans.append((request.url.path.rsplit("/", 1)[-1], started, time.monotonic()))
        return response


def test_batches_overlap_and_checkpoints_stay_in_order(sides):
    hub, kiosk = sides(), sides()
    hub.server.create("cell").bulk_docs([{"_id": f"d{i:03}", "n": i} for i in range(500)])
    seen: list[Recording] = []
    source = hub.peer("http", wrap=lambda t: seen.append(Recording(t)) or seen[-1])
    checkpoints: list[str] = []
    target = kiosk.peer("local")
    real_put = target.put_local

    def put_local(local_id: str, doc: dict) -> str:
        # every batch up to the checkpoint is on the target when it is recorded
        seq = doc["source_last_seq"]
        assert kiosk.db().doc_count >= min(500, hub.db().parse_since(seq))
        checkpoints.append(seq)
        return real_put(local_id, doc)

    target.put_local = put_local
    result = replicate(source, target, Options(batch_size=50))
    assert result.ok and result.docs_written == 500 and result.batches == 10
    assert [hub.db().parse_since(s) for s in checkpoints] == sorted(hub.db().parse_since(s) for s in checkpoints)
    spans = sorted(seen[0].spans, key=lambda s: s[1])
    overlapping = sum(1 for x, y in itertools.pairwise(spans) if y[1] < x[2])
    assert overlapping >= 5, spans  # _changes, _bulk_get and checkpoints of several batches were in flight together
    assert hub.state() == kiosk.state()


def test_a_413_halves_the_batch_and_a_lone_oversized_doc_is_skipped(sides):
    a, b = sides(), sides(max_request_size=40_000)
    docs = [{"_id": f"d{i:03}", "text": "x" * 1000} for i in range(60)] + [{"_id": "huge", "text": "y" * 60_000}]
    a.server.create("cell").bulk_docs(docs)
    b.server.create("cell")
    peer = b.peer("http")
    peer.connection.gzip_bodies = False  # the limit counts decoded bytes anyway; plain bodies make sizes obvious
    result = replicate(a.peer("local"), peer, Options(batch_bytes=10_000_000))
    assert result.ok
    assert result.docs_written == 60 and b.db().doc_count == 60
    assert [(e["id"], e["error"]) for e in result.errors] == [("huge", "too_large")]


def test_refused_document_is_recorded_and_the_rest_lands(sides):
    a, b = sides(), sides(max_document_size=5_000)
    a.server.create("cell").bulk_docs([{"_id": "ok1"}, {"_id": "big", "text": "z" * 10_000}, {"_id": "ok2"}])
    result = replicate(a.peer("local"), b.peer("http"))
    assert result.ok and result.docs_written == 2 and result.doc_write_failures == 1
    assert result.errors[0]["id"] == "big" and result.errors[0]["error"] == "document_too_large"
    again = replicate(a.peer("local"), b.peer("http"))
    assert again.docs_read == 0  # recorded and skipped, not retried forever


@pytest.mark.parametrize("kind", KINDS)
def test_filtered_pull_by_selector_and_doc_ids(sides, kind):
    hub, kiosk = sides(), sides()
    hub.server.create("cell").bulk_docs([{"_id": f"a{i}", "kind": "article"} for i in range(3)]
                                        + [{"_id": f"m{i}", "kind": "meeting"} for i in range(3)])
    assert replicate(hub.peer(kind), kiosk.peer("local"), Options(selector={"kind": "article"})).docs_written == 3
    assert sorted(r["id"] for r in kiosk.db().all_docs()) == ["a0", "a1", "a2"]
    replicate(hub.peer(kind), kiosk.peer("local", "other"), Options(doc_ids=["m1", "nope"]))
    assert [r["id"] for r in kiosk.db("other").all_docs()] == ["m1"]


def big_attachment_doc(size: int) -> dict:
    data = bytes((i * 7) % 256 for i in range(size))
    return {"_id": "pdf", "_attachments": {"f.pdf": {"content_type": "application/pdf",
                                                      "data": base64.b64encode(data).decode()}}}


class CutStream(httpx.BaseTransport):
    """Cuts the first attachment download half way through its body."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.cut, self.ranges = inner, False, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/f.pdf"):
            self.ranges.append(request.headers.get("Range"))
            if not self.cut:
                self.cut = True
                body = response.read()
                return httpx.Response(response.status_code, headers=response.headers,
                                      stream=_Broken(body[: len(body) // 2]))
        return response


class _Broken(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self):
        yield self.data
        raise httpx.ReadError("connection reset")


def test_broken_attachment_download_resumes_with_range(sides):
    hub, kiosk = sides(), sides()
    doc = big_attachment_doc(600_000)
    hub.server.create("cell").bulk_docs([doc])
    cutter: list[CutStream] = []
    source = hub.peer("http", wrap=lambda t: cutter.append(CutStream(t)) or cutter[-1])
    source.connection.retries = 2
    result = replicate(source, kiosk.peer("local"))
    assert result.ok, result.error
    assert cutter[0].ranges == [None, "bytes=300000-"]
    assert kiosk.db().attachment("pdf", "f.pdf")[1] == base64.b64decode(doc["_attachments"]["f.pdf"]["data"])


def test_same_digest_is_fetched_once(sides):
    hub, kiosk = sides(), sides()
    doc = big_attachment_doc(300_000)
    data = doc["_attachments"]["f.pdf"]
    hub.server.create("cell").bulk_docs([{"_id": f"copy{i}", "_attachments": {"f.pdf": dict(data)}} for i in range(5)])
    seen: list[Breaking] = []
    source = hub.peer("http", wrap=lambda t: seen.append(Breaking(t, 0)) or seen[-1])
    assert replicate(source, kiosk.peer("local")).docs_written == 5
    downloads = [p for p in seen[0].paths if p.endswith("/f.pdf")]
    assert len(downloads) == 1


class ClusteredFeed(httpx.BaseTransport):
    """Makes our _changes look like a CouchDB 3 cluster's: seq null between seq_interval rows, replays."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/_changes"):
            return response
        import json

        body = json.loads(response.read())  # httpx has already undone any gzip
        rows = body["results"]
        if rows:
            rows = rows[:1] + rows  # a replayed change, as after a shard moved
            for row in rows[:-1]:
                row["seq"] = None
        body["results"] = rows
        body["last_seq"] = "g1AAAA" + body["last_seq"]  # still opaque to us
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")}
        return httpx.Response(response.status_code, headers=headers, json=body)


def test_null_sequences_and_replayed_changes_are_applied_once(sides, monkeypatch):
    hub, kiosk = sides(), sides()
    hub.server.create("cell").bulk_docs([{"_id": f"d{i}"} for i in range(30)])
    db = hub.db()
    real = db.parse_since
    monkeypatch.setattr(db, "parse_since",
                        lambda since: real(since[6:] if isinstance(since, str) and since.startswith("g1AAAA") else since))
    source = hub.peer("http", wrap=ClusteredFeed)
    result = replicate(source, kiosk.peer("local"), Options(batch_size=7))
    assert result.ok, result.error
    assert result.docs_written == 30 and kiosk.db().doc_count == 30
    assert str(result.last_seq).startswith("g1AAAA")
    again = replicate(hub.peer("http", wrap=ClusteredFeed), kiosk.peer("local"))
    assert again.ok and again.docs_written == 0


def test_inline_attachment_fetches_are_bounded_in_size(sides):
    hub, kiosk = sides(), sides()
    docs = []
    for i in range(10):
        data = bytes((i * 31 + j) % 256 for j in range(20_000))
        docs.append({"_id": f"doc{i}", "_attachments": {"a.bin": {"content_type": "application/octet-stream",
                                                                  "data": base64.b64encode(data).decode()}}})
    hub.server.create("cell").bulk_docs(docs)
    seen: list[Breaking] = []
    source = hub.peer("http", wrap=lambda t: seen.append(Breaking(t, 0)) or seen[-1])
    assert replicate(source, kiosk.peer("local")).docs_written == 10
    # 20 KB each, at most 64 KB of attachment data per request: 4 requests, not one of 200 KB
    assert sum(1 for p in seen[0].paths if p.endswith("/_bulk_get")) == 1 + 4
    assert kiosk.db().attachment("doc7", "a.bin")[1] == bytes((7 * 31 + j) % 256 for j in range(20_000))


def test_a_checkpoint_written_after_a_conflict_keeps_the_peers_history(sides):
    from replication.checkpoint import Checkpointer
    from sync_server.errors import Conflict

    a, b = sides(), sides()
    a.server.create("cell")
    source, target = a.peer("local"), b.peer("local")
    b.server.create("cell")
    other = {"session_id": "other", "source_last_seq": "7", "version": 1,
             "history": [{"session_id": "other", "recorded_seq": "7"}]}
    real_put, conflicts = target.put_local, []

    def put_local(local_id: str, doc: dict) -> str:
        if not conflicts:  # another replicator writes its checkpoint just before ours
            conflicts.append(real_put(local_id, dict(other)))
            raise Conflict()
        return real_put(local_id, doc)

    target.put_local = put_local
    checkpoints = Checkpointer("rep-1", source, target)
    checkpoints.read()
    checkpoints.write("3", {"docs_written": 1}, final=True)
    stored = target.get_local("rep-1")
    assert conflicts and stored["session_id"] == checkpoints.session_id
    assert [h["session_id"] for h in stored["history"]] == [checkpoints.session_id, "other"]


class Methods(httpx.BaseTransport):
    """Notes each request's method, path, start and end; answers ``refuse`` paths' PUT with 401."""

    def __init__(self, inner: httpx.BaseTransport, refuse: str | None = None) -> None:
        self.inner, self.refuse, self.spans, self.lock = inner, refuse, [], threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        time.sleep(0.05)
        if request.method == "PUT" and request.url.path == self.refuse:
            response = httpx.Response(401, json={"error": "unauthorized", "reason": "You are not a server admin."})
        else:
            response = self.inner.handle_request(request)
            response.read()
        with self.lock:
            self.spans.append((request.method, request.url.path, started, time.monotonic()))
        return response


def test_a_new_target_is_created_in_the_same_round_trip_as_the_peer_info(sides):
    a, b = sides(), sides()
    a.server.create("cell").bulk_docs([{"_id": f"d{i}"} for i in range(5)])
    made: list[Methods] = []
    result = replicate(a.peer("local"), b.peer("http", wrap=lambda t: made.append(Methods(t)) or made[-1]))
    assert result.ok and b.db().doc_count == 5
    spans = sorted(made[0].spans, key=lambda s: s[2])
    info = [s for s in spans if s[1] in ("/", "/cell")]
    assert sorted((m, p) for m, p, *_ in info) == [("GET", "/"), ("GET", "/cell"), ("PUT", "/cell")]
    assert max(s[2] for s in info) < min(s[3] for s in info)  # all three in flight at once
    # created just now: neither its checkpoint nor _revs_diff is asked; the checkpoint goes with the write
    rest = sorted((m, p.split("/")[2]) for m, p, *_ in spans if p not in ("/", "/cell"))
    assert rest == [("POST", "_bulk_docs"), ("PUT", "_local")]


def test_databases_of_one_server_share_its_connection(sides):
    """A job pulling many databases of one hub (the nightly, the kiosk's round) opens one connection:
    the uuid is asked once, each peer counts its own bytes and the connection all of them."""
    hub, here = sides(), sides()
    for name in ("alpha", "beta"):
        hub.server.create(name).bulk_docs([{"_id": f"{name}-{i}"} for i in range(3)])
    seen = Methods(httpx.WSGITransport(app=hub.app))
    with Connection("http://replica.test/", transport=seen, retries=0) as connection:
        peers = [connection.peer(name) for name in ("alpha", "beta")]
        results = [replicate(peer, LocalPeer(here.server, peer.db_name)) for peer in peers]
        peers[0].close()  # a shared connection outlives its peers
        assert connection.request("GET", "/beta")["doc_count"] == 3
    assert all(r.ok for r in results) and [here.db(n).doc_count for n in ("alpha", "beta")] == [3, 3]
    assert [p for m, p, *_ in seen.spans].count("/") == 1
    assert peers[0].traffic.requests + peers[1].traffic.requests + 1 == connection.traffic.requests == len(seen.spans)
    assert results[1].requests == peers[1].traffic.requests
    with pytest.raises(TypeError):
        HttpPeer(connection)


@pytest.mark.parametrize("exists", [True, False])
def test_a_target_that_may_not_be_created(sides, exists):
    a, b = sides(), sides()
    a.server.create("cell").bulk_docs([{"_id": "d1"}])
    if exists:
        b.server.create("cell")
    result = replicate(a.peer("local"), b.peer("http", wrap=lambda t: Methods(t, refuse="/cell")))
    if exists:  # GET db, sent with the refused PUT, says it is there: replicate into it
        assert result.ok and b.db().doc_count == 1
    else:
        assert not result.ok and result.error == "unauthorized: You are not a server admin."
        assert "cell" not in b.server.all_dbs()


def test_a_broken_download_that_cannot_resume_gets_the_link_to_itself(sides):
    """pouchdb-server sends attachments whole (no Range): once such a download broke, its retry
    runs alone, or shared with the batches' retries it might never fit between two cuts."""
    hub = sides()
    hub.server.create("cell").bulk_docs([big_attachment_doc(50_000)])
    rev = hub.db().get("pdf")["_rev"]
    events: list[str] = []
    retrying, release = threading.Event(), threading.Event()

    class Link(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner, self.tries = inner, 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if not request.url.path.endswith("/f.pdf"):
                events.append(f"{request.method} {request.url.path}")
                return self.inner.handle_request(request)
            self.tries += 1
            if self.tries == 1:  # cut half way
                body = self.inner.handle_request(request).read()
                return httpx.Response(200, stream=_Broken(body[: len(body) // 2]))
            retrying.set()
            release.wait(10)
            events.append("attachment")
            return self.inner.handle_request(request)

    peer = hub.peer("http", wrap=Link)
    peer.connection.retries, peer.connection.resumes_attachments = 2, False
    got: list[bytes] = []
    download = threading.Thread(target=lambda: got.append(peer.attachment("pdf", rev, "f.pdf")))
    download.start()
    assert retrying.wait(10)
    other = threading.Thread(target=lambda: peer.request("GET", "/cell"))
    other.start()
    time.sleep(0.3)
    assert events == []  # held back while the retry has the link
    release.set()
    download.join(10)
    other.join(10)
    assert events == ["attachment", "GET /cell"] and len(got[0]) == 50_000


def test_an_answer_too_long_for_the_link_is_asked_for_in_halves(sides):
    hub = sides()
    hub.server.create("cell").bulk_docs([{"_id": f"d{i}", "n": i} for i in range(5)])
    asked: list[int] = []

    class Short(httpx.BaseTransport):
        """A link that stays up for the answer to two documents, never more."""

        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.url.path.endswith("/_bulk_get"):
                body = request.read()
                count = len(json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)["docs"])
                asked.append(count)
                if count > 2:
                    return httpx.Response(200, stream=_Broken(response.read()[:40]))
            return response

    peer = hub.peer("http", wrap=Short)
    peer.connection.retries = 1
    wanted = [{"id": f"d{i}", "rev": hub.db().get(f"d{i}")["_rev"]} for i in range(5)]
    docs = peer.bulk_get(wanted)
    assert sorted(d["_id"] for d in docs) == [f"d{i}" for i in range(5)]
    assert asked == [5, 5, 2, 3, 3, 1, 2]  # broken twice (one retry), then asked in halves

    class Down(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

    down = hub.peer("http", wrap=lambda _: Down())
    with pytest.raises(PeerUnavailable) as raised:  # a link that is down: no splitting, one failure
        down.bulk_get(wanted)
    assert type(raised.value) is PeerUnavailable


def test_requests_broken_by_one_cut_are_sent_again_one_at_a_time(sides):
    hub = sides()
    hub.server.create("cell")
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    seen = {"n": 0}
    both_sent = threading.Barrier(2, timeout=5)

    class Cut(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            with lock:
                seen["n"] += 1
                first = seen["n"] <= 2
            if first:  # both first attempts are in flight when the cut comes
                both_sent.wait()
                raise httpx.ReadError("connection reset", request=request)
            started = time.monotonic()
            time.sleep(0.2)
            response = self.inner.handle_request(request)
            spans.append((started, time.monotonic()))
            return response

    peer = hub.peer("http", wrap=Cut)
    peer.connection.retries = 2
    threads = [threading.Thread(target=peer.request, args=("GET", "/cell")) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    first, second = sorted(spans)
    assert len(spans) == 2 and first[1] <= second[0]  # the retries did not overlap
