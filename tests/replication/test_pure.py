"""Pure parts of the replicator: ids, back-off, checkpoint ancestry, batching."""

import random

import pytest

from replication import backoff
from replication.checkpoint import common_seq
from replication.replication_id import replication_id
from replication.replicator import _chunks, _needed


def test_replication_id_is_stable_and_ignores_doc_id_order():
    a = replication_id("u1/cell", "u2/cell", ["b", "a"])
    assert a == replication_id("u1/cell", "u2/cell", ["a", "b"])
    assert len(a) == 32
    assert a != replication_id("u2/cell", "u1/cell", ["a", "b"])  # direction matters
    assert a != replication_id("u1/cell", "u2/cell", None)
    assert replication_id("s", "t", selector={"x": 1, "y": 2}) == replication_id("s", "t", selector={"y": 2, "x": 1})


@pytest.mark.parametrize("attempt, low, high", [(1, 15, 30), (2, 30, 60), (3, 60, 120), (20, 1800, 3600)])
def test_backoff_doubles_with_jitter_up_to_the_cap(attempt, low, high):
    rand = random.Random(7)
    delays = [backoff.delay(attempt, base=30, cap=3600, rand=rand) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # jittered, not one value


def test_backoff_no_delay_before_first_failure():
    assert backoff.delay(0) == 0.0


def ck(session, seq, history):
    return {"session_id": session, "source_last_seq": seq,
            "history": [{"session_id": s, "recorded_seq": q} for s, q in history]}


@pytest.mark.parametrize(
    "source, target, expected",
    [
        (None, None, 0),
        (ck("s1", "5-x", [("s1", "5-x")]), None, 0),  # target lost its checkpoint: start over
        (ck("s2", "9-x", [("s2", "9-x"), ("s1", "5-x")]), ck("s2", "9-x", [("s2", "9-x")]), "9-x"),
        # the last source write was lost: resume from the newest shared session
        (ck("s2", "7-x", [("s2", "7-x"), ("s1", "5-x")]), ck("s3", "12-x", [("s3", "12-x"), ("s2", "8-x")]), "7-x"),
        (ck("s1", "5-x", [("s1", "5-x")]), ck("s9", "5-x", [("s9", "5-x")]), 0),  # nothing shared
    ],
)
def test_common_seq_finds_the_newest_shared_session(source, target, expected):
    assert common_seq(source, target) == expected


@pytest.mark.parametrize(
    "source, target, expected",
    [
        # a pull: the hub's checkpoint went out ahead with the run's end (12), the kiosk's
        # (local, written once a batch landed) says 7: resume from 7, not 12
        (ck("s2", "12-x", [("s2", "12-x"), ("s1", "5-x")]), ck("s2", "7-x", [("s2", "7-x"), ("s1", "5-x")]), "7-x"),
        # the run's local write never happened: the newest shared session, as the local side recorded it
        (ck("s3", "20-x", [("s3", "20-x"), ("s2", "12-x")]), ck("s2", "7-x", [("s2", "7-x"), ("s1", "5-x")]), "7-x"),
        (ck("s1", "5-x", [("s1", "5-x")]), None, 0),  # the local side has none: start over
    ],
)
def test_common_seq_reads_the_trusted_side(source, target, expected):
    assert common_seq(source, target, trusted="target") == expected


def test_chunks_bound_bytes_and_keep_a_lone_big_doc():
    docs = [{"_id": str(i), "x": "a" * 100} for i in range(10)] + [{"_id": "big", "x": "b" * 5000}]
    chunks = _chunks(docs, 500)
    assert [d["_id"] for c in chunks for d in c] == [d["_id"] for d in docs]
    assert all(len(c) <= 4 for c in chunks[:-1]) and chunks[-1] == [docs[-1]]


def test_needed_attachments_are_those_newer_than_the_targets_ancestor():
    doc = {"_id": "a", "_rev": "3-c", "_revisions": {"start": 3, "ids": ["c", "b", "a"]},
           "_attachments": {"old": {"stub": True, "revpos": 1, "digest": "d1"},
                            "new": {"stub": True, "revpos": 3, "digest": "d2"}}}
    assert _needed(doc, ["2-b"]) == ["new"]
    assert sorted(_needed(doc, [])) == ["new", "old"]
    assert sorted(_needed(doc, ["2-zzz"])) == ["new", "old"]  # not an ancestor: send everything


def test_idle_pull_with_no_checkpoint_yet_never_reads_the_remote():
    from replication.checkpoint import Checkpointer

    class Remote:
        name, remote, reads = "hub/cell", True, 0

        def get_local(self, _id):
            Remote.reads += 1

    class Local:
        name, remote = "local:cell", False

        def get_local(self, _id):
            return None

    cache: dict = {}
    for _ in range(3):
        assert Checkpointer("rep", Remote(), Local(), cache).read() == 0
    assert Remote.reads == 0  # the local side has no checkpoint: the start is 0 whatever the hub says


def test_the_remote_checkpoint_is_written_by_time_not_every_batch(monkeypatch):
    from replication import checkpoint
    from replication.checkpoint import Checkpointer

    class Side:
        def __init__(self, name, remote):
            self.name, self.remote, self.puts, self.doc = name, remote, 0, None

        def get_local(self, _id):
            return self.doc

        def put_local(self, _id, doc):
            self.puts += 1
            self.doc = dict(doc, _rev=f"0-{self.puts}")
            return self.doc["_rev"]

    clock = [0.0]
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: clock[0])
    local, hub = Side("local", False), Side("hub", True)
    ck = Checkpointer("rep", local, hub)
    ck.read()
    for batch in range(1, 11):
        clock[0] += 1.0
        ck.write(f"{batch}-x", {})
    assert local.puts == 10 and hub.puts == 1  # the hub: the first batch only, within 30 s
    ck.flush({})
    assert hub.puts == 2 and hub.doc["source_last_seq"] == "10-x"
    # a pull (remote source) likewise: resuming reads the kiosk's side
    hub2, local2 = Side("hub", True), Side("local", False)
    order: list[str] = []

    def noting(side):
        put = side.put_local
        return lambda _id, doc: order.append(side.name) or put(_id, doc)

    for side in (hub2, local2):
        side.put_local = noting(side)
    pull = Checkpointer("rep2", hub2, local2)
    pull.read()
    for batch in range(1, 4):
        pull.write(f"{batch}-y", {})
    assert hub2.puts == 1 and local2.puts == 3
    assert order[:2] == ["hub", "local"]  # the session reaches the hub before the kiosk counts on it
    # between two hubs, both every batch
    hub3, hub4 = Side("hub3", True), Side("hub4", True)
    both = Checkpointer("rep3", hub3, hub4)
    both.read()
    for batch in range(1, 4):
        both.write(f"{batch}-z", {})
    both.flush({})
    assert hub3.puts == 3 and hub4.puts == 3


