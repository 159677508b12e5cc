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
from .reduce import ReduceOverflow, reduce_rows

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
    options: dict = ddoc["options"] if isinstance(ddoc.get("options"), dict) else {}
    include_design, local_seq = bool(options.get("include_design")), options.get("local_seq") is True
    docs = [_map_input(db, c, local_seq) for c in changes
            if not c.deleted and c.doc_json is not None and (include_design or not c.id.startswith("_design/"))]
    emitted = mapper(ddoc, names, docs) if docs and names else []
    rows: list[viewindex.Row] = []
    views = ddoc["views"] if isinstance(ddoc.get("views"), dict) else {}
    encoders = [collation.encoder(views.get(name)) for name in names]
    for doc, per_view in zip(docs, emitted):
        doc_id = doc["_id"]
        id_key = collation.encode(doc_id)
        for name, pairs, enc in zip(names, per_view, encoders):
            # A document's rows under one key sort by value, whatever the direction (CouchDB keeps them
            # as one B-tree entry of sorted duplicates).
            encoded = sorted(((enc(k), enc(v), k, v) for k, v in pairs), key=lambda t: t[:2])
            for n, (key_bytes, _, key, value) in enumerate(encoded):
                rows.append((name, key_bytes, id_key, n, doc_id,
                             json.dumps(key, ensure_ascii=False), json.dumps(value, ensure_ascii=False)))
    index.apply(seq, [c.id for c in changes], rows)


def _map_input(db: Database, change: Any, local_seq: bool) -> dict:
    """The document a map function sees: the winner, with ``_conflicts`` when it has any (as CouchDB), and its
    ``_local_seq`` when the design document's ``options`` ask."""
    doc = json.loads(change.doc_json)
    if len(change.revs) > 1:
        try:
            doc = db.get(change.id, conflicts=True)
        except NotFound:
            pass
    if local_seq:
        doc["_local_seq"] = int(change.seq.split("-", 1)[0])
    return doc


def info(db: Database, ddoc_name: str) -> dict:
    """``GET /{db}/_design/{ddoc}/_info``: the state of the design document's index, in CouchDB's fields.

    :raises NotFound: no such design document.
    """
    ddoc = db.get(f"_design/{ddoc_name}")
    index = index_of(db, ddoc)
    seq = index.built_seq()
    if seq is None:  # CouchDB opens (creates) the index here: a later stale=ok query answers it as it is
        with _lock(db, index.sig):
            if index.built_seq() is None:
                index.apply(0, [], [])
        seq = index.built_seq() or 0
    pending = db.count_since(seq)
    return {"name": ddoc_name, "view_index": {
        "updates_pending": {"minimum": pending, "preferred": pending, "total": pending},
        "waiting_commit": False, "waiting_clients": 0, "updater_running": False, "update_seq": seq,
        "sizes": index.sizes(), "signature": index.sig[:32], "purge_seq": 0,
        "language": ddoc.get("language", "javascript"), "compact_running": False,
        "collator_versions": [collation.version()]}}


# -- queries ------------------------------------------------------------------------------------

_JSON_PARAMS = ("key", "keys", "startkey", "start_key", "endkey", "end_key", "startkey_docid", "start_key_docid",
                "endkey_docid", "end_key_docid", "limit", "skip", "group_level", "descending", "inclusive_end",
                "group", "reduce", "include_docs", "update_seq", "conflicts", "sorted", "attachments", "stable")
_BOOLS = ("descending", "inclusive_end", "group", "reduce", "include_docs", "update_seq", "conflicts", "sorted",
          "attachments", "stable")


_DOCID_PARAMS = ("startkey_docid", "start_key_docid", "start_key_doc_id", "endkey_docid", "end_key_docid",
                 "end_key_doc_id")


_ALIASES = {"start_key": "startkey", "end_key": "endkey", "start_key_docid": "startkey_docid",
            "start_key_doc_id": "startkey_docid", "end_key_docid": "endkey_docid", "end_key_doc_id": "endkey_docid"}


