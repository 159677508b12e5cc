"""The real CouchDB the hub-facing tests run against starts, answers as CouchDB 3.4.3, and empties between tests."""

from __future__ import annotations

from typing import Any

import httpx


def test_the_real_couchdb_answers(couchdb: Any) -> None:
    with httpx.Client(base_url=couchdb.base, auth=couchdb.auth, trust_env=False, timeout=30) as http:
        welcome = http.get("/").json()
        assert welcome["couchdb"] == "Welcome" and welcome["version"].startswith("3.")
        assert http.put("/peer-check").status_code in (201, 202)
        assert httpx.get(couchdb.base + "/peer-check", trust_env=False).status_code == 401  # admin-only by default
        assert "peer-check" in http.get("/_all_dbs").json()


def test_each_test_starts_with_an_empty_couchdb(couchdb: Any) -> None:
    with httpx.Client(base_url=couchdb.base, auth=couchdb.auth, trust_env=False, timeout=30) as http:
        assert "peer-check" not in http.get("/_all_dbs").json()
