"""Mango: ``_find``, ``_index`` (JSON indexes), ``_explain``, answered as CouchDB 3.4 answers.

A JSON index is a design document with ``"language": "query"`` (as CouchDB stores it), so it
replicates and lists as CouchDB's do. Its rows are kept as a view's (store/viewindex.py, built
and brought up to date by views.update with a mapper in Python, no JavaScript): one row per
document that has every indexed field, keyed by the array of their values. A query chooses an
index as CouchDB's planner does, reads the rows between the start and end keys its selector
allows (equality and ranges on the indexed fields, in order), fetches only those documents and
tests the whole selector (store/selector.py) on them. Without a usable index, every document is
read in ``_id`` order, as CouchDB's ``_all_docs`` scan.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from ..errors import BadRequest, CouchError, NotFound
from ..store import Database
from ..store.selector import compile_selector
from . import collation, views

NO_INDEX = "No matching index found, create an index to optimize query time."
_DOT = re.compile(r"(?<!\\)\.")
_MISSING = object()
DEFAULT_LIMIT = 25
# Index rows whose documents are fetched together.
FETCH = 100
# mango.index_scan_warning_threshold: documents examined per result above which CouchDB warns.
SCAN_WARNING_RATIO = 10
SCAN_WARNING = ("The number of documents examined is high in proportion to the number of results returned. "
                "Consider adding a more specific index to improve this.")


class MangoError(BadRequest):
    """A Mango request CouchDB refuses with a named error (400; the name is given where raised)."""


def _path(name: str) -> list[str]:
    return [p.replace("\\.", ".") for p in _DOT.split(name)]


def get_field(doc: Any, name: str) -> Any:
    """A dotted field of a document, or ``_MISSING``."""
    for part in _path(name):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return _MISSING
    return doc


# -- indexes ------------------------------------------------------------------------------------

def _fields(spec: Any) -> list[tuple[str, str]]:
    """``["a", {"b": "desc"}]`` -> ``[("a", "asc"), ("b", "desc")]``.

    :raises BadRequest: for a malformed list.
    """
    if not isinstance(spec, list):
        raise BadRequest("fields must be an array")
    out = []
    for item in spec:
        if isinstance(item, str):
            out.append((item, "asc"))
        elif isinstance(item, dict) and len(item) == 1 and list(item.values())[0] in ("asc", "desc"):
            out.append(next(iter(item.items())))
        else:
            raise BadRequest(f"Invalid sort field: {json.dumps(item)}")
    return out


def indexes(db: Database) -> list[dict]:
    """Every index: ``_all_docs`` first, then the JSON indexes of ``language: query`` design documents."""
    found = [{"ddoc": None, "name": "_all_docs", "type": "special", "def": {"fields": [{"_id": "asc"}]}}]
    for row in db.all_docs(start="_design/", end="_design0", include_docs=True):
        ddoc = row["doc"]
        if ddoc.get("language") != "query" or not isinstance(ddoc.get("views"), dict):
            continue
        for name, view in sorted(ddoc["views"].items()):
            definition = (view.get("options") or {}).get("def") if isinstance(view, dict) else None
            if isinstance(definition, dict) and isinstance(definition.get("fields"), list):
                entry = {"ddoc": ddoc["_id"], "name": name, "type": "json", "partitioned": False, "def": definition}
                found.append(entry)
    return found


def create_index(db: Database, body: dict) -> dict:
    """``POST /{db}/_index``: the design document is written (or found already there)."""
    index = body.get("index")
    if not isinstance(index, dict) or "fields" not in index:
        raise MangoError("Missing required key: index" if not isinstance(index, dict) else "Missing required key: fields",
                         error="missing_required_key")
    if body.get("type", "json") != "json":
        raise MangoError(f"Invalid index type: {body.get('type')}", error="invalid_index_type")
    fields = [{f: d} for f, d in _fields(index["fields"])]
    if not fields:
        raise MangoError("Index fields cannot be empty", error="invalid_index_fields")
    if len({d for item in fields for d in item.values()}) > 1:
        raise MangoError("Sorts currently only support a single direction for all fields.", error="unsupported_mixed_sort")
    definition: dict[str, Any] = {"fields": fields}
    if "partial_filter_selector" in index:
        compile_selector(index["partial_filter_selector"])
        definition["partial_filter_selector"] = index["partial_filter_selector"]
    digest = hashlib.sha1(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    name = body.get("name") or digest
    # Two indexes on the same fields under different names go to different design documents.
    ddoc_digest = hashlib.sha1(json.dumps([definition, name], sort_keys=True).encode()).hexdigest()
    ddoc_id = "_design/" + (body.get("ddoc") or ddoc_digest).removeprefix("_design/")
    view = {"map": {"fields": {f: d for item in fields for f, d in item.items()},
                    **({"partial_filter_selector": definition["partial_filter_selector"]}
                       if "partial_filter_selector" in definition else {})},
            "reduce": "_count", "options": {"def": definition}}
    try:
        ddoc = db.get(ddoc_id)
    except NotFound:
        ddoc = {"_id": ddoc_id, "language": "query", "views": {}}
    if ddoc.get("language") != "query":
        raise MangoError(f"Existing design doc has an invalid language: {json.dumps(ddoc.get('language', False))}",
                         error="invalid_ddoc_lang")
    if ddoc.get("views", {}).get(name) == view:
        return {"result": "exists", "id": ddoc_id, "name": name}
    ddoc.setdefault("views", {})[name] = view
    ddoc["language"] = "query"
    result = db.bulk_docs([ddoc])[0]
    if "error" in result:
        raise CouchError(result.get("reason"), error=result["error"])
    return {"result": "created", "id": ddoc_id, "name": name}


def delete_index(db: Database, ddoc_name: str, name: str) -> dict:
    """``DELETE /{db}/_index/{ddoc}/json/{name}``."""
    ddoc_id = "_design/" + ddoc_name.removeprefix("_design/")
    try:
        ddoc = db.get(ddoc_id)
    except NotFound:
        raise NotFound("missing") from None
    if name not in (ddoc.get("views") or {}):
        raise NotFound("Index not found")
    del ddoc["views"][name]
    if not ddoc["views"]:
        ddoc["_deleted"] = True
    db.bulk_docs([ddoc])
    return {"ok": True}


def _index_views(ddoc: dict) -> list[str]:
    """Names of a ``language: query`` design document's JSON indexes."""
    return sorted(n for n, v in (ddoc.get("views") or {}).items()
                  if isinstance(v, dict) and isinstance((v.get("options") or {}).get("def"), dict))