def parse_params(args: dict[str, str], body: dict | None) -> dict:
    """A POST body's parameters, then the query string's (JSON values), read in order as CouchDB reads them.

    ``key`` and a ``keys`` of one key set ``startkey`` and ``endkey`` where they stand, so a later
    ``startkey`` overrides (couch_mrview_http:parse_param/4).
    :raises QueryParseError: (400) for a malformed value.
    """
    pairs: list[tuple[str, Any]] = list((body or {}).items())
    if body and "keys" in body and not isinstance(body["keys"], list):
        raise BadRequest("`keys` member must be an array.")
    for name, text in args.items():
        if name in _JSON_PARAMS and name not in _DOCID_PARAMS:
            if name in _BOOLS:
                if text not in ("true", "false"):
                    raise QueryParseError(f"Invalid boolean parameter: \"{text[:40]}\"")
                pairs.append((name, text == "true"))
                continue
            try:
                pairs.append((name, json.loads(text)))
            except ValueError:
                if name in ("limit", "skip", "group_level"):
                    raise QueryParseError(f"Invalid value for integer: \"{text[:40]}\"") from None
                raise BadRequest("invalid UTF-8 JSON") from None
        else:
            pairs.append((name, text))
    params: dict[str, Any] = {}
    for name, value in pairs:
        name = _ALIASES.get(name, name)
        if name == "key" or (name == "keys" and isinstance(value, list) and len(value) == 1):
            params["startkey"] = params["endkey"] = value[0] if name == "keys" else value
        else:
            params[name] = value
    for name in ("startkey_docid", "endkey_docid"):
        if name in params and not isinstance(params[name], str):  # a body's number: its text (couch_util:to_binary)
            params[name] = json.dumps(params[name])
    for name in ("limit", "skip", "group_level"):
        if name in params and (not isinstance(params[name], int) or isinstance(params[name], bool) or params[name] < 0):
            raise QueryParseError(f"Invalid value for positive integer: \"{json.dumps(params[name])}\"")
    if params.get("stale", "ok") not in ("ok", "update_after", "false"):
        raise QueryParseError("Invalid value for `stale`.")
    if params.get("update", "true") not in ("true", "false", "lazy", True, False):
        raise QueryParseError("Invalid value for `update`.")
    if "keys" in params and not isinstance(params["keys"], list):
        raise QueryParseError("`keys` must be an array of strings.")
    if params.get("keys") and ("startkey" in params or "endkey" in params):
        raise QueryParseError("`keys` is incompatible with `key`, `start_key` and `end_key`")
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
    if reduce and len(params.get("keys") or ()) > 1 and (group_level is not None or not params.get("group")):
        raise QueryParseError("Multi-key fetches for reduce views must use `group=true`")
    stale = params.get("stale")
    update_mode = params.get("update", "true")
    index, enc = index_of(db, ddoc), collation.encoder(views[view_name])
    if stale in ("ok", "update_after") or update_mode in ("false", False, "lazy"):
        seq = index.built_seq()
        if seq is None:
            seq = update(db, ddoc)
        elif stale == "update_after" or update_mode == "lazy":
            threading.Thread(target=update, args=(db, ddoc), daemon=True).start()
    else:
        seq = update(db, ddoc)
    if reduce:
        rows = _reduced(index, ddoc, view_name, reduce_src, params, group, group_level, enc)
        answer: dict[str, Any] = {"rows": rows}
    else:
        answer = _mapped(index, view_name, params, load_doc, enc)
    if params.get("update_seq"):
        answer["update_seq"] = db.seq_string(seq)
    return answer


def _bounds(params: dict, enc: Callable[[Any], bytes]) -> tuple[tuple[bytes, bytes] | None, tuple[bytes, bytes] | None, bool]:
    descending = bool(params.get("descending"))
    inclusive_end = params.get("inclusive_end", True)
    low, high = (b"", collation.HIGHEST) if not descending else (collation.HIGHEST, b"")
    start = end = None
    if "startkey" in params:
        docid = params.get("startkey_docid")
        start = (enc(params["startkey"]), collation.encode(docid) if isinstance(docid, str) else low)
    if "endkey" in params:
        docid = params.get("endkey_docid")
        edge = high if inclusive_end else low
        end = (enc(params["endkey"]), collation.encode(docid) if isinstance(docid, str) else edge)
    return start, end, inclusive_end


def _check_range(params: dict, start: Any, end: Any) -> None:
    if start is None or end is None:
        return
    descending = bool(params.get("descending"))
    if (start[0] > end[0]) if not descending else (start[0] < end[0]):
        raise QueryParseError(
            "No rows can match your key range, reverse your start_key and end_key or set descending=%s"
            % ("true" if not descending else "false"))


