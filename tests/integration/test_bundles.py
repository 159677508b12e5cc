"""Sync by USB stick (#6): a kiosk and a hub reach the same database by bundles alone.

The kiosk is a local store driven by ``sync-server bundle`` (in process, click's
runner); the hub is pouchdb-server, a real Apache CouchDB 3 or this project's own server, reached with
``--url``. Afterwards the kiosk is served and a network sync must move nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import couch_dump
import dataset
import pytest
from click.testing import CliRunner
from conftest import ADMIN, Kiosk, free_port

from replication import replicate
from replication.http_peer import HttpPeer
from sync_server.cli import main
from sync_server.store import Server

pytestmark = pytest.mark.peers
DB = "cell"  # a database name without ownership rules: the shared data set is not handbook-typed


class Ends:
    """The two ends of a bundle exchange: a kiosk data dir and a hub URL with its bundle tools."""

    def __init__(self, tmp_path: Path, hub_url: str) -> None:
        self.hub_url = hub_url
        self.kiosk_dir, self.tools_dir = tmp_path / "kiosk", tmp_path / "hub-tools"
        self.kiosk_dir.mkdir()
        self.config = tmp_path / "kiosk.yaml"
        self.config.write_text(f"server:\n  data_dir: {self.kiosk_dir}\nsync:\n  cell_db: {DB}\n")
        self.runner = CliRunner()
        kiosk_card = self.kiosk("keys").output.splitlines()[-1]
        hub_card = self.hub("keys").output.splitlines()[-1]
        assert "trusting hub" in self.kiosk("trust", hub_card).output
        assert f"trusting {DB}" in self.hub("trust", kiosk_card).output

    def kiosk(self, *args: str, ok: bool = True) -> Any:
        return self._run([args[0], *args[1:], "--config", str(self.config)], ok)

    def hub(self, *args: str, ok: bool = True) -> Any:
        return self._run([args[0], *args[1:], "--data-dir", str(self.tools_dir), "--url", self.hub_url], ok)

    def _run(self, args: list[str], ok: bool) -> Any:
        result = self.runner.invoke(main, ["bundle", *args])
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    def round_trip(self, where: Path, label: str) -> None:
        up, down = where / f"{label}-up.bin", where / f"{label}-down.bin"
        self.kiosk("export", "--to", str(up))
        self.hub("import", str(up))
        self.hub("export", "--for", DB, "--to", str(down))
        self.kiosk("import", str(down))

    def serve_kiosk(self) -> Kiosk:
        """Serve the kiosk's data dir (to dump it and to sync it by network)."""
        return Kiosk(self.kiosk_dir, free_port()).start()


@pytest.fixture(params=["pouchdb-server", "our-hub", "couchdb"])
def hub_url(request: pytest.FixtureRequest) -> str:
    """The hub's root URL: pouchdb-server (admin party), CouchDB or our own server (admin account)."""
    if request.param in ("pouchdb-server", "couchdb"):
        server = request.getfixturevalue(request.param.replace("-", "_"))
        return str(server.url)
    ours = request.getfixturevalue("kiosk_factory")()
    return str(ours.url)


def _seed(ends: Ends) -> None:
    couch_dump.create_db(ends.hub_url, DB)
    couch_dump.bulk_docs(ends.hub_url, DB, dataset.SIDE_A, new_edits=False)
    server = Server(ends.kiosk_dir)
    server.create(DB).bulk_docs(copy.deepcopy(dataset.SIDE_B), new_edits=False)
    server.close()


def test_kiosk_and_hub_converge_by_bundles_alone(tmp_path: Path, hub_url: str) -> None:
    ends = Ends(tmp_path, hub_url)
    _seed(ends)
    ends.round_trip(tmp_path, "first")
    # then an edit of the same document on both sides, carried by a second round trip
    hub_rev = couch_dump.put_doc(hub_url, DB, {"_id": "plain-a", "_rev": dataset.rev(["pa1"]), "edited": "hub"})
    server = Server(ends.kiosk_dir)
    server.get(DB).bulk_docs([{"_id": "plain-a", "_rev": dataset.rev(["pa1"]), "edited": "kiosk"}])
    server.close()
    ends.round_trip(tmp_path, "second")
    kiosk = ends.serve_kiosk()
    try:
        mine, theirs = couch_dump.dump(kiosk.url, DB), couch_dump.dump(hub_url, DB)
        couch_dump.assert_same_dump(mine, theirs, digests=couch_dump.digests_comparable(hub_url))
        assert sorted(mine) == dataset.ALL_IDS
        assert len(mine["plain-a"]["leaves"]) == 2 and hub_rev in [leaf["rev"] for leaf in mine["plain-a"]["leaves"]]
        assert len(mine["conflict"]["leaves"]) == 3
        # the link comes back: the network sync moves no document the bundles carried
        cell, hub = HttpPeer(f"{kiosk.url}/{DB}"), HttpPeer(f"{hub_url}/{DB}")
        push, pull = replicate(cell, hub), replicate(hub, cell)
        cell.close()
        hub.close()
    finally:
        kiosk.stop()
    assert push.ok and pull.ok, (push.error, pull.error)
    assert (push.docs_written, pull.docs_read, pull.docs_written) == (0, 0, 0)
    assert push.start_seq != 0 and pull.start_seq != 0  # both resumed from the bundles' checkpoints
    # The push looks only at the one document the return bundle merged on the kiosk (as a
    # push after a network pull would): both peers' GET / and GET db, the target's PUT db sent
    # with them (412: it exists), both checkpoints, one _changes, one _revs_diff, no _bulk_get,
    # no _bulk_docs, the new checkpoint on both (11).
    # The pull is the kiosk's GET db and PUT db (its uuid is known), both checkpoints and one
    # empty _changes (5).
    assert push.docs_read == 1, push
    assert push.requests <= 11 and pull.requests <= 5, (push.requests, pull.requests)


def test_refused_bundles_change_nothing_and_say_why(tmp_path: Path, hub_url: str) -> None:
    ends = Ends(tmp_path, hub_url)
    _seed(ends)
    up = tmp_path / "up.bin"
    ends.kiosk("export", "--to", str(up))
    data = up.read_bytes()
    before = couch_dump.dump(hub_url, DB)
    cases = {
        "cut.bin": (data[: len(data) - 100], f"bundle is cut short (expected {len(data)} bytes, got {len(data) - 100})"),
        "flip.bin": (data[:200] + bytes([data[200] ^ 0x40]) + data[201:], "bundle signature does not verify"),
        "empty.bin": (b"", "bundle is cut short"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        result = ends.hub("import", str(tmp_path / name), ok=False)
        assert result.exit_code == 1 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    # misaddressed: the kiosk's own bundle back to the kiosk, which is not its recipient
    result = ends.kiosk("import", str(up), ok=False)
    assert result.exit_code == 1 and "meant for another recipient" in result.output, result.output
    assert couch_dump.dump(hub_url, DB) == before
    ends.hub("import", str(up))
    after = couch_dump.dump(hub_url, DB)
    replayed = ends.hub("import", str(up), ok=False)
    assert "already imported; nothing applied" in replayed.output, replayed.output
    assert couch_dump.dump(hub_url, DB) == after


def test_hub_export_for_an_unknown_cell_is_one_line(tmp_path: Path, hub_url: str) -> None:
    ends = Ends(tmp_path, hub_url)
    result = ends.hub("export", "--for", "cell-nowhere", "--to", str(tmp_path / "x.bin"), ok=False)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no trusted peer 'cell-nowhere': add its card with `sync-server bundle trust`"
    assert ADMIN  # the hub URL of our own server carries the admin account
