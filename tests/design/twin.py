"""Send the same requests to a real CouchDB 3.4.3 and to our server, and compare the answers.

Both peers are real processes (fixtures ``couchdb`` and ``kiosk``). Revision ids,
sequences and other per-server values are normalised before comparing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

ADMIN = ("admin", "secret")
USER = ("bob", "bobpassword1")
_REV = re.compile(r"^\d+-[0-9a-f]{32}$")


def normalise(value: Any) -> Any:
    """Replace what legitimately differs between two servers (revs, seqs) by placeholders."""
    if isinstance(value, dict):
        return {k: ("<seq>" if k in ("seq", "last_seq", "update_seq") and v is not None else
                    "<rev>" if k in ("rev", "_rev") and isinstance(v, str) and _REV.match(v) else normalise(v))
                for k, v in value.items() if k != "ref"}  # CouchDB tags some 400s with a log reference
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


class Twin:
    """Two HTTP clients, one per server; ``both`` sends a request to each."""

    def __init__(self, couch_base: str, kiosk_base: str, db: str = "twin") -> None:
        self.db = db
        self.clients = [httpx.Client(base_url=b, trust_env=False, timeout=60) for b in (couch_base, kiosk_base)]

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def both(self, method: str, path: str, auth: tuple[str, str] | None = ADMIN, **kwargs: Any) -> list[httpx.Response]:
        path = path.replace("{db}", self.db)
        return [c.request(method, path, auth=auth, **kwargs) for c in self.clients]

    def same(self, method: str, path: str, auth: tuple[str, str] | None = ADMIN, *,
             status: int | None = None, **kwargs: Any) -> Any:
        """Send to both; assert the same status and normalised JSON body; return CouchDB's body."""
        couch, ours = self.both(method, path, auth, **kwargs)
        cb, ob = normalise(_json(couch)), normalise(_json(ours))
        keys = (kwargs.get("params") or {}).get("keys") or json.dumps((kwargs.get("json") or {}).get("keys", []))
        if isinstance(keys := json.loads(keys), list) and len(keys) > 1 and isinstance(cb, dict) and isinstance(ob, dict):
            cb.pop("offset", None), ob.pop("offset", None)  # a cluster's multi-key offset is an artefact of its shards
        assert (ours.status_code, ob) == (couch.status_code, cb), f"{method} {path}: CouchDB {couch.status_code} {cb} / ours {ours.status_code} {ob}"
        if status is not None:
            assert couch.status_code == status, cb
        return _json(couch)

    def setup_db(self, members: list[str] | None = None) -> None:
        """Create the database on both, with ``bob`` as a member (and ``bob``'s account)."""
        for client in self.clients:
            assert client.put(f"/{self.db}", auth=ADMIN).status_code in (201, 202)
            user = {"_id": f"org.couchdb.user:{USER[0]}", "name": USER[0], "password": USER[1],
                    "roles": ["editor"], "type": "user"}
            client.put("/_users", auth=ADMIN)
            assert client.put(f"/_users/{user['_id']}", json=user, auth=ADMIN).status_code in (201, 202)
            security = {"admins": {"names": [], "roles": []},
                        "members": {"names": members if members is not None else [USER[0]], "roles": []}}
            assert client.put(f"/{self.db}/_security", json=security, auth=ADMIN).status_code == 200


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@pytest.fixture
def twin(couchdb: Any, kiosk: Any) -> Iterator[Twin]:
    """A database ``twin`` on a real CouchDB and on our server, with member ``bob`` (role ``editor``).

    Test modules import it (``from twin import twin``); it is not in a conftest.py, whose
    module name the other test folders already use.
    """
    pair = Twin(couchdb.base, kiosk.base)
    pair.setup_db()
    yield pair
    pair.close()
