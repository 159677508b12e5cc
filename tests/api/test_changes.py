"""/{db}/_changes as CouchDB 3 answers it.

Normal feeds run in-process (Flask test client); longpoll waits, continuous feeds,
heartbeats and 50 concurrent longpolls run against the live server (``kiosk``),
since the test client cannot stream while another request writes.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from api_helpers import DB, body, bulk, create_db, get, info, post, put, seq_number

H = {c: c * 32 for c in "0123456789abcdef"}
ADMIN = ("admin", "secret")
WAIT = 30.0  # generous bound for anything that should be prompt


@pytest.fixture
def db(client: Any) -> Any:
    create_db(client)
    return client


def changes(client: Any, query: str = "", payload: Any = None) -> dict:
    path = f"/{DB}/_changes" + (f"?{query}" if query else "")
    return get(client, path) if payload is None else post(client, path, payload)


def ids(feed: dict) -> list[str]:
    return [row["id"] for row in feed["results"]]


@pytest.fixture
def three(db: Any) -> dict[str, str]:
    """Documents a, b, c written in that order; their revs."""
    return {i: put(db, i, {"type": "t" + i, "n": n}) for n, i in enumerate("abc")}


# -- normal feed --------------------------------------------------------------------------


def test_rows_and_sequences(db: Any, three: dict[str, str]) -> None:
    feed = changes(db)
    assert ids(feed) == ["a", "b", "c"]
    for row, doc_id in zip(feed["results"], "abc"):
        assert row == {"seq": row["seq"], "id": doc_id, "changes": [{"rev": three[doc_id]}]}
        assert isinstance(row["seq"], str)
    numbers = [seq_number(r["seq"]) for r in feed["results"]]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    assert isinstance(feed["last_seq"], str) and feed["last_seq"] == feed["results"][-1]["seq"]
    assert feed["pending"] == 0
    assert feed["last_seq"] == info(db)["update_seq"]


def test_updated_document_moves_to_the_end_once(db: Any, three: dict[str, str]) -> None:
    rev2 = put(db, "a", {"_rev": three["a"], "n": 9})
    feed = changes(db)
    assert ids(feed) == ["b", "c", "a"]
    assert feed["results"][-1]["changes"] == [{"rev": rev2}]


def test_deleted_rows(db: Any, three: dict[str, str]) -> None:
    gone = body(db.delete(f"/{DB}/b?rev={three['b']}"))["rev"]
    row = changes(db)["results"][-1]
    assert row["id"] == "b" and row["deleted"] is True and row["changes"] == [{"rev": gone}]
    row = changes(db, "include_docs=true")["results"][-1]
    assert row["doc"] == {"_id": "b", "_rev": gone, "_deleted": True}


def test_since(db: Any, three: dict[str, str]) -> None:
    first = changes(db)["results"][0]["seq"]
    assert ids(changes(db, f"since={quote(first)}")) == ["b", "c"]
    assert ids(changes(db, "since=1")) == ["b", "c"], "an old numeric since is tolerated"
    assert ids(changes(db, "", {"since": first})) == ["b", "c"]
    assert ids(changes(db, "", {"since": 1})) == ["b", "c"]
    now = changes(db, "since=now")
    assert now["results"] == [] and now["last_seq"] == info(db)["update_seq"]
    last = changes(db, f"since={quote(info(db)['update_seq'])}")
    assert last["results"] == [] and last["last_seq"] == info(db)["update_seq"]


def test_limit_and_pending(db: Any, three: dict[str, str]) -> None:
    feed = changes(db, "limit=1")
    assert ids(feed) == ["a"]
    assert feed["last_seq"] == feed["results"][0]["seq"]
    assert feed["pending"] == 2
    rest = changes(db, f"since={quote(feed['last_seq'])}&limit=5")
    assert ids(rest) == ["b", "c"] and rest["pending"] == 0


def test_descending(db: Any, three: dict[str, str]) -> None:
    feed = changes(db, "descending=true")
    assert ids(feed) == ["c", "b", "a"]
    assert ids(changes(db, "descending=true&limit=2")) == ["c", "b"]


def test_style_all_docs_lists_every_leaf(db: Any) -> None:
    assert bulk(db, [
        {"_id": "k", "_rev": "2-" + H["a"], "_revisions": {"start": 2, "ids": [H["a"], H["1"]]}},
        {"_id": "k", "_rev": "2-" + H["b"], "_revisions": {"start": 2, "ids": [H["b"], H["1"]]}},
    ], new_edits=False) == []
    main = changes(db)["results"][0]
    assert main["changes"] == [{"rev": "2-" + H["b"]}]
    every = changes(db, "style=all_docs")["results"][0]
    assert every["changes"] == [{"rev": "2-" + H["b"]}, {"rev": "2-" + H["a"]}]


def test_include_docs(db: Any, three: dict[str, str]) -> None:
    rows = changes(db, "include_docs=true")["results"]
    assert [r["doc"] for r in rows] == [{"_id": i, "_rev": three[i], "type": "t" + i, "n": n}
                                        for n, i in enumerate("abc")]
    assert all("doc" not in r for r in changes(db)["results"])


def test_filter_doc_ids(db: Any, three: dict[str, str]) -> None:
    wanted = quote(json.dumps(["c", "a", "zzz"]))
    assert ids(changes(db, f"filter=_doc_ids&doc_ids={wanted}")) == ["a", "c"]
    assert ids(changes(db, "filter=_doc_ids", {"doc_ids": ["c", "a"]})) == ["a", "c"]
    assert ids(changes(db, "filter=_doc_ids", {"doc_ids": []})) == []


def test_filter_selector(db: Any, three: dict[str, str]) -> None:
    assert ids(changes(db, "filter=_selector", {"selector": {"type": "tb"}})) == ["b"]
    assert ids(changes(db, "filter=_selector", {"selector": {"n": {"$gte": 1}}})) == ["b", "c"]
    rows = changes(db, "filter=_selector&include_docs=true", {"selector": {"_id": {"$in": ["a", "c"]}}})["results"]
    assert [r["doc"]["n"] for r in rows] == [0, 2]
    feed = changes(db, "filter=_selector", {"selector": {"type": "tb"}})
    assert feed["last_seq"] == info(db)["update_seq"], "a filtered feed still reaches the end"


def test_filter_design(db: Any, three: dict[str, str]) -> None:
    put(db, "_design/app", {"views": {}})
    assert ids(changes(db, "filter=_design")) == ["_design/app"]


def test_since_from_a_deleted_and_recreated_database_starts_over(db: Any, three: dict[str, str]) -> None:
    """A sequence of an earlier instance of the database must not hide the new instance's changes."""
    old_last = changes(db)["last_seq"]
    assert db.delete(f"/{DB}").status_code == 200
    create_db(db)
    put(db, "fresh")
    assert ids(changes(db, f"since={quote(old_last)}")) == ["fresh"]


