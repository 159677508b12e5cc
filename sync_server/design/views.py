"""Views: map functions indexed in SQLite, queried with CouchDB 3.4's parameters.

The index of a design document lives in the database's file (store/viewindex.py),
under the signature of its views' code; it is brought up to date from ``_changes``
since the sequence it was built to, so a query after one write maps one document.
Design documents and deleted documents are not mapped (CouchDB's default).
Rows order by CouchDB's collation (collation.py), then by document id, then by
emit order. Reduce runs at query time over the rows in range (reduce.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from ..errors import BadRequest, NotFound
from ..store import Database, viewindex
from . import collation
from .engine import engine
from .reduce import reduce_rows

# Documents mapped per call into the sandbox and per index transaction.
BATCH = 200

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


class QueryParseError(BadRequest):
    error = "query_parse_error"


def signature(ddoc: dict) -> str:
    """What the index of a design document depends on: its views' code, language and options."""
    material = {k: ddoc.get(k) for k in ("views", "language", "options")}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def map_views(ddoc: dict) -> list[str]:
    """Names of the design document's views that have a map function (``lib`` holds modules)."""
    views = ddoc.get("views")
    if not isinstance(views, dict):
        return []
    return sorted(n for n, v in views.items() if n != "lib" and isinstance(v, dict) and isinstance(v.get("map"), str))


def info(db: Database, ddoc: dict) -> dict:
    """``GET /{db}/_design/{ddoc}/_info``: CouchDB's shape; the index's sizes are not measured here."""
    built = index_of(db, ddoc).built_seq()
    pending = db.update_seq - (built or 0)
    return {"name": ddoc["_id"].removeprefix("_design/"), "view_index": {
        "updates_pending": {"minimum": pending, "preferred": pending, "total": pending},
        "waiting_commit": False, "waiting_clients": 0, "updater_running": False, "update_seq": built or 0,
        "sizes": {"file": 0, "external": 0, "active": 0}, "signature": signature(ddoc)[:32], "purge_seq": 0,
        "language": ddoc.get("language", "javascript"), "compact_running": False}}


