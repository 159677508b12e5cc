"""Bundles (#6) between a kiosk and a hub, both local stores in process: no link at all."""

from __future__ import annotations

import copy
import json
import random
import stat
from pathlib import Path
from typing import Any

import dataset
import pytest

from replication import Options, replicate
from replication.bundle import ACK_PREFIX, Side, routes_for
from replication.local_peer import LocalPeer
from sync_server.errors import BundleError
from sync_server.handbook.policy import open_store
from sync_server.jobs.courier import export_bundle, import_bundle
from sync_server.security.bundle_crypto import HEADER_BYTES, KeyStore
from sync_server.settings import Settings
from sync_server.store import Server

CELL = "cell-tq-nh-kh-c01"
LEGS: list[list[Any]] = [[CELL, CELL, "push", None], [CELL, CELL, "pull", None]]


class Place:
    """One side: a store, its bundle keys and its replica identity."""

    def __init__(self, path: Path, validate: bool = False) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.server = open_store(Settings().replace("server", data_dir=str(path))) if validate else Server(path)
        self.keys = KeyStore(path)
        self.keys.ensure_keys()
        self.side = Side.local(self.server)

    def db(self, name: str = CELL) -> Any:
        return self.server.get_or_create(name)


class Pair:
    """A kiosk and its hub that have exchanged cards."""

    def __init__(self, tmp_path: Path, validate_hub: bool = False, legs: list[list[Any]] = LEGS) -> None:
        self.kiosk, self.hub = Place(tmp_path / "kiosk"), Place(tmp_path / "hub", validate_hub)
        self.legs = legs
        self.kiosk.keys.trust(self.hub.keys.card(self.hub.side.root))
        self.hub.keys.trust(self.kiosk.keys.card(self.kiosk.side.root, CELL, legs))

    def up(self, **kw: Any) -> bytes:
        """A bundle from the kiosk for the hub."""
        return export_bundle(self.kiosk.keys, self.kiosk.side, own_legs=self.legs, own_cell=CELL, **kw).data

    def down(self) -> bytes:
        """A bundle from the hub for the kiosk."""
        return export_bundle(self.hub.keys, self.hub.side, for_cell=CELL).data

    def at_hub(self, data: bytes) -> Any:
        return import_bundle(self.hub.keys, self.hub.side, data)

    def at_kiosk(self, data: bytes) -> Any:
        return import_bundle(self.kiosk.keys, self.kiosk.side, data, own_legs=self.legs, own_cell=CELL)

    def network(self) -> list[Any]:
        """The network sync of the same legs: push, then pull."""
        kiosk, hub = LocalPeer(self.kiosk.server, CELL), LocalPeer(self.hub.server, CELL)
        return [replicate(kiosk, hub), replicate(hub, kiosk)]


def dump(server: Server, name: str = CELL) -> dict[str, list[dict]]:
    """Every document with all its leaves, revision histories and attachment data."""
    db = server.get(name)
    out = {}
    for change in db.changes(0, all_leaves=True):
        leaves = [r["ok"] for r in db.open_revs(change.id, "all", revs=True, attachments_=True)]
        out[change.id] = sorted(leaves, key=lambda d: d["_rev"])
    return out


@pytest.fixture
def pair(tmp_path: Path) -> Any:
    made = Pair(tmp_path)
    yield made
    made.kiosk.server.close()
    made.hub.server.close()


def _seed(pair: Pair) -> None:
    pair.kiosk.db().bulk_docs(copy.deepcopy(dataset.SIDE_B), new_edits=False)
    pair.hub.db().bulk_docs(copy.deepcopy(dataset.SIDE_A), new_edits=False)


def test_bundle_round_trip_converges_with_conflicts(pair: Pair) -> None:
    _seed(pair)
    up = pair.up()
    assert pair.at_hub(up).ok
    assert pair.at_kiosk(pair.down()).ok
    mine, theirs = dump(pair.kiosk.server), dump(pair.hub.server)
    assert mine == theirs and sorted(mine) == dataset.ALL_IDS
    winners = {i: pair.kiosk.db().get(i, revs=False)["_rev"] for i in mine
               if not all(leaf.get("_deleted") for leaf in mine[i])}
    assert winners == {k: v for k, v in dataset.expected_winners().items() if k in winners}
    assert len(mine["conflict"]) == 3  # both sides' edits kept: a conflict, not a lost edit