def _mapped(index: viewindex.Index, view: str, params: dict, load_doc: Callable[[str, str | None], dict | None],
            enc: Callable[[Any], bytes]) -> dict:
    descending = bool(params.get("descending"))
    skip, limit = params.get("skip", 0), params.get("limit")
    total = index.count(view)
    if "keys" in params:
        selected: list[tuple[str, str, str]]
        found: list[tuple[str, str, str]] = []
        for key in reversed(params["keys"]) if descending else params["keys"]:  # as CouchDB: keys reversed too
            rows = _within_docids(index.rows_for_key(view, enc(key)), params)
            found.extend(_reverse_by_doc(rows) if descending else rows)
        selected = found[skip:] if limit is None else found[skip:skip + limit]
        # CouchDB's offset of a multi-key query comes from merging its shards; with one key it is this.
        first = params["keys"][0] if params["keys"] else None
        offset = index.count_before(view, (enc(first), b""), False) if params["keys"] else 0
    else:
        start, end, inclusive_end = _bounds(params, enc)
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
            value = row["value"]  # a value {_id, _rev} links a document (each defaults to the row's), as CouchDB
            if isinstance(value, dict):
                linked, rev = value.get("_id"), value.get("_rev")
                row["doc"] = load_doc(linked if isinstance(linked, str) else doc_id, rev if isinstance(rev, str) else None)
            else:
                row["doc"] = load_doc(doc_id, None)
        out_rows.append(row)
    return {"total_rows": total, "offset": offset, "rows": out_rows}


def _reduced_row(key: Any, source: str, ddoc: dict, path: str, rows: list[tuple[Any, str, Any, bytes]]) -> dict:
    try:
        return {"key": key, "value": reduce_rows(source, ddoc, path, rows)}
    except ReduceOverflow as exc:  # CouchDB's row names no key
        return {"key": None, "error": exc.error, "reason": exc.reason}


def _within_docids(rows: list[tuple[str, str, str]], params: dict) -> list[tuple[str, str, str]]:
    """The rows of one of several keys between ``startkey_docid`` and ``endkey_docid`` (CouchDB applies both
    to every key; descending, the start is the higher)."""
    first, last = params.get("startkey_docid"), params.get("endkey_docid")
    if first is None and last is None:
        return rows
    if params.get("descending"):
        first, last = last, first
    inclusive = params.get("inclusive_end", True) or params.get("descending")
    inclusive_first = not params.get("descending") or params.get("inclusive_end", True)
    low = collation.encode(first) if first is not None else None
    high = collation.encode(last) if last is not None else None
    kept = []
    for row in rows:
        id_key = collation.encode(row[0])
        if low is not None and (id_key < low if inclusive_first else id_key <= low):
            continue
        if high is not None and (id_key > high if inclusive else id_key >= high):
            continue
        kept.append(row)
    return kept


def _reverse_by_doc(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Rows of one key in descending document order, each document's rows still in emit order."""
    by_doc: dict[str, list[tuple[str, str, str]]] = {}
    for row in rows:
        by_doc.setdefault(row[0], []).append(row)
    return [row for doc_rows in reversed(list(by_doc.values())) for row in doc_rows]


def _reduced(index: viewindex.Index, ddoc: dict, view: str, source: str, params: dict, group: bool,
             group_level: int | None, enc: Callable[[Any], bytes]) -> list[dict]:
    descending = bool(params.get("descending"))
    skip, limit = params.get("skip", 0), params.get("limit")
    path = f"views.{view}.reduce"
    out: list[dict] = []
    if "keys" in params:
        for key in params["keys"]:  # in the order asked, descending or not (as CouchDB)
            rows = [(json.loads(k), i, json.loads(v), enc(key))
                    for i, k, v in _within_docids(index.rows_for_key(view, enc(key)), params)]
            if rows:
                out.append(_reduced_row(key if group else None, source, ddoc, path, rows))
        return out[skip:] if limit is None else out[skip:skip + limit]
    start, end, inclusive_end = _bounds(params, enc)
    _check_range(params, start, end)
    rows_iter = index.scan(view, start, end, inclusive_end, descending)
    if not group or group_level == 0:
        rows = [(json.loads(k), i, json.loads(v), kb) for i, k, v, kb in rows_iter]
        if not rows:
            return []
        result = [_reduced_row(None, source, ddoc, path, rows)]
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
                out.append(_reduced_row(current, source, ddoc, path, members))
        return limit is not None and len(out) >= limit

    for doc_id, key_json, value_json, key_bytes in rows_iter:
        key = json.loads(key_json)
        grouped = collation.group_prefix(key, group_level)
        grouped_enc = key_bytes if grouped is key else enc(grouped)
        if grouped_enc != current_enc:
            if flush():
                return out
            current, current_enc, members = grouped, grouped_enc, []
        members.append((key, doc_id, json.loads(value_json), key_bytes))
    flush()
    return out
