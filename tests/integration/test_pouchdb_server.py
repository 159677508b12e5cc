"""pouchdb-server's own replicator moves data between it and our server, both ways.

Replication is driven by ``POST {pouchdb-server}/_replicate``, so our server talks
to a replicator it does not control, as source and as target; the dumps of both
databases (tests/peers/couch_dump.py) must then be equal.
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


def replicate(pouchdb_server: Any, source: str, target: str) -> dict[str, Any]:
    """Run a one-shot replication on pouchdb-server and check it wrote every document."""
    body = {"source": source, "target": target}
    url = f"{pouchdb_server.url}/_replicate"
    response = httpx.post(url, json=body, timeout=REPLICATE_TIMEOUT, trust_env=False)
    assert response.status_code == 200, (response.status_code, response.text)
    result: dict[str, Any] = response.json()
    assert result["ok"] is True, result
    assert result["doc_write_failures"] == 0, result
    return result


def test_pouchdb_server_pulls_from_kiosk(kiosk: Any, pouchdb_server: Any) -> None:
    couch_dump.create_db(kiosk.url, DB)
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_A + dataset.SIDE_B, new_edits=False)
    couch_dump.create_db(pouchdb_server.url, DB)
    result = replicate(pouchdb_server, f"{kiosk.url}/{DB}", f"{pouchdb_server.url}/{DB}")
    assert result["docs_written"] == len(dataset.SIDE_A + dataset.SIDE_B)
    couch_dump.assert_same_dump(couch_dump.dump(kiosk.url, DB), couch_dump.dump(pouchdb_server.url, DB))


def test_pouchdb_server_pushes_to_kiosk(kiosk: Any, pouchdb_server: Any) -> None:
    couch_dump.create_db(pouchdb_server.url, DB)
    couch_dump.bulk_docs(pouchdb_server.url, DB, dataset.SIDE_A + dataset.SIDE_B, new_edits=False)
    couch_dump.create_db(kiosk.url, DB)
    result = replicate(pouchdb_server, f"{pouchdb_server.url}/{DB}", f"{kiosk.url}/{DB}")
    assert result["docs_written"] == len(dataset.SIDE_A + dataset.SIDE_B)
    couch_dump.assert_same_dump(couch_dump.dump(kiosk.url, DB), couch_dump.dump(pouchdb_server.url, DB))


def test_pouchdb_server_syncs_both_ways(kiosk: Any, pouchdb_server: Any) -> None:
    couch_dump.create_db(pouchdb_server.url, DB)
    couch_dump.bulk_docs(pouchdb_server.url, DB, dataset.SIDE_A, new_edits=False)
    couch_dump.create_db(kiosk.url, DB)
    couch_dump.bulk_docs(kiosk.url, DB, dataset.SIDE_B, new_edits=False)
    replicate(pouchdb_server, f"{pouchdb_server.url}/{DB}", f"{kiosk.url}/{DB}")
    replicate(pouchdb_server, f"{kiosk.url}/{DB}", f"{pouchdb_server.url}/{DB}")
    mine = couch_dump.dump(kiosk.url, DB)
    couch_dump.assert_same_dump(mine, couch_dump.dump(pouchdb_server.url, DB))
    assert {i: d["winner"]["_rev"] for i, d in mine.items()} == dataset.expected_winners()


def test_pouchdb_server_replicates_between_two_kiosks(kiosk_factory: Any, pouchdb_server: Any) -> None:
    first, second = kiosk_factory(), kiosk_factory()
    couch_dump.create_db(first.url, DB)
    couch_dump.bulk_docs(first.url, DB, dataset.SIDE_A + dataset.SIDE_B, new_edits=False)
    couch_dump.create_db(second.url, DB)
    replicate(pouchdb_server, f"{first.url}/{DB}", f"{second.url}/{DB}")
    couch_dump.assert_same_dump(couch_dump.dump(second.url, DB), couch_dump.dump(first.url, DB))