def test_bundle_round_trip_then_network_sync_moves_nothing(pair: Pair) -> None:
    _seed(pair)
    pair.at_hub(pair.up())
    pair.at_kiosk(pair.down())
    brought_down = len(dump(pair.kiosk.server)) - len({d["_id"] for d in dataset.SIDE_B} - {d["_id"] for d in dataset.SIDE_A})
    push, pull = pair.network()
    assert push.ok and pull.ok
    assert (push.docs_written, pull.docs_read, pull.docs_written) == (0, 0, 0)
    # The push only looks at what the return bundle wrote on the kiosk (as a network round
    # would after its pull); nothing the kiosk's own bundle carried is read again.
    assert push.docs_read == brought_down
    assert push.start_seq != 0 and pull.start_seq != 0


def test_one_way_bundle_then_network_push_reads_nothing(pair: Pair) -> None:
    pair.kiosk.db().bulk_docs(copy.deepcopy(dataset.SIDE_B), new_edits=False)
    pair.at_hub(pair.up())  # no bundle back yet: the hub adopted the kiosk's session
    push = replicate(LocalPeer(pair.kiosk.server, CELL), LocalPeer(pair.hub.server, CELL))
    assert push.ok and push.docs_read == 0


def test_bundle_after_round_trip_carries_only_news(pair: Pair) -> None:
    _seed(pair)
    pair.at_hub(pair.up())
    pair.at_kiosk(pair.down())
    pair.kiosk.db().bulk_docs([{"_id": "new-on-kiosk", "n": 1}])
    exported = export_bundle(pair.kiosk.keys, pair.kiosk.side, own_legs=LEGS, own_cell=CELL)
    assert exported.docs == 1  # the hub's acknowledgement came back: nothing old again
    assert exported.acks == 1  # and the kiosk acknowledges the hub's pull
    assert pair.at_hub(exported.data).ok
    assert pair.hub.db().get("new-on-kiosk")["n"] == 1


def test_lost_bundle_is_carried_again_by_the_next(pair: Pair) -> None:
    pair.kiosk.db().bulk_docs([{"_id": "a"}])
    pair.up()  # this stick is lost
    pair.kiosk.db().bulk_docs([{"_id": "b"}])
    assert pair.at_hub(pair.up()).ok
    assert sorted(dump(pair.hub.server)) == ["a", "b"]


def test_bundle_imported_twice_is_refused_and_changes_nothing(pair: Pair) -> None:
    _seed(pair)
    up = pair.up()
    pair.at_hub(up)
    before = (dump(pair.hub.server), pair.hub.db().update_seq)
    with pytest.raises(BundleError, match="already imported; nothing applied"):
        pair.at_hub(up)
    assert (dump(pair.hub.server), pair.hub.db().update_seq) == before


def test_bundles_in_any_order_give_their_union(tmp_path: Path) -> None:
    states = []
    for order in ((0, 1), (1, 0)):
        pair = Pair(tmp_path / f"order{order[0]}")
        pair.kiosk.db().bulk_docs([{"_id": "a", "v": 1}])
        first = pair.up()
        rev = pair.kiosk.db().get("a")["_rev"]
        pair.kiosk.db().bulk_docs([{"_id": "a", "_rev": rev, "v": 2}, {"_id": "b"}])
        second = pair.up()
        bundles = (first, second)
        for i in order:
            assert pair.at_hub(bundles[i]).ok
        states.append(dump(pair.hub.server))
        assert dump(pair.hub.server) == dump(pair.kiosk.server)
        push = replicate(LocalPeer(pair.kiosk.server, CELL), LocalPeer(pair.hub.server, CELL))
        assert push.docs_written == 0 and push.docs_read == 0  # even the old one last leaves the checkpoint right
        pair.kiosk.server.close()
        pair.hub.server.close()
    assert states[0] == states[1]