def _map_json(ddoc: dict, names: list[str], docs: list[dict]) -> list[list[list[Any]]]:
    """The rows of JSON indexes: ``[values of the fields], null`` for a document that has all of them
    (and passes the index's ``partial_filter_selector``)."""
    specs = []
    for name in names:
        definition = ddoc["views"][name]["options"]["def"]
        fields = [next(iter(f)) for f in definition.get("fields", [])]
        partial = definition.get("partial_filter_selector")
        specs.append((fields, compile_selector(partial) if partial else None))
    out = []
    for doc in docs:
        per_view = []
        for fields, partial_test in specs:
            values = [get_field(doc, f) for f in fields]
            keep = fields and all(v is not _MISSING for v in values) and (partial_test is None or partial_test(doc))
            per_view.append([[values, None]] if keep else [])
        out.append(per_view)
    return out


def _conditions(selector: Any, out: dict[str, list[Any]], prefix: str = "") -> dict[str, list[Any]]:
    """The conditions on each field that every match must meet (top level and ``$and``)."""
    if isinstance(selector, dict):
        for key, value in selector.items():
            if key == "$and" and isinstance(value, list):
                for part in value:
                    _conditions(part, out, prefix)
            elif not key.startswith("$"):
                name = prefix + key
                if isinstance(value, dict) and value and all(not k.startswith("$") for k in value):
                    _conditions(value, out, name + ".")
                else:
                    out.setdefault(name, []).append(value)
    return out


def _bounds(conditions: list[Any]) -> tuple[Any, Any]:
    """The lowest and highest value a field may have (``_MISSING``: unbounded), tightest first."""
    lows, highs = [], []
    for cond in conditions:
        ops = cond if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond) else {"$eq": cond}
        for op, arg in ops.items():
            if op == "$eq":
                lows.append(arg)
                highs.append(arg)
            elif op in ("$gt", "$gte"):
                lows.append(arg)
            elif op in ("$lt", "$lte"):
                highs.append(arg)
    low = max(lows, key=collation.encode) if lows else _MISSING
    high = min(highs, key=collation.encode) if highs else _MISSING
    return low, high


