"""Differential tests of what CouchDB 3.4.3's own HTTP suite (test/elixir/test at the 3.4.3 tag)
found different: each request goes to a real Apache CouchDB 3.4.3 and to our server (issue 12;
see differential.py). The suite itself is not run in CI (its Elixir client is not installed
here); the README says how it was run and what it gave.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import ADMIN
from differential import Pair, shape
from test_differential import module_kiosk, pair  # noqa: F401 (fixtures)

pytestmark = pytest.mark.peers

JSON = {"Content-Type": "application/json"}


def test_a_request_id_the_client_sends_comes_back(pair: Pair) -> None:
    for response in pair.both("GET", "/{db}/missing", headers={"X-Couch-Request-ID": "my-own-id-17"}):
        assert response.headers["X-Couch-Request-ID"] == "my-own-id-17"


def test_not_modified_has_an_empty_length_and_weak_etags_match(pair: Pair) -> None:
    _, made = pair.same("PUT", "/{db}/doc", json={"a": 1})
    for tag in (f'"{made["rev"]}"', f'W/"{made["rev"]}"', f'"1-{"0" * 32}", "{made["rev"]}"'):
        couch, kiosk = pair.both("GET", "/{db}/doc", headers={"If-None-Match": tag})
        assert (kiosk.status_code, couch.status_code) == (304, 304), tag
        assert kiosk.headers["Content-Length"] == couch.headers["Content-Length"] == "0"
        assert kiosk.content == couch.content == b""


def test_delete_of_a_document_that_is_not_there(pair: Pair) -> None:
    pair.same("DELETE", "/{db}/missing")
    pair.same("DELETE", f"/{{db}}/missing?rev=1-{'0' * 32}")
    _, made = pair.same("PUT", "/{db}/doc", json={})
    pair.same("DELETE", "/{db}/doc")  # there, but no rev: 409
    _, gone = pair.same("DELETE", f"/{{db}}/doc?rev={made['rev']}")
    pair.same("DELETE", "/{db}/doc")  # deleted: 404 whatever the rev
    pair.same("DELETE", f"/{{db}}/doc?rev={gone['rev']}")


def test_revisions_in_body_query_and_if_match_must_agree(pair: Pair) -> None:
    _, made = pair.same("PUT", "/{db}/doc", json={"a": 1})
    rev, other = made["rev"], f"1-{'f' * 32}"
    pair.same("PUT", f"/{{db}}/doc?rev={other}", json={"_rev": rev})
    pair.same("PUT", "/{db}/doc", json={"_rev": rev}, headers={"If-Match": other})
    pair.same("PUT", f"/{{db}}/doc?rev={rev}", json={}, headers={"If-Match": f'"{other}"'})
    pair.same("DELETE", f"/{{db}}/doc?rev={rev}", headers={"If-Match": other})
    pair.same("PUT", "/{db}/doc", json={"_rev": rev, "a": 2}, headers={"If-Match": f'"{rev}"'})
    # nothing was written by the refused requests: both are at revision 2 now
    pair.same("GET", "/{db}/doc")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"1"])
def test_a_document_must_be_an_object(pair: Pair, body: bytes) -> None:
    pair.same("PUT", "/{db}/doc", content=body, headers=JSON)
    pair.same("PUT", "/{db}/_local/doc", content=body, headers=JSON)


def test_copy_destination_must_be_relative(pair: Pair) -> None:
    pair.same("PUT", "/{db}/doc", json={})
    pair.same("COPY", "/{db}/doc", headers={"Destination": "http://localhost:5984/{db}/other".replace("{db}", pair.db)})
    pair.same("GET", "/{db}/_all_docs")


@pytest.mark.parametrize("path", ["/{db}/_local", "/{db}/_local/", "/{db}/_local%2F", "/{db}/_local/foo/bar"])
def test_local_ids_that_are_not_ids(pair: Pair, path: str) -> None:
    pair.same("PUT", path, json={})


@pytest.mark.parametrize("data", ["notBase64Encoded=", "YQ", "YWJj ZA==", "YQ==\n"])
def test_attachment_data_must_be_padded_base64(pair: Pair, data: str) -> None:
    pair.same("PUT", "/{db}/doc", json={"_attachments": {"a.txt": {"content_type": "text/plain", "data": data}}},
              revs=False)  # CouchDB stores text gzipped: its revision ids differ (README)


def test_attachment_edit_of_a_revision_that_is_not_there(pair: Pair) -> None:
    pair.same("PUT", "/{db}/doc", json={})
    garbage = "4-" + "0" * 32
    for path in ("/{db}/doc/x.bin", "/{db}/missing/x.bin"):
        pair.same("PUT", f"{path}?rev={garbage}", content=b"x", headers={"Content-Type": "application/octet-stream"})
        pair.same("DELETE", f"{path}?rev={garbage}")


def test_all_docs_post_keys_and_body_parameters(pair: Pair) -> None:
    pair.same("POST", "/{db}/_bulk_docs", json={"docs": [{"_id": i} for i in "abcd"]})
    pair.same("POST", "/{db}/_all_docs", json={"keys": "a"})
    pair.same("GET", "/{db}/_all_docs", params={"keys": '"a"'})
    pair.same("POST", "/{db}/_all_docs", json={"keys": ["a", "b", "zz"], "limit": 1})
    pair.same("POST", "/{db}/_all_docs", json={"keys": ["a", "b", "zz"], "skip": 1, "include_docs": True})
    pair.same("POST", "/{db}/_all_docs?limit=2", json={"keys": ["a", "b", "c"], "limit": 0})  # the query wins
    pair.same("POST", "/{db}/_all_docs", json={"descending": True, "startkey": "c"})


def test_all_dbs_limit_and_skip(pair: Pair) -> None:
    pair.same("GET", "/_all_dbs", params={"limit": "0"})
    for client in (pair.couch, pair.kiosk):
        every = client.get("/_all_dbs").json()
        assert client.get("/_all_dbs", params={"limit": "1", "skip": "1"}).json() == every[1:2]
        assert client.get("/_all_dbs", params={"descending": "true"}).json() == every[::-1]
        assert client.get("/_all_dbs", params={"startkey": f'"{pair.db}"', "endkey": f'"{pair.db}"'}).json() == [pair.db]


def test_dbs_info_lists_databases_as_all_dbs_does(pair: Pair) -> None:
    pair.same("POST", "/{db}", json={"_id": "one"}, headers=JSON)
    for body in ({}, {"keys": pair.db}, {"keys": [f"db{i}" for i in range(101)]}):
        pair.same("POST", "/_dbs_info", json=body)
    _, rows = pair.same("POST", "/_dbs_info", json={"keys": [1, "Bad!", "no-such-db", pair.db]})
    assert [r.get("error") for r in rows] == ["not_found"] * 3 + [None] and rows[3]["info"]["doc_count"] == 1
    params = {"start_key": f'"{pair.db}"', "end_key": f'"{pair.db}"'}
    _, rows = pair.same("GET", "/_dbs_info", params=params)
    assert [r["key"] for r in rows] == [pair.db]
    for client in (pair.couch, pair.kiosk):
        every = [r["key"] for r in client.get("/_dbs_info").json()]
        assert every == client.get("/_all_dbs").json()
        assert [r["key"] for r in client.get("/_dbs_info", params={"descending": "true", "limit": "2"}).json()] == \
            every[::-1][:2]
        assert httpx.get(client.base_url.join("/_dbs_info"), trust_env=False).status_code == 401  # admins only


@pytest.mark.parametrize("value", ["-1000", "abc", "1.5"])
def test_changes_heartbeat_that_is_not_a_count_of_milliseconds(pair: Pair, value: str) -> None:
    pair.same("GET", f"/{{db}}/_changes?feed=longpoll&heartbeat={value}")


def test_changes_post_with_an_empty_body(pair: Pair) -> None:
    pair.same("PUT", "/{db}/doc", json={})
    pair.same("POST", "/{db}/_changes", content=b"", headers=JSON)


def test_delete_database_with_a_rev(pair: Pair) -> None:
    pair.same("DELETE", f"/{{db}}?rev=1-{'0' * 32}")


def test_local_seq_is_an_integer(pair: Pair) -> None:
    pair.same("PUT", "/{db}/a", json={})
    pair.same("PUT", "/{db}/b", json={})
    for response in pair.both("GET", "/{db}/b?local_seq=true"):
        assert response.json()["_local_seq"] == 2


def test_location_names_the_forwarded_host(pair: Pair) -> None:
    headers = {"X-Forwarded-Host": "kiosk.example"}
    for response in pair.both("PUT", "/{db}/doc", json={}, headers=headers):
        assert response.headers["Location"] == f"http://kiosk.example/{pair.db}/doc"


def test_local_docs(pair: Pair) -> None:
    for name in ("foo", "foo2", "bar"):
        pair.same("PUT", f"/{{db}}/_local/{name}", json={"n": name})
    pair.same("PUT", "/{db}/normal", json={})
    pair.same("GET", "/{db}/_local_docs")
    pair.same("GET", "/{db}/_local_docs", params={"keys": '["_local/foo", "_local/nope", "_local/bar"]'})
    pair.same("GET", "/{db}/_local_docs", params={"include_docs": "true", "descending": "true"})
    pair.same("GET", "/{db}/_local_docs", params={"startkey": '"_local/foo"', "endkey": '"_local/foo2"',
                                                   "inclusive_end": "false"})
    pair.same("GET", "/{db}/_local_docs", params={"startkey": '"_local/foo2"', "descending": "true", "skip": "1"})
    pair.same("GET", "/{db}/_local_docs", params={"update_seq": "true", "limit": "1"})
    pair.same("POST", "/{db}/_local_docs", json={})
    pair.same("POST", "/{db}/_local_docs", json={"keys": ["_local/foo", "_local/foo2"], "limit": 1})
    pair.same("POST", "/{db}/_local_docs?limit=0", json={"keys": ["_local/foo", "_local/foo2"], "limit": 2})
    pair.same("POST", "/{db}/_local_docs", json={"keys": "_local/foo"})


def _events(text: str) -> list[dict]:
    """Server-sent events as {field: value} (the data parsed as JSON when there is some)."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "")
                      for line in block.splitlines() if line)
        if fields:
            if fields.get("data"):
                fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


