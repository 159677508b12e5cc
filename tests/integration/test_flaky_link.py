"""A pull from a hub (pouchdb-server, a real CouchDB 3) over a link that resets every connection about every second.

The link is bench/linkproxy.py (loopback): fast enough for a quick test, with enough
latency that the pull spans several cuts. The kiosk pulls the quick cell data set
(bench/cell_dataset.py: 222 documents, two 100 KB PDF attachments; with retries, also one 80 KB
text attachment, which CouchDB stores and sends gzip-encoded: a broken gzip transfer resumes
after what it decoded) into its local store
with our replicator, re-running a failed run as the scheduler would (after a short
pause standing in for its back-off), at most ``MAX_RUNS`` times. Then:

* the kiosk's database is identical to the hub's (tests/peers/couch_dump.py dumps);
* every run after the first checkpoint started from a checkpoint, not from 0;
* a cut costs at most the batches planned: documents read over all runs <= documents +
  batch_size x pipeline x PLANNED_PER_SLOT x cuts (a failed run reads again what the
  kiosk's checkpoint did not cover: batches in flight and done after them), and bytes over the link <= 1.2 x
  an uncut pull's + one batch's bytes (the largest of the uncut pull) x cuts.

Parametrized on the per-request retries of HttpPeer: 0 (every cut that hits a
request ends the run, the scheduler re-runs) and the default (the peer retries
the request on a fresh connection, the run usually survives).
No wall-clock time is asserted.
"""

from __future__ import annotations

import base64
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import couch_dump
import httpx
import pytest
from conftest import Kiosk, free_port

from replication import Options, replicate
from replication.http_peer import DEFAULT_RETRIES, HttpPeer
from replication.local_peer import LocalPeer
from replication.replicator import PIPELINE_BATCHES, PLANNED_PER_SLOT
from sync_server.store import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import cell_dataset as dataset  # bench/cell_dataset.py
from linkproxy import LinkProxy

pytestmark = pytest.mark.peers

DB = "cell"
BATCH = 20  # small batches: several checkpoints between cuts
LINK = {"down_bps": 4_000_000, "up_bps": 2_000_000, "latency": 0.04}
# The link is cut every CUT_SHARE of the uncut pull's time (measured first: about 1.3 s), so the pull
# spans a cut or two however fast this machine is; with retries=0 a run must still get through its
# start and the batch with a PDF between two cuts (pouchdb-server ignores Range): at least CUT_MIN.
CUT_SHARE = 0.6
CUT_MIN = 1.2
DOWN_FOR = 0.2  # new connections refused this long after each cut
PAUSE = 0.3  # the scheduler's back-off before a re-run, scaled down
MAX_RUNS = 30
# Failed runs in a row without a checkpoint after which the cuts come further apart: on a loaded
# machine a run with retries=0 may not fit its start and a PDF's batch between two cuts, and then
# no run ever could. What is tested (checkpoints resume, bounded waste) holds for any spacing.
STUCK_RUNS = 4


def pull(hub_url: str, data_dir: Path, retries: int, progress: Any = None) -> Any:
    """One run of the kiosk's pull: hub URL (through the link) -> local database ``cell``."""
    server = Server(data_dir)
    source = HttpPeer(f"{hub_url}/{DB}", retries=retries)
    try:
        return replicate(source, LocalPeer(server, DB), Options(batch_size=BATCH), progress)
    finally:
        source.close()
        server.close()


def local_dump(data_dir: Path) -> dict[str, Any]:
    """Dump the kiosk's database by serving its data directory with our server."""
    kiosk = Kiosk(data_dir, free_port())
    try:
        return couch_dump.dump(kiosk.start().url, DB)
    finally:
        kiosk.stop()


@pytest.fixture(params=["pouchdb-server", "couchdb"])
def hub(request: pytest.FixtureRequest) -> Any:
    """``.url`` (admin), ``.port``, ``.through(port)``: the URL of the hub behind a link on ``port``."""
    server = request.getfixturevalue(request.param.replace("-", "_"))
    parsed = httpx.URL(server.url)
    userinfo = f"{parsed.username}:{parsed.password}@" if parsed.username else ""
    return SimpleNamespace(url=server.url, port=parsed.port, through=lambda port: f"http://{userinfo}127.0.0.1:{port}")