def test_local_docs_are_not_changes(db: Any) -> None:
    db.put(f"/{DB}/_local/x", json={"a": 1})
    feed = changes(db)
    assert feed["results"] == [] and seq_number(feed["last_seq"]) == 0


def test_many_changes_across_pages(db: Any) -> None:
    for start in range(0, 1200, 300):
        bulk(db, [{"_id": f"d{i:05d}"} for i in range(start, start + 300)])
    feed = changes(db)
    assert ids(feed) == [f"d{i:05d}" for i in range(1200)]
    assert len(ids(changes(db, "limit=700"))) == 700


def test_longpoll_returns_at_once_when_changes_exist(db: Any, three: dict[str, str]) -> None:
    started = time.monotonic()
    feed = changes(db, "feed=longpoll&since=0&timeout=60000")
    assert time.monotonic() - started < WAIT / 2
    assert ids(feed) == ["a", "b", "c"] and feed["last_seq"] == info(db)["update_seq"]


def test_longpoll_times_out_empty(db: Any, three: dict[str, str]) -> None:
    feed = json.loads(db.get(f"/{DB}/_changes?feed=longpoll&since=now&timeout=200").get_data())
    assert feed["results"] == [] and feed["last_seq"] == info(db)["update_seq"]


# -- live server: longpoll, continuous, heartbeat ----------------------------------------------