def test_bundle_tampered_anywhere_is_refused(pair: Pair) -> None:
    _seed(pair)
    up = pair.up()
    before = pair.hub.db().update_seq
    rng = random.Random(6)
    spots = [5, 20, HEADER_BYTES - 1, HEADER_BYTES + 3, len(up) // 2, len(up) - 70, len(up) - 1]
    spots += [rng.randrange(HEADER_BYTES, len(up)) for _ in range(5)]
    for spot in spots:
        bad = bytearray(up)
        bad[spot] ^= 0x01
        with pytest.raises(BundleError) as refused:
            pair.at_hub(bytes(bad))
        assert "does not verify" in str(refused.value) or "meant for another" in str(refused.value) \
            or "unknown key" in str(refused.value) or "cut short" in str(refused.value) \
            or "unexpected bytes" in str(refused.value) or "version" in str(refused.value), (spot, refused.value)
    assert pair.hub.db().update_seq == before
    assert pair.at_hub(up).ok  # the intact bundle still goes in


def test_bundle_cut_short_is_refused_with_sizes(pair: Pair) -> None:
    _seed(pair)
    up = pair.up()
    before = pair.hub.db().update_seq
    for size in (0, 10, HEADER_BYTES, len(up) // 2, len(up) - 1):
        with pytest.raises(BundleError, match=rf"bundle is cut short \(expected .*got {size}\)"):
            pair.at_hub(up[:size])
    with pytest.raises(BundleError, match="not a sync bundle"):
        pair.at_hub(b"PK\x03\x04 a zip file")
    assert pair.hub.db().update_seq == before


def test_bundle_signed_by_unknown_key_is_refused(pair: Pair, tmp_path: Path) -> None:
    stranger = Place(tmp_path / "stranger")
    stranger.keys.trust(pair.hub.keys.card(pair.hub.side.root))
    stranger.db().bulk_docs([{"_id": "forged"}])
    forged = export_bundle(stranger.keys, stranger.side, own_legs=LEGS, own_cell=CELL).data
    with pytest.raises(BundleError, match="bundle was signed by an unknown key [0-9a-f ]+$"):
        pair.at_hub(forged)
    assert not pair.hub.server.exists(CELL)
    stranger.server.close()


def test_bundle_for_another_recipient_is_refused(pair: Pair, tmp_path: Path) -> None:
    other = Pair(tmp_path / "other")
    other.kiosk.db().bulk_docs([{"_id": "x"}])
    with pytest.raises(BundleError, match="meant for another recipient"):
        pair.at_hub(other.up())
    other.kiosk.server.close()
    other.hub.server.close()


def test_bundle_for_another_cell_is_refused(pair: Pair) -> None:
    pair.hub.db().bulk_docs([{"_id": "for-the-cell"}])
    down = pair.down()
    other_cell = "cell-tq-nh-kh-c02"
    with pytest.raises(BundleError, match=f"bundle is meant for cell {CELL}, not {other_cell}"):
        import_bundle(pair.kiosk.keys, pair.kiosk.side, down, own_legs=LEGS, own_cell=other_cell)
    assert not pair.kiosk.server.exists(CELL)


def test_kiosk_cannot_send_into_another_cells_database(pair: Pair) -> None:
    pair.kiosk.db("cell-other").bulk_docs([{"_id": "intruder"}])
    legs = [["cell-other", "cell-other", "push", None]]
    up = export_bundle(pair.kiosk.keys, pair.kiosk.side, own_legs=legs, own_cell=CELL).data
    with pytest.raises(BundleError, match="does not take from its sender"):
        pair.at_hub(up)
    assert not pair.hub.server.exists("cell-other")


def test_kiosk_key_claiming_another_cell_is_refused(pair: Pair) -> None:
    pair.kiosk.db().bulk_docs([{"_id": "x"}])
    up = export_bundle(pair.kiosk.keys, pair.kiosk.side, own_legs=LEGS, own_cell="cell-tq-nh-kh-c02").data
    with pytest.raises(BundleError, match=f"meant for cell cell-tq-nh-kh-c02, but its signer's key belongs to cell {CELL}"):
        pair.at_hub(up)


def test_bundle_goes_through_the_write_policy(tmp_path: Path) -> None:
    pair = Pair(tmp_path, validate_hub=True)
    meeting = next(d for d in _month_of_records() if d["type"] == "meeting")
    bad = {"_id": "meeting:TQ.NH.KH.C01:bad", "type": "meeting", "cell": "TQ.NH.KH.C01"}
    pair.kiosk.db().bulk_docs([meeting, bad])
    done = pair.at_hub(pair.up())
    (_, result), = done.results
    assert result.docs_written == 1 and result.doc_write_failures == 1, result.errors
    assert result.errors[0]["id"] == bad["_id"] and result.errors[0]["error"] == "forbidden"
    assert pair.hub.db().get(meeting["_id"])["place"] == meeting["place"]
    pair.kiosk.server.close()
    pair.hub.server.close()


def test_bundle_file_names_nothing_in_clear(pair: Pair) -> None:
    pair.kiosk.db().bulk_docs([{"_id": "member:TQ.NH.KH.C01:001", "name": "Nguyễn Văn An"}])
    up = pair.up()
    for secret in (CELL, "TQ.NH", "Nguy", pair.kiosk.server.uuid, pair.hub.server.uuid, "member"):
        assert secret.encode() not in up
    assert "Nguyễn".encode() not in up


def test_private_keys_are_kept_0600(pair: Pair) -> None:
    pair.up()
    for name in ("receive.pem", "sign.pem", "state.json"):
        mode = stat.S_IMODE((pair.kiosk.keys.directory / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))


def test_selector_pull_leg_uses_the_network_replication_id(tmp_path: Path) -> None:
    selector = {"audience": {"$elemMatch": {"$eq": "TQ.NH"}}}
    legs = [*LEGS, ["handbook", "handbook", "pull", selector]]
    pair = Pair(tmp_path, legs=legs)
    pair.hub.db("handbook").bulk_docs([{"_id": "article:1", "audience": ["TQ.NH"]},
                                       {"_id": "article:2", "audience": ["TQ.LB"]}])
    assert pair.at_kiosk(pair.down()).ok
    assert sorted(dump(pair.kiosk.server, "handbook")) == ["article:1"]
    again = replicate(LocalPeer(pair.hub.server, "handbook"), LocalPeer(pair.kiosk.server, "handbook"),
                      Options(selector=selector))
    assert again.ok and again.docs_read == 0
    route = routes_for(legs, pair.kiosk.side.root, pair.hub.side.root)[2]
    assert pair.kiosk.db("handbook").get_local(route.rep_id)  # the checkpoint the network sync resumes from
    ack = pair.up()
    pair.at_hub(ack)
    assert pair.hub.db("handbook").get_local(ACK_PREFIX + route.rep_id)
    pair.kiosk.server.close()
    pair.hub.server.close()


def _month_of_records(cell: str = "TQ.NH.KH.C01", members: int = 30) -> list[dict]:
    """A cell's month: 30 members, four meetings with minutes, everyone's attendance, some feedback."""
    rng = random.Random(2026)
    given = ["An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Hùng", "Lan", "Linh", "Mai"]
    docs: list[dict] = []
    for n in range(1, members + 1):
        docs.append({"_id": f"member:{cell}:{n:03d}", "type": "member", "cell": cell, "member_no": f"{n:03d}",
                     "name": f"Nguyễn Văn {rng.choice(given)}", "born": rng.randint(1940, 2000), "gender": "male",
                     "joined": "2001-05-19", "status": "active", "smartphone": True, "installed": True,
                     "registered": True, "last_active": "2026-11-20T19:30:00+07:00"})
    for day in (3, 10, 17, 24):
        meeting_id = f"meeting:{cell}:{rng.getrandbits(64):016x}"
        docs.append({"_id": meeting_id, "type": "meeting", "cell": cell, "kind": "regular",
                     "scheduled": f"2026-11-{day:02d}T19:30:00+07:00", "place": "Nhà văn hóa thôn Khuôn Hà",
                     "agenda": ["Quán triệt nghị quyết", "Kiểm điểm công tác tháng", "Phân công nhiệm vụ"],
                     "status": "held", "held_at": f"2026-11-{day:02d}T19:35:00+07:00"})
        docs.append({"_id": f"minutes:{meeting_id}", "type": "minutes", "cell": cell, "meeting": meeting_id,
                     "secretary": f"member:{cell}:001", "written_at": f"2026-11-{day + 1:02d}T09:00:00+07:00",
                     "text": "Chi bộ tổ chức sinh hoạt định kỳ. " * 20,
                     "decisions": ["Tổ chức dọn vệ sinh đường làng", "Vận động đảng viên cài đặt Sổ tay"]})
        for n in range(1, members + 1):
            docs.append({"_id": f"attendance:{meeting_id}:{n:03d}", "type": "attendance", "cell": cell,
                         "meeting": meeting_id, "member": f"member:{cell}:{n:03d}", "status": "present",
                         "checked_in_at": f"2026-11-{day:02d}T19:25:00+07:00"})
    return docs


def test_month_of_a_cells_records_is_under_100_kb(pair: Pair) -> None:
    docs = _month_of_records()
    pair.kiosk.db().bulk_docs(docs)
    exported = export_bundle(pair.kiosk.keys, pair.kiosk.side, own_legs=LEGS, own_cell=CELL)
    raw = len(json.dumps(docs, ensure_ascii=False).encode())
    assert exported.docs == len(docs) == 30 + 4 * 32
    assert len(exported.data) < 100_000, (len(exported.data), raw)
    assert pair.at_hub(exported.data).ok and pair.hub.db().doc_count == len(docs)


def test_card_pushing_outside_its_cell_is_not_trusted(pair: Pair) -> None:
    from sync_server.errors import StartupError
    from sync_server.security.bundle_crypto import Card

    card = pair.kiosk.keys.card(pair.kiosk.side.root, CELL, [[CELL, "cell-other", "push", None]])
    with pytest.raises(StartupError, match=f"the card of cell {CELL} pushes into cell-other"):
        Card.parse(card.text())


def test_cli_round_trip_between_two_local_stores(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sync_server.cli import main

    kiosk_dir, hub_dir = tmp_path / "kiosk", tmp_path / "hub"
    config = tmp_path / "kiosk.yaml"
    config.write_text(f"server:\n  data_dir: {kiosk_dir}\nsync:\n  cell_db: {CELL}\n")
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(main, ["bundle", *args])
        assert (result.exit_code == 0) == ok, (args, result.output)
        return result

    at_kiosk, at_hub = ("--config", str(config)), ("--data-dir", str(hub_dir))
    kiosk_keys = run("keys", *at_kiosk).output
    assert kiosk_keys.startswith("created bundle keys in") and f"(kiosk of {CELL})" in kiosk_keys
    assert "created" not in run("keys", *at_kiosk).output  # the keys are made once
    run("trust", run("keys", *at_hub).output.splitlines()[-1], *at_kiosk)
    run("trust", kiosk_keys.splitlines()[-1], *at_hub)
    server = Server(kiosk_dir)
    meeting = next(d for d in _month_of_records() if d["type"] == "meeting")
    server.get_or_create(CELL).bulk_docs([meeting])
    server.close()
    up, down = tmp_path / "up.bin", tmp_path / "down.bin"
    assert "1 documents" in run("export", "--to", str(up), *at_kiosk).output
    imported = run("import", str(up), *at_hub).output
    assert f"imported bundle 1 from {CELL}" in imported and "1 documents written, 0 refused - ok" in imported
    assert "0 documents" in run("export", "--for", CELL, "--to", str(down), *at_hub).output  # no echo back
    run("import", str(down), *at_kiosk)
    refused = run("import", str(down), *at_kiosk, ok=False).output
    assert refused.startswith("Error: bundle number 1 from key ") and refused.count("\n") == 1
    hub = Server(hub_dir)
    assert hub.get(CELL).get(meeting["_id"])["place"] == meeting["place"]
    hub.close()