def _lock(db: Database, sig: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((db.path, sig), threading.Lock())


def index_of(db: Database, ddoc: dict) -> viewindex.Index:
    """The stored index of a design document (its keys in clear in an encrypted store only if it asks)."""
    clear = bool((ddoc.get("options") or {}).get("keys_in_clear") is True)
    return viewindex.Index(db, signature(ddoc), clear_keys=clear)


# A mapper: (design document, view names, documents) -> per document, per view, the (key, value) pairs.
Mapper = Callable[[dict, list[str], list[dict]], list[list[list[Any]]]]


def _map_js(ddoc: dict, names: list[str], docs: list[dict]) -> list[list[list[Any]]]:
    return engine().call(ddoc, {"op": "map", "fns": [f"views.{n}.map" for n in names], "docs": docs})


def update(db: Database, ddoc: dict, names: list[str] | None = None, mapper: Mapper = _map_js) -> int:
    """Bring the design document's index up to the database's current sequence; returns it.

    ``names`` and ``mapper``: the views and how documents are mapped (JavaScript by default;
    Mango's JSON indexes pass their own).
    """
    index, names = index_of(db, ddoc), map_views(ddoc) if names is None else names
    with _lock(db, index.sig):
        seq = index.built_seq()
        end = db.update_seq
        if seq is not None and seq >= end:
            return seq
        batch: list[Any] = []
        for change in db.changes(seq or 0, until=end, include_docs=True, all_leaves=True):
            batch.append(change)
            if len(batch) >= BATCH:
                _index(db, ddoc, index, names, mapper, batch, int(change.seq.split("-", 1)[0]))
                batch = []
        _index(db, ddoc, index, names, mapper, batch, end)
        return end


def _index(db: Database, ddoc: dict, index: viewindex.Index, names: list[str], mapper: Mapper, changes: list[Any],
           seq: int) -> None:
    include_design = bool((ddoc.get("options") or {}).get("include_design"))
    docs = [_map_input(db, c) for c in changes
            if not c.deleted and c.doc_json is not None and (include_design or not c.id.startswith("_design/"))]
    emitted = mapper(ddoc, names, docs) if docs and names else []
    rows: list[viewindex.Row] = []
    for doc, per_view in zip(docs, emitted):
        doc_id = doc["_id"]
        id_key = collation.encode(doc_id)
        for name, pairs in zip(names, per_view):
            # A document's rows under one key sort by value, whatever the direction (CouchDB keeps them
            # as one B-tree entry of sorted duplicates).
            encoded = sorted(((collation.encode(k), collation.encode(v), k, v) for k, v in pairs), key=lambda t: t[:2])
            for n, (key_bytes, _, key, value) in enumerate(encoded):
                rows.append((name, key_bytes, id_key, n, doc_id,
                             json.dumps(key, ensure_ascii=False), json.dumps(value, ensure_ascii=False)))
    index.apply(seq, [c.id for c in changes], rows)


def _map_input(db: Database, change: Any) -> dict:
    """The document a map function sees: the winner, with ``_conflicts`` when it has any (as CouchDB)."""
    doc = json.loads(change.doc_json)
    if len(change.revs) > 1:
        try:
            doc = db.get(change.id, conflicts=True)
        except NotFound:
            pass
    return doc


# -- queries ------------------------------------------------------------------------------------

_JSON_PARAMS = ("key", "keys", "startkey", "start_key", "endkey", "end_key", "startkey_docid", "start_key_docid",
                "endkey_docid", "end_key_docid", "limit", "skip", "group_level", "descending", "inclusive_end",
                "group", "reduce", "include_docs", "update_seq", "conflicts", "sorted", "attachments", "stable")
_BOOLS = ("descending", "inclusive_end", "group", "reduce", "include_docs", "update_seq", "conflicts", "sorted",
          "attachments", "stable")


def parse_params(args: dict[str, str], body: dict | None) -> dict:
    """Query-string parameters (JSON values) merged with a POST body's, checked as CouchDB checks them.

    :raises QueryParseError: (400) for a malformed value.
    """
    params: dict[str, Any] = {}
    for name, text in args.items():
        if name in _JSON_PARAMS and name not in ("startkey_docid", "start_key_docid", "endkey_docid", "end_key_docid"):
            if name in _BOOLS:
                if text not in ("true", "false"):
                    raise QueryParseError(f"Invalid boolean parameter: \"{text[:40]}\"")
                params[name] = text == "true"
                continue
            try:
                params[name] = json.loads(text)
            except ValueError:
                if name in ("limit", "skip", "group_level"):
                    raise QueryParseError(f"Invalid value for integer: \"{text[:40]}\"") from None
                raise BadRequest("invalid UTF-8 JSON") from None
        else:
            params[name] = text
    for name, value in (body or {}).items():
        params[name] = value
    for short, long in (("start_key", "startkey"), ("end_key", "endkey"), ("start_key_docid", "startkey_docid"),
                        ("end_key_docid", "endkey_docid")):
        if short in params:
            params.setdefault(long, params.pop(short))
    for name in ("limit", "skip", "group_level"):
        if name in params and (not isinstance(params[name], int) or isinstance(params[name], bool) or params[name] < 0):
            raise QueryParseError(f"Invalid value for positive integer: \"{json.dumps(params[name])}\"")
    if params.get("stale", "ok") not in ("ok", "update_after", "false"):
        raise QueryParseError("Invalid value for `stale`.")
    if params.get("update", "true") not in ("true", "false", "lazy", True, False):
        raise QueryParseError("Invalid value for `update`.")
    if "key" in params:
        params.pop("keys", None)  # CouchDB answers the single key
    if "keys" in params and not isinstance(params["keys"], list):
        raise QueryParseError("`keys` member must be an array.")
    return params


def query(db: Database, ddoc_name: str, view_name: str, params: dict,
          load_doc: Callable[[str, str | None], dict | None]) -> dict:
    """The answer of ``GET/POST /{db}/_design/{ddoc}/_view/{view}``.

    :raises NotFound: missing design document or view; QueryParseError for bad combinations.
    """
    ddoc = db.get(f"_design/{ddoc_name}")
    views: dict[str, Any] = ddoc["views"] if isinstance(ddoc.get("views"), dict) else {}
    if view_name not in map_views(ddoc):
        raise NotFound("missing_named_view")
    reduce_src = views[view_name].get("reduce")
    reduce = params.get("reduce", reduce_src is not None)
    if reduce and reduce_src is None:
        raise QueryParseError("Reduce is invalid for map-only views.")
    group_level = params.get("group_level")
    group = params.get("group", False) or group_level is not None
    if not reduce and (params.get("group") or group_level is not None):
        raise QueryParseError("Invalid use of grouping on a map view.")
    if reduce and params.get("include_docs"):
        raise QueryParseError("`include_docs` is invalid for reduce")
    if reduce and len(params.get("keys") or ()) > 1 and not group:
        raise QueryParseError("Multi-key fetches for reduce views must use `group=true`")
    stale = params.get("stale")
    update_mode = params.get("update", "true")
    index = index_of(db, ddoc)
    if stale in ("ok", "update_after") or update_mode in ("false", False, "lazy"):
        seq = index.built_seq()
        if seq is None:
            seq = update(db, ddoc)
        elif stale == "update_after" or update_mode == "lazy":
            threading.Thread(target=update, args=(db, ddoc), daemon=True).start()
    else:
        seq = update(db, ddoc)
    if reduce:
        rows = _reduced(index, ddoc, view_name, reduce_src, params, group, group_level)
        answer: dict[str, Any] = {"rows": rows}
    else:
        answer = _mapped(index, view_name, params, load_doc)
    if params.get("update_seq"):
        answer["update_seq"] = db.seq_string(seq)
    return answer


def _bounds(params: dict) -> tuple[tuple[bytes, bytes] | None, tuple[bytes, bytes] | None, bool]:
    descending = bool(params.get("descending"))
    inclusive_end = params.get("inclusive_end", True)
    low, high = (b"", collation.HIGHEST) if not descending else (collation.HIGHEST, b"")
    start = end = None
    if "key" in params:
        params = {**params, "startkey": params["key"], "endkey": params["key"]}
    if "startkey" in params:
        docid = params.get("startkey_docid")
        start = (collation.encode(params["startkey"]), collation.encode(docid) if isinstance(docid, str) else low)
    if "endkey" in params:
        docid = params.get("endkey_docid")
        edge = high if inclusive_end else low
        end = (collation.encode(params["endkey"]), collation.encode(docid) if isinstance(docid, str) else edge)
    return start, end, inclusive_end


def _check_range(params: dict, start: Any, end: Any) -> None:
    if start is None or end is None:
        return
    descending = bool(params.get("descending"))
    if (start[0] > end[0]) if not descending else (start[0] < end[0]):
        raise QueryParseError(
            "No rows can match your key range, reverse your start_key and end_key or set descending=%s"
            % ("true" if not descending else "false"))


def _mapped(index: viewindex.Index, view: str, params: dict, load_doc: Callable[[str, str | None], dict | None]) -> dict:
    descending = bool(params.get("descending"))
    skip, limit = params.get("skip", 0), params.get("limit")
    total = index.count(view)
    if "keys" in params:
        selected: list[tuple[str, str, str]]
        found: list[tuple[str, str, str]] = []
        for key in params["keys"]:
            rows = index.rows_for_key(view, collation.encode(key))
            found.extend(_reverse_by_doc(rows) if descending else rows)
        selected = found[skip:] if limit is None else found[skip:skip + limit]
        # CouchDB's offset of a multi-key query comes from merging its shards; with one key it is this.
        first = params["keys"][0] if params["keys"] else None
        offset = index.count_before(view, (collation.encode(first), b""), False) if params["keys"] else 0
    else:
        start, end, inclusive_end = _bounds(params)
        _check_range(params, start, end)
        selected = []
        skipped = 0
        for doc_id, key_json, value_json, _key in index.scan(view, start, end, inclusive_end, descending):
            if skipped < skip:
                skipped += 1
                continue
            if limit is not None and len(selected) >= limit:
                break
            selected.append((doc_id, key_json, value_json))
        offset = index.count_before(view, start, descending) + skipped if start is not None else skipped
        offset = min(offset, total)
    out_rows = []
    for doc_id, key_json, value_json in selected:
        row: dict[str, Any] = {"id": doc_id, "key": json.loads(key_json), "value": json.loads(value_json)}
        if params.get("include_docs"):
            value = row["value"]
            if isinstance(value, dict) and isinstance(value.get("_id"), str):
                row["doc"] = load_doc(value["_id"], value.get("_rev") if isinstance(value.get("_rev"), str) else None)
            else:
                row["doc"] = load_doc(doc_id, None)
        out_rows.append(row)
    return {"total_rows": total, "offset": offset, "rows": out_rows}


def _reverse_by_doc(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Rows of one key in descending document order, each document's rows still in emit order."""
    by_doc: dict[str, list[tuple[str, str, str]]] = {}
    for row in rows:
        by_doc.setdefault(row[0], []).append(row)
    return [row for doc_rows in reversed(list(by_doc.values())) for row in doc_rows]


def _reduced(index: viewindex.Index, ddoc: dict, view: str, source: str, params: dict, group: bool,
             group_level: int | None) -> list[dict]:
    descending = bool(params.get("descending"))
    skip, limit = params.get("skip", 0), params.get("limit")
    path = f"views.{view}.reduce"
    out: list[dict] = []
    if "keys" in params:
        for key in params["keys"]:
            rows = [(json.loads(k), i, json.loads(v), collation.encode(key))
                    for i, k, v in index.rows_for_key(view, collation.encode(key))]
            if rows:
                out.append({"key": key if group else None, "value": reduce_rows(source, ddoc, path, rows)})
        return out[skip:] if limit is None else out[skip:skip + limit]
    start, end, inclusive_end = _bounds(params)
    _check_range(params, start, end)
    rows_iter = index.scan(view, start, end, inclusive_end, descending)
    if not group or group_level == 0:
        rows = [(json.loads(k), i, json.loads(v), kb) for i, k, v, kb in rows_iter]
        if not rows:
            return []
        result = [{"key": None, "value": reduce_rows(source, ddoc, path, rows)}]
        return result[skip:] if limit is None else result[skip:skip + limit]
    current: Any = None
    current_enc: bytes | None = None
    members: list[Any] = []
    emitted = 0

    def flush() -> bool:
        nonlocal emitted
        if members:
            emitted += 1
            if emitted > skip:
                out.append({"key": current, "value": reduce_rows(source, ddoc, path, members)})
        return limit is not None and len(out) >= limit

    for doc_id, key_json, value_json, key_bytes in rows_iter:
        key = json.loads(key_json)
        grouped = collation.group_prefix(key, group_level)
        grouped_enc = key_bytes if grouped is key else collation.encode(grouped)
        if grouped_enc != current_enc:
            if flush():
                return out
            current, current_enc, members = grouped, grouped_enc, []
        members.append((key, doc_id, json.loads(value_json), key_bytes))
    flush()
    return out