def _fresh(base: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    """A GET on a connection of its own: CouchDB 3.4.3 writes a stray chunk after an eventsource feed
    ends, which breaks the next request on that connection."""
    with httpx.Client(base_url=base.base_url, auth=base.auth, trust_env=False, timeout=30) as client:
        return client.get(path, **kwargs)


def test_eventsource_feed(pair: Pair) -> None:
    for doc_id in ("foo", "bar", "baz"):
        pair.same("PUT", f"/{{db}}/{doc_id}", json={})
    path, shapes = f"/{pair.db}/_changes", []
    for client in (pair.couch, pair.kiosk):
        response = _fresh(client, path, params={"feed": "eventsource", "timeout": "300"})
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        events = _events(response.text)
        assert [e["data"]["id"] for e in events] == ["foo", "bar", "baz"]
        assert all(json.loads(e["id"]) == e["data"]["seq"] for e in events)  # the id is the JSON of the seq
        shapes.append(shape([e | {"id": "<id>"} for e in events]))
        # a browser resuming sends the last id back: the feed goes on after it, whatever since says
        resumed = _fresh(client, path, params={"feed": "eventsource", "timeout": "100", "since": "0"},
                         headers={"Last-Event-ID": json.loads(events[0]["id"])})
        assert [e["data"]["id"] for e in _events(resumed.text)] == ["bar", "baz"]
        limited = _fresh(client, path, params={"feed": "eventsource", "timeout": "100", "limit": "2"})
        assert [e["data"]["id"] for e in _events(limited.text)] == ["foo", "bar"]
    assert shapes[1] == shapes[0]


def test_eventsource_heartbeats(pair: Pair) -> None:
    for base in (pair.couch, pair.kiosk):  # a client of its own: the feed is left unread
        with httpx.Client(base_url=base.base_url, auth=base.auth, trust_env=False, timeout=30) as client, \
                client.stream("GET", f"/{pair.db}/_changes", params={"feed": "eventsource", "heartbeat": "20",
                                                                       "since": "now"}) as response:
            text = ""
            for chunk in response.iter_text():
                text += chunk
                if text.count("\n\n") >= 3:
                    break
        assert _events(text)[:3] == [{"event": "heartbeat", "data": ""}] * 3, text


def test_live_feed_is_continuous(pair: Pair) -> None:
    pair.same("PUT", "/{db}/doc", json={})
    for response in pair.both("GET", "/{db}/_changes?feed=live&timeout=100"):
        lines = [json.loads(line) for line in response.text.splitlines() if line]
        assert [line.get("id") for line in lines] == ["doc", None] and "last_seq" in lines[1], response.text


def test_membership_and_config_read(pair: Pair) -> None:
    # keys CouchDB 3.4.3 has in its ini files (it shows no built-in default; the kiosk shows its values)
    for key in ("couch_httpd_auth/authentication_db", "couchdb/single_node", "couchdb/no_such_key"):
        pair.same("GET", f"/_node/_local/_config/{key}")
    for client in (pair.couch, pair.kiosk):
        nodes = client.get("/_membership").json()
        assert len(nodes["all_nodes"]) == 1 and nodes["cluster_nodes"] == nodes["all_nodes"]
        got = client.get(f"/_node/{nodes['all_nodes'][0]}/_config/couchdb").json()
        assert got["single_node"] == "true"
        with httpx.Client(base_url=client.base_url, trust_env=False) as anonymous:
            assert anonymous.get("/_node/_local/_config").status_code == 401
            assert anonymous.get("/_membership").status_code == 401
    assert pair.kiosk.get("/_node/_local/_config/uuids").json()["algorithm"] == "sequential"
    max_size = pair.kiosk.get("/_node/_local/_config/couchdb/max_document_size").json()
    assert max_size == "8000000"


def test_config_set_to_what_it_is(pair: Pair) -> None:
    # the no-op a tool makes when it sets a value and restores it: accepted by both, the old value back
    pair.same("PUT", "/_node/_local/_config/couch_httpd_auth/authentication_db", json="_users",
              headers={"X-Couch-Persist": "false"})
    # a change: CouchDB makes it; the kiosk's configuration is its config.yaml (README)
    refused = pair.kiosk.put("/_node/_local/_config/uuids/algorithm", json="random")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert pair.kiosk.get("/_node/_local/_config/uuids/algorithm").json() == "sequential"
    assert pair.kiosk.delete("/_node/_local/_config/uuids/algorithm").status_code == 403


def test_a_password_is_read_only_from_json_or_a_form(pair: Pair) -> None:
    name, password = ADMIN
    for body, content_type in ((json.dumps({"name": name, "password": password}), "text/plain"),
                               (f"name={name}&password={password}", "multipart/form-data; boundary=x"),
                               (json.dumps({"name": name, "password": password}), None)):
        headers = {"Content-Type": content_type} if content_type else {}
        couch, kiosk = pair.both("POST", "/_session", content=body.encode(), headers=headers)
        assert kiosk.status_code == couch.status_code == 415, (content_type, couch.text, kiosk.text)
        assert kiosk.json()["error"] == couch.json()["error"] == "bad_content_type"
        assert "AuthSession" not in kiosk.headers.get("Set-Cookie", "")
    for body, content_type in ((json.dumps({"name": name, "password": password}), "application/json; charset=utf-8"),
                               (f"name={name}&password={password}", "application/x-www-form-urlencoded")):
        pair.same("POST", "/_session", content=body.encode(), headers={"Content-Type": content_type})