def key_range(selector: dict, fields: list[str]) -> tuple[list[Any], list[Any]]:
    """CouchDB's start and end keys of a JSON index for a selector (mango_idx_view.erl): the low
    bounds of the fields in order up to the first unbounded one, and the high bounds the same
    way; the end key is then followed by the highest value."""
    conditions = _conditions(selector, {})
    start: list[Any] = []
    end: list[Any] = []
    ends_open = [False, False]
    for field in fields:
        low, high = _bounds(conditions.get(field, []))
        for side, (value, keys) in enumerate(((low, start), (high, end))):
            if ends_open[side] or value is _MISSING:
                ends_open[side] = True
            else:
                keys.append(value)
    return start, end


def _range_bytes(index: dict, selector: dict) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """The (key bytes, id bytes) bounds of a JSON index's rows a selector allows, in ascending order."""
    start, end = key_range(selector, [next(iter(f)) for f in index["def"]["fields"]])
    low = (collation.encode(start), b"")
    high = (collation.encode(end)[:-1] + collation.HIGHEST, collation.HIGHEST)  # [end..., <max>]
    return low, high


def _index_rows(db: Database, index: dict, selector: dict, descending: bool) -> Iterator[tuple[str, str]]:
    """(doc id, key JSON) of the rows of a JSON index a selector allows, in index order; the index is
    brought up to date first."""
    ddoc = db.get(index["ddoc"])
    views.update(db, ddoc, _index_views(ddoc), _map_json)
    low, high = _range_bytes(index, selector)
    bounds = (high, low) if descending else (low, high)
    for doc_id, key_json, _value, _bytes in views.index_of(db, ddoc).scan(index["name"], *bounds, True, descending):
        yield doc_id, key_json


def _named(selector: Any, out: set[str], prefix: str = "") -> bool:
    """Every field a selector names, anywhere; False when it matches inside arrays or maps (then no
    index covers it)."""
    if isinstance(selector, list):
        return all(_named(part, out, prefix) for part in selector)
    if not isinstance(selector, dict):
        return True
    for key, value in selector.items():
        if key in ("$elemMatch", "$allMatch", "$keyMapMatch"):
            return False
        if key.startswith("$"):
            if key in ("$and", "$or", "$nor", "$not") and not _named(value, out, prefix):
                return False
            continue
        out.add(prefix + key)
        if isinstance(value, dict) and not _named(value, out, prefix + key + "."):
            return False
    return True


def _covers(index: dict, body: dict) -> list[str] | None:
    """The index's fields when its rows alone answer the query (CouchDB 3.4's covering index: the
    asked ``fields`` and every field of the selector are indexed, or ``_id``); else None."""
    fields = [next(iter(f)) for f in index["def"]["fields"]]
    asked = body.get("fields")
    named: set[str] = set()
    if not isinstance(asked, list) or not asked or not _named(body["selector"], named):
        return None
    named = {n for n in named if not any(f.startswith(n + ".") for f in fields)}  # {"at": {"day": 6}}: "at" leads to at.day
    return fields if set(asked) | named <= set(fields) | {"_id"} else None


def _from_index(db: Database, index: dict, body: dict, predicate: Any, descending: bool, want: int) -> tuple[list[dict], int, int]:
    """Up to ``want`` matching documents in index order, with the rows and documents examined.

    Only the documents of the rows in range are read, in index order, until the page is full; a
    covering index answers from its rows and reads none.
    """
    covered = _covers(index, body)
    rows = _index_rows(db, index, body["selector"], descending)
    matched: list[dict] = []
    keys = examined = 0
    while len(matched) < want:
        page = list(itertools.islice(rows, FETCH))
        if not page:
            break
        if covered is not None:
            docs: Iterator[Any] = (_from_key(doc_id, covered, json.loads(key)) for doc_id, key in page)
        else:
            docs = (row.get("doc") for row in db.all_docs_keys([doc_id for doc_id, _ in page], include_docs=True))
        for doc in docs:  # each document read as it is reached
            if len(matched) >= want:
                break
            keys += 1
            if doc is None:
                continue  # deleted since the index was read
            examined += covered is None
            if predicate(doc):
                matched.append(doc)
    return matched, keys, examined


