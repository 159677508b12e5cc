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
            return None

    class Local:
        name, remote = "local:cell", False

        def get_local(self, _id):
            return None

    cache: dict = {}
    for _ in range(3):
        assert Checkpointer("rep", Remote(), Local(), cache).read() == 0
    assert Remote.reads == 0  # the local side has no checkpoint: the start is 0 whatever the hub says


def test_push_checkpoints_the_remote_target_by_time_not_every_batch(monkeypatch):
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
    # a pull (remote source) still writes both sides every batch
    hub2, local2 = Side("hub", True), Side("local", False)
    pull = Checkpointer("rep2", hub2, local2)
    pull.read()
    for batch in range(1, 4):
        pull.write(f"{batch}-y", {})
    assert hub2.puts == 3 and local2.puts == 3