def live_client(kiosk: Any, timeout: float = WAIT) -> httpx.Client:
    return httpx.Client(base_url=kiosk.base, auth=ADMIN, trust_env=False, timeout=timeout)


def live_db(kiosk: Any, name: str = DB) -> str:
    with live_client(kiosk) as http:
        response = http.put(f"/{name}")
        assert response.status_code == 201, response.text
        return http.get(f"/{name}").json()["update_seq"]


def longpoll_in_background(kiosk: Any, params: dict[str, str], doc_ids: list[str] | None = None) -> tuple[
        threading.Thread, dict[str, Any]]:
    """A longpoll ``_changes`` (POST with ``doc_ids``) on a thread, given a second to start waiting;
    the thread and where its answer (``status``, ``body``) or its ``error`` will be."""
    result: dict[str, Any] = {}

    def poll() -> None:
        try:
            with live_client(kiosk) as http:
                if doc_ids is None:
                    response = http.get(f"/{DB}/_changes", params={"feed": "longpoll", **params})
                else:
                    response = http.post(f"/{DB}/_changes", params={"feed": "longpoll", **params},
                                         json={"doc_ids": doc_ids})
                result["status"], result["body"] = response.status_code, response.text
        except Exception as exc:  # reported by the caller's assertions
            result["error"] = repr(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)
    return poller, result


def test_longpoll_waits_for_a_write(kiosk: Any) -> None:
    since = live_db(kiosk)
    poller, result = longpoll_in_background(kiosk, {"since": since, "timeout": "25000"})
    assert poller.is_alive() and not result, "longpoll returned before anything changed"
    with live_client(kiosk) as http:
        rev = http.put(f"/{DB}/late", json={"v": 1}).json()["rev"]
    poller.join(WAIT)
    assert not poller.is_alive(), "longpoll did not return after the write"
    assert result.get("status") == 200, result
    feed = json.loads(result["body"])
    assert feed["results"] == [{"seq": feed["results"][0]["seq"], "id": "late", "changes": [{"rev": rev}]}]
    assert isinstance(feed["last_seq"], str) and seq_number(feed["last_seq"]) > seq_number(since)


def test_longpoll_heartbeat_then_empty_result(kiosk: Any) -> None:
    since = live_db(kiosk)
    with live_client(kiosk) as http:
        response = http.get(f"/{DB}/_changes", params={"feed": "longpoll", "since": since, "heartbeat": "100",
                                                       "timeout": "700"})
    assert response.status_code == 200
    text = response.text
    assert text.startswith("\n"), repr(text[:50])
    feed = json.loads(text)
    assert feed["results"] == [] and feed["last_seq"] == since


def test_continuous_feed_with_heartbeat(kiosk: Any) -> None:
    live_db(kiosk)
    with live_client(kiosk) as http:
        first_rev = http.put(f"/{DB}/first", json={}).json()["rev"]
        writer = live_client(kiosk)
        seen: list[dict] = []
        blank = 0
        with http.stream("GET", f"/{DB}/_changes", params={"feed": "continuous", "since": "0",
                                                           "heartbeat": "200", "timeout": "20000"}) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            deadline = time.monotonic() + WAIT
            for line in lines:
                assert time.monotonic() < deadline, "continuous feed stalled"
                if not line.strip():
                    blank += 1
                    if blank == 2 and len(seen) == 1:
                        assert writer.put(f"/{DB}/second", json={"v": 2}).status_code == 201
                    continue
                seen.append(json.loads(line))
                if len(seen) == 2:
                    break
        writer.close()
    assert seen[0]["id"] == "first" and seen[0]["changes"] == [{"rev": first_rev}]
    assert seen[1]["id"] == "second" and isinstance(seen[1]["seq"], str)
    assert seq_number(seen[1]["seq"]) > seq_number(seen[0]["seq"])
    assert blank >= 2


