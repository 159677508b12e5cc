"""Mango: ``_find``, ``_index`` (JSON indexes), ``_explain``, answered as CouchDB 3.4 answers.

A JSON index is a design document with ``"language": "query"`` (as CouchDB stores it), so it
replicates and lists as CouchDB's do. Queries scan the database's live documents and test the
selector (store/selector.py); an index decides what CouchDB lets an index decide: whether a
``sort`` is allowed, the order of the results, that documents lacking an indexed field are left
out, and the ``warning`` when none is used. The rows themselves are not kept in an index table
yet: every query reads every document (``execution_stats`` says so).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from typing import Any

from ..errors import BadRequest, CouchError, NotFound
from ..store import Database
from ..store.selector import compile_selector
from . import collation

NO_INDEX = "No matching index found, create an index to optimize query time."
_DOT = re.compile(r"(?<!\\)\.")
_MISSING = object()
DEFAULT_LIMIT = 25
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


# -- queries ------------------------------------------------------------------------------------

def _selector_fields(selector: Any, out: set[str], prefix: str = "") -> set[str]:
    """The field names a selector constrains (through ``$and``), as CouchDB's planner sees them."""
    if isinstance(selector, dict):
        for key, value in selector.items():
            if key == "$and" and isinstance(value, list):
                for part in value:
                    _selector_fields(part, out, prefix)
            elif not key.startswith("$"):
                name = prefix + key
                if isinstance(value, dict) and value and all(not k.startswith("$") for k in value):
                    _selector_fields(value, out, name + ".")
                else:
                    out.add(name)
    return out


def _choose(all_indexes: list[dict], selector: dict, sort: list[tuple[str, str]], use_index: Any) -> tuple[dict | None, str | None]:
    """The JSON index a query uses (None: all documents) and the warning to give."""
    constrained = _selector_fields(selector, set())
    sort_names = [f for f, _ in sort]

    def usable(index: dict) -> bool:
        names = [next(iter(f)) for f in index["def"]["fields"]]
        if not set(names) <= constrained | set(sort_names):
            return False
        return not sort_names or names[:len(sort_names)] == sort_names or \
            (set(sort_names) <= set(names) and names[-len(sort_names):] == sort_names)

    json_indexes = [i for i in all_indexes if i["type"] == "json" and usable(i)]
    warning = None
    if use_index is not None:
        wanted = use_index if isinstance(use_index, list) else [use_index]
        ddoc = "_design/" + str(wanted[0]).removeprefix("_design/")
        chosen = [i for i in json_indexes if i["ddoc"] == ddoc and (len(wanted) < 2 or i["name"] == wanted[1])]
        if chosen:
            return chosen[0], None
        warning = (f"{ddoc} was not used because it does not contain a valid index for this query." if len(wanted) < 2
                   else f"{ddoc}, {wanted[1]} was not used because it is not a valid index for this query.")
    if json_indexes:
        best = min(json_indexes, key=lambda i: len(i["def"]["fields"]))
        return best, warning
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
    return {"dbname": db.name, "index": chosen["index"], "partitioned": False, "selector": body["selector"],
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
    order_fields = [next(iter(f)) for f in index["def"]["fields"]] if index["type"] == "json" else ["_id"]
    partial = index["def"].get("partial_filter_selector")
    partial_test = compile_selector(partial) if partial else None
    matched, examined = [], 0
    # Without a JSON index the scan is in _id order and stops once the page is full, as CouchDB's does.
    enough = skip + limit if index["type"] != "json" and not (sort and sort[0][1] == "desc") else None
    for row in db.all_docs(include_docs=True):
        if row["id"].startswith("_design/"):
            continue
        doc = row["doc"]
        if index["type"] == "json" and any(get_field(doc, f) is _MISSING for f in order_fields):
            continue  # not in the index
        examined += 1
        if partial_test is not None and not partial_test(doc):
            continue
        if predicate(doc):
            matched.append(doc)
            if enough is not None and len(matched) >= enough:
                break
    if index["type"] == "json":
        descending = bool(sort) and sort[0][1] == "desc"
        matched.sort(key=lambda d: (collation.encode([get_field(d, f) for f in order_fields]),
                                    collation.encode(d["_id"])), reverse=descending)
    elif sort and sort[0][1] == "desc":
        matched.reverse()
    page = matched[skip:skip + limit]
    docs = [_project(d, body.get("fields")) for d in page]
    answer: dict[str, Any] = {"docs": docs, "bookmark": _bookmark(skip + len(page)) if page else "nil"}
    if body.get("execution_stats"):
        answer["execution_stats"] = {
            "total_keys_examined": examined if index["type"] != "json" else 0, "total_docs_examined": examined,
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
