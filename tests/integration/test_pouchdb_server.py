"""pouchdb-server's and Apache CouchDB 3's own replicators move data between them and our server, both ways.

Replication is driven by ``POST {hub}/_replicate`` (full URLs: CouchDB 3 needs them), so our
server talks to a replicator it does not control, as source and as target; the dumps of both
databases (tests/peers/couch_dump.py) must then be equal (attachment digests aside on CouchDB,
which digests the gzip encoding of text attachments).
"""

from __future__ import annotations

from typing import Any

import couch_dump
import dataset
import httpx
import pytest

pytestmark = pytest.mark.peers

DB = "cell"
REPLICATE_TIMEOUT = 120.0  # seconds: pouchdb-server answers _replicate once it has finished


@pytest.fixture(params=["pouchdb-server", "couchdb"])
def pouchdb_server(request: pytest.FixtureRequest) -> Any:
    """The hub whose replicator runs: pouchdb-server, or CouchDB (``.url`` with the admin's credentials)."""
    return request.getfixturevalue(request.param.replace("-", "_"))


def same(mine: Any, theirs: Any, hub: Any) -> None:
    couch_dump.assert_same_dump(mine, theirs, digests=couch_dump.digests_comparable(hub.url))


def replicate(pouchdb_server: Any, source: str, target: str) -> dict[str, Any]:
    """Run a one-shot replication on the hub and check it wrote every document."""
    body = {"source": source, "target": target}
    url = f"{pouchdb_server.url}/_replicate"
    response = httpx.post(url, json=body, timeout=REPLICATE_TIMEOUT, trust_env=False)
    assert response.status_code == 200, (response.status_code, response.text)
    result: dict[str, Any] = response.json()
    assert result["ok"] is True, result
    if "docs_written" not in result:  # CouchDB: the counts are in the session's history entry
        result = {**result["history"][0], "ok": True}
    assert result["doc_write_failures"] == 0, result
    return result


def test_pouchdb_server_pulls_from_kiosk(kiosk: Any, pouchdb_server: Any) -> None:
    couch_dump.create_db(kiosk.url, DB)
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_A + dataset.SIDE_B, new_edits=False)
    couch_dump.create_db(pouchdb_server.url, DB)
    result = replicate(pouchdb_server, f"{kiosk.url}/{DB}", f"{pouchdb_server.url}/{DB}")
    assert result["docs_written"] == len(dataset.SIDE_A + dataset.SIDE_B)
    same(couch_dump.dump(kiosk.url, DB), couch_dump.dump(pouchdb_server.url, DB), pouchdb_server)


def test_pouchdb_server_pushes_to_kiosk(kiosk: Any, pouchdb_server: Any) -> None:
    couch_dump.create_db(pouchdb_server.url, DB)
    couch_dump.bulk_docs(pouchdb_server.url, DB, dataset.SIDE_A + dataset.SIDE_B, new_edits=False)
    couch_dump.create_db(kiosk.url, DB)
    result = replicate(pouchdb_server, f"{pouchdb_server.url}/{DB}", f"{kiosk.url}/{DB}")
    assert result["docs_written"] == len(dataset.SIDE_A + dataset.SIDE_B)
    same(couch_dump.dump(kiosk.url, DB), couch_dump.dump(pouchdb_server.url, DB), pouchdb_server)


def test_pouchdb_server_syncs_both_ways(kiosk: Any, pouchdb_server: Any) -> None:
    couch_dump.create_db(pouchdb_server.url, DB)
    couch_dump.bulk_docs(pouchdb_server.url, DB, dataset.SIDE_A, new_edits=False)
    couch_dump.create_db(kiosk.url, DB)
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_B, new_edits=False)
    replicate(pouchdb_server, f"{pouchdb_server.url}/{DB}", f"{kiosk.url}/{DB}")
    replicate(pouchdb_server, f"{kiosk.url}/{DB}", f"{pouchdb_server.url}/{DB}")
    mine = couch_dump.dump(kiosk.url, DB)
    same(mine, couch_dump.dump(pouchdb_server.url, DB), pouchdb_server)
    assert {i: d["winner"]["_rev"] for i, d in mine.items()} == dataset.expected_winners()


def test_pouchdb_server_replicates_between_two_kiosks(kiosk_factory: Any, pouchdb_server: Any) -> None:
    first, second = kiosk_factory(), kiosk_factory()
    couch_dump.create_db(first.url, DB)
    couch_dump.bulk_docs(first.url, DB, dataset.SIDE_A + dataset.SIDE_B, new_edits=False)
    couch_dump.create_db(second.url, DB)
    replicate(pouchdb_server, f"{first.url}/{DB}", f"{second.url}/{DB}")
    couch_dump.assert_same_dump(couch_dump.dump(second.url, DB), couch_dump.dump(first.url, DB))  # both ours