def test_a_first_revision_goes_up_without_its_revisions():
    from replication.http_peer import _lean

    first = {"_id": "a", "_rev": "1-aa", "_revisions": {"start": 1, "ids": ["aa"]}, "x": 1}
    assert _lean(first) == {"_id": "a", "_rev": "1-aa", "x": 1}
    later = {"_id": "b", "_rev": "2-bb", "_revisions": {"start": 2, "ids": ["bb", "aa"]}}
    stemmed = {"_id": "c", "_rev": "3-cc", "_revisions": {"start": 3, "ids": ["cc"]}}  # its ancestors were stemmed
    odd = {"_id": "d", "_rev": "1-dd", "_revisions": {"start": 1, "ids": ["ee"]}}  # the server reports the mismatch
    assert [_lean(d) for d in (later, stemmed, odd)] == [later, stemmed, odd]


def test_failed_runs_never_push_the_shared_session_out_of_the_remote_history():
    from replication.checkpoint import HISTORY_SIZE, Checkpointer

    class Side:
        def __init__(self, name, remote):
            self.name, self.remote, self.doc = name, remote, None

        def get_local(self, _id):
            return self.doc

        def put_local(self, _id, doc):
            self.doc = dict(doc, _rev=f"0-{len(str(doc))}")
            return self.doc["_rev"]

    local, hub = Side("kiosk", False), Side("hub", True)
    first = Checkpointer("rep", hub, local)  # a pull
    first.read()
    first.write("5-x", {})
    first.flush({})
    for _ in range(HISTORY_SIZE + 2):  # runs that sent their end ahead, then failed before a batch landed
        run = Checkpointer("rep", hub, local)
        assert run.read() == "5-x"
        run.write_ahead("9-x", {})
        run.flush({})
        assert hub.doc["session_id"] == run.session_id
    assert Checkpointer("rep", hub, local).read() == "5-x"


@pytest.mark.parametrize("doc_id, path", [
    ("_design/ownership", "/cell-a/_design/ownership"),
    ("_local/abc", "/cell-a/_local/abc"),
    ("_design/a/b", "/cell-a/_design/a%2Fb"),
    ("meeting:TQ.NH:1", "/cell-a/meeting%3ATQ.NH%3A1"),
    ("a/b?c", "/cell-a/a%2Fb%3Fc"),
    ("_designer", "/cell-a/_designer"),
])
def test_doc_path_keeps_design_and_local_prefixes_literal(doc_id, path):
    from replication.http_peer import doc_path

    assert doc_path("cell-a", doc_id) == path
