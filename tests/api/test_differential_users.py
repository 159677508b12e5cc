"""Differential tests of accounts and access: ``_users`` documents and ``_security`` readers, sent
to a real Apache CouchDB 3.4.3 and to our server (issue 12; see differential.py).

Where they differ on purpose it is said below: an authenticated user who is not a server admin
gets 403 here where CouchDB answers 401 (the web app reads 401 as "sign in again").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from differential import Pair
from test_differential import module_kiosk, pair  # noqa: F401 (fixtures)

pytestmark = pytest.mark.peers


@pytest.fixture
def accounts(pair: Pair) -> Iterator[dict[str, str]]:
    """Two plain accounts with passwords, made by the admin on both servers; deleted afterwards."""
    pair.kiosk.put("/_users")  # CouchDB (single node) has it from the start; ours on demand
    names = {"reader": f"r{uuid.uuid4().hex[:8]}", "other": f"o{uuid.uuid4().hex[:8]}"}
    for name in names.values():
        pair.same("PUT", f"/_users/org.couchdb.user:{name}",
                  json={"name": name, "type": "user", "roles": [], "password": "pw-" + name}, revs=False)
    yield names
    for name in names.values():
        for client in (pair.couch, pair.kiosk):
            rev = client.get(f"/_users/org.couchdb.user:{name}").json().get("_rev")
            client.delete(f"/_users/org.couchdb.user:{name}", params={"rev": rev})


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def as_user(pair: Pair, name: str | None, password: str | None = None) -> Pair:
    """The same pair of servers with ``name``'s credentials (its password "pw-<name>" unless given), or none."""
    auth = (name, password or "pw-" + name) if name else None
    clients = [httpx.Client(base_url=c.base_url, auth=auth, trust_env=False, timeout=60) for c in (pair.couch, pair.kiosk)]
    _OPEN.extend(clients)
    return Pair(clients[0], clients[1], pair.db)


@pytest.mark.parametrize("doc", [
    {"name": "{n}", "roles": []},  # no type
    {"name": "{n}", "type": "admin", "roles": []},
    {"type": "user", "roles": []},  # no name
    {"name": "{n}", "type": "user"},  # no roles
    {"name": "{n}", "type": "user", "roles": "boss"},
    {"name": "{n}", "type": "user", "roles": [1]},
    {"name": "{n}x", "type": "user", "roles": []},  # the id names another
    {"name": "{n}", "type": "user", "roles": ["_admin"]},  # a server admin made by a document
    {"name": "{n}", "type": "user", "roles": ["_reader"]},
])
def test_account_documents_that_break_couchdbs_rules(pair: Pair, doc: dict[str, Any]) -> None:
    pair.kiosk.put("/_users")
    name = f"u{uuid.uuid4().hex[:8]}"
    body = {k: (v.replace("{n}", name) if isinstance(v, str) else v) for k, v in doc.items()}
    couch, kiosk = pair.same("PUT", f"/_users/org.couchdb.user:{name}", json={**body, "password": "x"})
    assert couch["error"] == "forbidden" and kiosk["reason"] == couch["reason"]


def test_underscore_and_colon_names_are_refused(pair: Pair) -> None:
    pair.kiosk.put("/_users")
    for name in ("_hidden", "a:b"):
        couch, kiosk = pair.same("PUT", f"/_users/org.couchdb.user:{name}",
                                 json={"name": name, "type": "user", "roles": [], "password": "x"})
        assert kiosk["reason"] == couch["reason"]


def test_plain_accounts_cannot_read_or_write_users(pair: Pair, accounts: dict[str, str]) -> None:
    reader = as_user(pair, accounts["reader"])
    other = f"/_users/org.couchdb.user:{accounts['other']}"
    reader.same("GET", f"/_users/org.couchdb.user:{accounts['reader']}")  # not even their own
    reader.same("GET", other)
    reader.same("GET", "/_users")
    as_user(pair, None).same("GET", "/_users")
    reader.same("PUT", other, json={"name": accounts["other"], "type": "user", "roles": [], "password": "x"}, reason=False)
    reader.same("GET", "/_session")  # signed in, with no roles
    as_user(pair, None).same("PUT", "/_users/org.couchdb.user:signup", reason=False,
                   json={"name": "signup", "type": "user", "roles": [], "password": "x"})  # no public sign-up


def test_a_path_of_couchdbs_own_it_does_not_know_is_for_server_admins(pair: Pair, accounts: dict[str, str]) -> None:
    # CouchDB: 401 to anyone else (here 403 to a signed-in user, as on the other server-admin paths);
    # to the admin no database (404), and one cannot be made under that name (400)
    for method in ("GET", "HEAD", "PUT", "DELETE", "POST"):
        for path in ("/_foo", "/_foo/doc", "/_active_tasks_no"):
            kwargs: dict[str, Any] = {"json": {}} if method in ("PUT", "POST") else {}
            pair.same(method, path, **kwargs)
            as_user(pair, None).same(method, path, **kwargs)
            refused = as_user(pair, accounts["reader"]).kiosk.request(method, path, **kwargs)
            assert refused.status_code == 403, (method, path, refused.text)


def test_a_new_password_replaces_the_old_one(pair: Pair, accounts: dict[str, str]) -> None:
    name = accounts["reader"]
    for client in (pair.couch, pair.kiosk):
        doc = client.get(f"/_users/org.couchdb.user:{name}").json()
        assert client.put(f"/_users/org.couchdb.user:{name}", json={**doc, "password": "pw-new"}).status_code == 201
    as_user(pair, name, "pw-new").same("GET", "/_session")
    as_user(pair, name).same("GET", "/_session")  # the old password: 401 on both


def test_readers_are_who_security_names(pair: Pair, accounts: dict[str, str]) -> None:
    pair.same("PUT", "/{db}/d", json={"a": 1})
    pair.same("PUT", "/{db}/_security", json={"admins": {"names": [], "roles": ["boss"]},
                                               "members": {"names": [accounts["reader"]], "roles": []}})
    reader, other = as_user(pair, accounts["reader"]), as_user(pair, accounts["other"])
    reader.same("GET", "/{db}/d")
    reader.same("GET", "/{db}/_security")
    reader.same("GET", "/{db}/_all_docs")
    reader.same("PUT", "/{db}/e", json={"b": 2})
    reader.same("PUT", "/{db}/_design/x", json={"views": {}})  # members are not database admins
    other.same("GET", "/{db}/d", reason=False)
    other.same("PUT", "/{db}/f", json={"c": 3}, reason=False)
    pair.same("PUT", "/{db}/_security", json={"members": {"names": [], "roles": ["readers"]}})
    reader.same("GET", "/{db}/d", reason=False)  # names no longer listed: refused