def with_texts(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One document gets an 80 KB text attachment that gzip shrinks by a quarter (base64 of random bytes)."""
    rand = random.Random(17)
    for doc in docs[5:6]:
        text = base64.b64encode(rand.randbytes(60_000))
        doc.setdefault("_attachments", {})["notes.txt"] = {"content_type": "text/plain",
                                                            "data": base64.b64encode(text).decode()}
    return docs


@pytest.mark.parametrize("retries", [0, DEFAULT_RETRIES])
def test_pull_over_a_link_cut_every_few_seconds(hub: Any, tmp_path: Path, retries: int) -> None:
    # With retries=0 a run must fit its first batches between two cuts (CUT_MIN): no more data there.
    docs = dataset.cell_dataset(quick=True) if retries == 0 else with_texts(dataset.cell_dataset(quick=True))
    dataset.load(hub.url, DB, docs)
    hub_dump = couch_dump.dump(hub.url, DB)

    # The reference: the same pull over the same link, never cut. One batch's bytes is the
    # link traffic between two checkpoints; the largest of them bounds what a cut may waste.
    marks: list[int] = []
    with LinkProxy(hub.port, **LINK) as link:
        def mark(_: Any) -> None:
            marks.append(link.stats.bytes_down + link.stats.bytes_up)

        uncut = pull(hub.through(link.port), tmp_path / "uncut", retries, mark)
        time.sleep(0.2)
        uncut_bytes = link.stats.bytes_down + link.stats.bytes_up
    assert uncut.ok and uncut.docs_written == len(docs), uncut.error
    print(f"uncut pull: {uncut.seconds:.2f} s")
    one_batch = max(b - a for a, b in zip([0, *marks], marks))

    runs: list[Any] = []
    checkpointed = False  # a run wrote a checkpoint: every later run must start after 0
    cut_every = max(CUT_MIN, uncut.seconds * CUT_SHARE)
    with LinkProxy(hub.port, **LINK, cut_every=cut_every, down_for=DOWN_FOR) as link:
        checkpoints = 0

        def written(_: Any) -> None:
            nonlocal checkpointed, checkpoints
            checkpointed, checkpoints = True, checkpoints + 1

        stuck = 0  # failed runs in a row that wrote no checkpoint
        while len(runs) < MAX_RUNS:
            resumes, before = checkpointed, checkpoints
            runs.append(pull(hub.through(link.port), tmp_path / "kiosk", retries, written))
            run = runs[-1]
            if resumes and (run.ok or run.docs_read):  # the run got past reading the checkpoints
                assert run.start_seq not in (0, "0", None), [(r.start_seq, r.error) for r in runs]
            if run.ok:
                break
            stuck = 0 if checkpoints > before else stuck + 1
            if stuck == STUCK_RUNS:  # this machine is too busy to fit a batch between two cuts (retries=0)
                link.cut_every, stuck = link.cut_every * 1.5, 0  # as far apart as a slower machine needs
                print(f"no checkpoint in {STUCK_RUNS} runs: cut every {link.cut_every:.2f} s")
            time.sleep(PAUSE)
        time.sleep(0.2)
        stats = link.stats.snapshot()

    errors = [r.error for r in runs if r.error]
    assert runs[-1].ok, f"no complete run in {MAX_RUNS}: {errors}"
    assert stats.cuts >= 1 and stats.connections_cut >= 1, "the link was never cut during the pull"
    couch_dump.assert_same_dump(local_dump(tmp_path / "kiosk"), hub_dump, digests=couch_dump.digests_comparable(hub.url))

    docs_read = sum(r.docs_read for r in runs)
    assert docs_read <= len(docs) + BATCH * PIPELINE_BATCHES * PLANNED_PER_SLOT * stats.cuts, (docs_read, stats.cuts, errors)
    total = stats.bytes_down + stats.bytes_up
    print(f"retries={retries}: {len(runs)} runs, {stats.cuts} cuts, docs read {docs_read} for {len(docs)}, "
          f"bytes {total} vs {uncut_bytes} uncut = {total / uncut_bytes:.2f}x")
    assert total <= 1.2 * uncut_bytes + one_batch * stats.cuts, (total, uncut_bytes, one_batch, stats, errors)