def _from_key(doc_id: str, fields: list[str], values: list[Any]) -> dict:
    """The document a covering index's row stands for: its id and indexed fields."""
    doc: dict[str, Any] = {"_id": doc_id}
    for name, value in zip(fields, values):
        parts, target = _path(name), doc
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return doc


def _mrargs(index: dict, body: dict, descending: bool) -> dict:
    """What ``_explain`` says of the rows read, in CouchDB's shape (``<MAX>``: above every key)."""
    first: Any
    last: Any
    if index["type"] == "json":
        start, end = key_range(body["selector"], [next(iter(f)) for f in index["def"]["fields"]])
        first, last = start, [*end, "<MAX>"]
    else:
        first, last = None, "<MAX>"
    if descending:
        first, last = last, first
    include_docs = index["type"] != "json" or _covers(index, body) is None
    return {"include_docs": include_docs, "view_type": "map", "reduce": False, "partition": None, "start_key": first,
            "end_key": last, "direction": "rev" if descending else "fwd", "stable": False, "update": True,
            "conflicts": "undefined"}


# -- queries ------------------------------------------------------------------------------------

def _choose(all_indexes: list[dict], selector: dict, sort: list[tuple[str, str]], use_index: Any) -> tuple[dict | None, str | None]:
    """The JSON index a query uses (None: all documents) and the warning to give."""
    constrained = set(_conditions(selector, {}))
    sort_names = [f for f, _ in sort]

    def usable(index: dict) -> bool:
        names = [next(iter(f)) for f in index["def"]["fields"]]
        if not set(names) <= constrained | set(sort_names):
            return False
        return not sort_names or names[:len(sort_names)] == sort_names or \
            (set(sort_names) <= set(names) and names[-len(sort_names):] == sort_names)

    json_indexes = [i for i in all_indexes if i["type"] == "json" and usable(i)]
    warning = None
    # A partial index is used only when asked for by name (its rows leave documents out).
    automatic = [i for i in json_indexes if "partial_filter_selector" not in i["def"]]
    if use_index is not None:
        wanted = use_index if isinstance(use_index, list) else [use_index]
        ddoc = "_design/" + str(wanted[0]).removeprefix("_design/")
        chosen = [i for i in json_indexes if i["ddoc"] == ddoc and (len(wanted) < 2 or i["name"] == wanted[1])]
        if chosen:
            return chosen[0], None
        warning = (f"{ddoc} was not used because it does not contain a valid index for this query." if len(wanted) < 2
                   else f"{ddoc}, {wanted[1]} was not used because it is not a valid index for this query.")
    if automatic:
        # CouchDB's ranking (mango_cursor_view:choose_best_index): the longest prefix of fields the
        # selector bounds (equalities, then one range), then the fewest fields, then ddoc and name.
        conditions = _conditions(selector, {})

        def rank(index: dict) -> tuple[int, int, str, str]:
            prefix = 0
            for field in (next(iter(f)) for f in index["def"]["fields"]):
                low, high = _bounds(conditions.get(field, []))
                if low is _MISSING and high is _MISSING:
                    break
                prefix += 1
                if low is _MISSING or high is _MISSING or collation.encode(low) != collation.encode(high):
                    break
            return -prefix, len(index["def"]["fields"]), index["ddoc"], index["name"]

        return min(automatic, key=rank), warning
    if sort_names and sort_names != ["_id"]:
        raise MangoError("No index exists for this sort, try indexing by the sort fields.", error="no_usable_index")
    return None, (warning + "\n" + NO_INDEX) if warning else NO_INDEX


def _bookmark(skip: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"skip": skip}).encode()).decode().rstrip("=")


def _from_bookmark(text: Any) -> int:
    if text in (None, "nil"):
        return 0
    try:
        value = json.loads(base64.urlsafe_b64decode(str(text) + "=" * (-len(str(text)) % 4)))
        return int(value["skip"])
    except (ValueError, KeyError, TypeError):
        raise MangoError(f"Invalid bookmark value: {json.dumps(text)}", error="invalid_bookmark") from None