def test_continuous_feed_ends_with_last_seq(kiosk: Any) -> None:
    live_db(kiosk)
    with live_client(kiosk) as http:
        http.post(f"/{DB}/_bulk_docs", json={"docs": [{"_id": "a"}, {"_id": "b"}]})
        response = http.get(f"/{DB}/_changes", params={"feed": "continuous", "timeout": "300"})
        update_seq = http.get(f"/{DB}").json()["update_seq"]
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    assert [row["id"] for row in lines[:-1]] == ["a", "b"]
    assert lines[-1] == {"last_seq": update_seq}


def test_continuous_feed_limit(kiosk: Any) -> None:
    live_db(kiosk)
    with live_client(kiosk) as http:
        http.post(f"/{DB}/_bulk_docs", json={"docs": [{"_id": i} for i in "abcd"]})
        response = http.get(f"/{DB}/_changes", params={"feed": "continuous", "limit": "2", "timeout": "10000"})
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    assert [row.get("id") for row in lines] == ["a", "b", None]
    assert lines[-1]["last_seq"] == lines[1]["seq"]


def test_fifty_longpolls_and_a_writer(kiosk: Any) -> None:
    """50 phones wait on a longpoll while a writer keeps working; the next change wakes them all."""
    since = live_db(kiosk, "hub")
    live_db(kiosk, "other")
    count = 50
    results: list[dict[str, Any]] = [{} for _ in range(count)]

    def poll(slot: dict[str, Any]) -> None:
        try:
            with httpx.Client(base_url=kiosk.base, auth=ADMIN, trust_env=False, timeout=WAIT + 30) as http:
                response = http.get("/hub/_changes", params={"feed": "longpoll", "since": since, "timeout": "60000"})
                slot.update(status=response.status_code, body=response.text, done=time.monotonic())
        except Exception as exc:  # reported by the assertions below
            slot.update(error=repr(exc), done=time.monotonic())

    pollers = [threading.Thread(target=poll, args=(slot,), daemon=True) for slot in results]
    for poller in pollers:
        poller.start()
    time.sleep(2.0)
    assert not any(results), [r for r in results if r][:3]

    with live_client(kiosk, timeout=WAIT) as http:
        for i in range(10):
            response = http.put(f"/other/w{i}", json={"i": i})
            assert response.status_code == 201, response.text
        assert http.get("/").status_code == 200
        assert http.get("/other").json()["doc_count"] == 10
        assert not any(results), "a write to another database woke the longpolls"
        written_at = time.monotonic()
        rev = http.put("/hub/news", json={"title": "meeting"}).json()["rev"]

    deadline = time.monotonic() + WAIT
    for poller in pollers:
        poller.join(max(deadline - time.monotonic(), 0.1))
    assert all(not p.is_alive() for p in pollers), "some longpolls never returned"
    errors = [r for r in results if r.get("status") != 200]
    assert not errors, errors[:3]
    for slot in results:
        feed = json.loads(slot["body"])
        assert [(row["id"], row["changes"]) for row in feed["results"]] == [("news", [{"rev": rev}])]
        assert slot["done"] >= written_at


def test_filtered_longpoll_ignores_other_documents(kiosk: Any) -> None:
    """A longpoll with since=now and a _doc_ids filter sleeps through writes to other documents."""
    live_db(kiosk)
    poller, result = longpoll_in_background(kiosk, {"since": "now", "filter": "_doc_ids", "timeout": "25000"},
                                            doc_ids=["target"])
    with live_client(kiosk) as http:
        assert http.put(f"/{DB}/noise", json={}).status_code == 201
        time.sleep(1.0)
        assert poller.is_alive() and not result, f"woken by another document: {result}"
        rev = http.put(f"/{DB}/target", json={}).json()["rev"]
    poller.join(WAIT)
    assert not poller.is_alive() and result.get("status") == 200, result
    feed = json.loads(result["body"])
    assert [(r["id"], r["changes"]) for r in feed["results"]] == [("target", [{"rev": rev}])]