def _check(body: Any) -> dict:
    if not isinstance(body, dict) or "selector" not in body:
        raise MangoError("Missing required key: selector", error="missing_required_key")
    if not isinstance(body["selector"], dict):
        raise MangoError("Invalid selector", error="invalid_selector")
    for name in ("limit", "skip"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise MangoError(f"{json.dumps(value)} is not an integer greater than or equal to zero",
                             error="invalid_non_neg_integer")
    return body


def plan(db: Database, body: Any) -> dict:
    """What ``_explain`` answers (and ``_find`` follows)."""
    body = _check(body)
    sort = _fields(body.get("sort", []))
    if len({d for _, d in sort}) > 1:
        raise MangoError("Sorts currently only support a single direction for all fields.", error="unsupported_mixed_sort")
    index, warning = _choose(indexes(db), body["selector"], sort, body.get("use_index"))
    return {"index": index or indexes(db)[0], "sort": sort, "warning": warning, "selector": body["selector"]}


def explain(db: Database, body: Any) -> dict:
    """``POST /{db}/_explain``."""
    chosen = plan(db, body)
    limit, skip = body.get("limit", DEFAULT_LIMIT), body.get("skip", 0)
    descending = bool(chosen["sort"]) and chosen["sort"][0][1] == "desc"
    return {"dbname": db.name, "index": chosen["index"], "partitioned": False, "selector": body["selector"],
            "mrargs": _mrargs(chosen["index"], body, descending),
            "covering": chosen["index"]["type"] == "json" and _covers(chosen["index"], body) is not None,
            "opts": {"use_index": [], "bookmark": "nil", "limit": limit, "skip": skip, "sort": {},
                     "fields": body.get("fields", "all_fields"), "r": [49], "conflicts": False},
            "limit": limit, "skip": skip, "fields": body.get("fields", "all_fields")}


def find(db: Database, body: Any) -> dict:
    """``POST /{db}/_find``."""
    started = time.monotonic()
    chosen = plan(db, body)
    predicate = compile_selector(body["selector"])
    index, sort = chosen["index"], chosen["sort"]
    limit, skip = body.get("limit", DEFAULT_LIMIT), body.get("skip", 0) + _from_bookmark(body.get("bookmark"))
    descending = bool(sort) and sort[0][1] == "desc"
    matched: list[dict] = []
    keys, examined = 0, 0
    if index["type"] == "json":  # index order is the answer's order
        matched, keys, examined = _from_index(db, index, body, predicate, descending, skip + limit)
    else:
        # Without a JSON index the scan is in _id order and stops once the page is full, as CouchDB's does.
        enough = skip + limit if not descending else None
        for row in db.all_docs(include_docs=True):
            if row["id"].startswith("_design/"):
                continue
            examined += 1
            if predicate(row["doc"]):
                matched.append(row["doc"])
                if enough is not None and len(matched) >= enough:
                    break
        keys = examined
        if descending:
            matched.reverse()
    page_docs = matched[skip:skip + limit]
    docs = [_project(d, body.get("fields")) for d in page_docs]
    answer: dict[str, Any] = {"docs": docs, "bookmark": _bookmark(skip + len(page_docs)) if page_docs else "nil"}
    if body.get("execution_stats"):
        answer["execution_stats"] = {
            "total_keys_examined": keys, "total_docs_examined": examined,
            "total_quorum_docs_examined": 0, "results_returned": len(docs),
            "execution_time_ms": round((time.monotonic() - started) * 1000, 3)}
    warnings = [chosen["warning"]] if chosen["warning"] else []
    if examined / max(len(docs), 1) > SCAN_WARNING_RATIO:
        warnings.append(SCAN_WARNING)
    if warnings:
        answer["warning"] = "\n".join(warnings)
    return answer


def _project(doc: dict, fields: Any) -> dict:
    """Only the asked fields (dotted ones nested again), as CouchDB's ``fields``."""
    if not fields:
        return doc
    out: dict[str, Any] = {}
    for name in fields:
        value = get_field(doc, name)
        if value is _MISSING:
            continue
        parts, target = _path(name), out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return out
