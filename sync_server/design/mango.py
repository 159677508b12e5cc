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
import struct
import time
from collections.abc import Iterator
from typing import Any

from ..errors import BadRequest, CouchError, InvalidDocId, NotFound
from ..store import Database
from ..store.selector import compile_selector, normalize
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
    """A dotted field of a document (``favorites.3``: an array's item), or ``_MISSING``."""
    for part in _path(name):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
    return doc


def _show(value: Any) -> str:
    return json.dumps(value)


def _sort_spec(spec: Any) -> list[tuple[str, str]]:
    """``["a", {"b": "desc"}]`` -> ``[("a", "asc"), ("b", "desc")]``, refused as CouchDB refuses
    a malformed ``sort`` or index ``fields`` (``invalid_sort_json``, ``invalid_sort_field``)."""
    if not isinstance(spec, list):
        raise MangoError(f"Sort must be an array of sort specs, not: {_show(spec)}", error="invalid_sort_json")
    out = []
    for item in spec:
        if isinstance(item, str) and item:
            out.append((item, "asc"))
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)) and \
                next(iter(item.values())) in ("asc", "desc"):
            out.append(next(iter(item.items())))
        else:
            raise MangoError(f"Invalid sort field: {item if isinstance(item, str) else _show(item)}",
                             error="invalid_sort_field")
    return out


def columns(index: dict) -> list[str]:
    """The fields a JSON index is keyed by, in order (``["a"]`` as older CouchDBs wrote it, or ``[{"a": "asc"}]``)."""
    out = []
    for item in index["def"].get("fields") or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and item:
            out.append(next(iter(item)))
    return out


def partial_selector(index: dict) -> Any:
    """The selector a partial index keeps documents by (``partial_filter_selector``, or the ``selector``
    of the view's ``map`` as CouchDB 2.0 wrote it), or None."""
    return index["def"].get("partial_filter_selector") or index.get("_selector")


def public(index: dict) -> dict:
    """An index as ``GET /{db}/_index`` and ``_explain`` show it."""
    return {k: v for k, v in index.items() if not k.startswith("_")}


# -- indexes ------------------------------------------------------------------------------------

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
                entry = {"ddoc": ddoc["_id"], "name": name, "type": "json", "partitioned": False,
                         "def": _shown_definition(definition)}
                old_selector = view["map"].get("selector") if isinstance(view.get("map"), dict) else None
                if isinstance(old_selector, dict) and old_selector:
                    entry["_selector"] = old_selector
                found.append(entry)
    return found


def _shown_definition(definition: dict) -> dict:
    """An index definition as CouchDB lists it: each field as ``{name: direction}``, and the
    ``partial_filter_selector`` (if not empty) in normal form; the design document keeps both as given."""
    fields = [{item: "asc"} if isinstance(item, str) else item for item in definition["fields"]
              if isinstance(item, str) or (isinstance(item, dict) and len(item) == 1)]
    shown: dict[str, Any] = {"fields": fields}
    partial = definition.get("partial_filter_selector")
    if isinstance(partial, dict) and partial:
        shown["partial_filter_selector"] = normalize(partial)
    return shown


def create_index(db: Database, body: dict) -> dict:
    """``POST /{db}/_index``: the design document is written (or found already there)."""
    if not isinstance(body, dict):
        raise MangoError("Missing required key: index", error="missing_required_key")
    index = body.get("index")
    if "index" in body and not isinstance(index, dict):
        raise MangoError(f"JSON indexes must be an object, not: {_show(index)}", error="invalid_index")
    if not isinstance(index, dict) or "fields" not in index:
        raise MangoError("Missing required key: index" if not isinstance(index, dict) else "Missing required key: fields",
                         error="missing_required_key")
    kind, ddoc_name, name = (_name_option(body, key) for key in ("type", "ddoc", "name"))
    if kind not in (None, "json"):
        if kind == "text":
            raise MangoError(f"Invalid index type: {kind}", error="invalid_index_type")
        raise MangoError(f"Invalid type for index: {kind}", error="invalid_index")
    _pos_integer(body, "w")
    if body.get("partitioned", False) is not False:  # CouchDB answers 500 for either
        raise MangoError("Partitioned indexes need a partitioned database, and none is partitioned here"
                         if body["partitioned"] is True else f"Invalid partitioned value: {_show(body['partitioned'])}",
                         error="invalid_partitioned_value")
    _only(body, INDEX_KEYS)
    _only(index, INDEX_DEF_KEYS)  # "selector", CouchDB 2.0's partial_filter_selector, included
    if ddoc_name is not None and not ddoc_name.removeprefix("_design/"):
        raise InvalidDocId(f"Illegal document id `{ddoc_name}`")
    fields = [{f: d} for f, d in _sort_spec(index["fields"])]
    if not fields:
        raise MangoError("Index fields cannot be empty", error="invalid_index_fields")
    if len({d for item in fields for d in item.values()}) > 1:
        raise MangoError("Sorts currently only support a single direction for all fields.", error="unsupported_mixed_sort")
    definition: dict[str, Any] = {"fields": fields}
    if "partial_filter_selector" in index:
        compile_selector(index["partial_filter_selector"])
        definition["partial_filter_selector"] = index["partial_filter_selector"]
    given = {**definition, "fields": index["fields"]}  # CouchDB keeps the definition as it was sent
    digest = couch_index_name(index, body)  # the name CouchDB gives the same request, so replicas agree
    name = name or digest
    ddoc_id = "_design/" + (ddoc_name or digest).removeprefix("_design/")
    view = {"map": {"fields": {f: d for item in fields for f, d in item.items()},
                    **({"partial_filter_selector": normalize(definition["partial_filter_selector"])}
                       if "partial_filter_selector" in definition else {})},
            "reduce": "_count", "options": {"def": given}}
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


class _Atom(str):
    """An Erlang atom, beside the strings (binaries) of decoded JSON."""


def couch_index_name(index: dict, body: dict) -> str:
    """The name CouchDB 3.4 makes for an index without one (mango_idx:gen_name): the SHA-1 of
    ``term_to_binary({Def, lists:usort(Opts)}, [{minor_version, 1}])``, Def being the ``index``
    object as sent and Opts ``POST /_index``'s options with their defaults. The same request
    makes the same design document on the hub and on a kiosk."""
    auto = _Atom("auto_name")
    opts = [(_Atom("ddoc"), body.get("ddoc", auto)), (_Atom("def"), index), (_Atom("name"), body.get("name", auto)),
            (_Atom("partitioned"), body.get("partitioned", _Atom("db_default"))),
            (_Atom("type"), body.get("type", "json")), (_Atom("w"), body.get("w", 2))]  # in atom order
    return hashlib.sha1(b"\x83" + _term((index, opts))).hexdigest()


def _term(value: Any) -> bytes:
    """Erlang's external term format of a value as jiffy decodes JSON (objects are ``{[{K, V}]}``),
    as OTP 25 writes it with ``minor_version`` 1."""
    if isinstance(value, _Atom) or value is None or isinstance(value, bool):
        text = (value if isinstance(value, _Atom) else "null" if value is None else str(value).lower()).encode("latin-1")
        return b"d" + struct.pack(">H", len(text)) + text  # ATOM_EXT
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"m" + struct.pack(">I", len(data)) + data  # BINARY_EXT
    if isinstance(value, int):
        if 0 <= value <= 255:
            return b"a" + bytes([value])  # SMALL_INTEGER_EXT
        if -(2 ** 31) <= value < 2 ** 31:
            return b"b" + struct.pack(">i", value)  # INTEGER_EXT
        digits = abs(value).to_bytes((abs(value).bit_length() + 7) // 8, "little")
        head = b"n" + bytes([len(digits)]) if len(digits) < 256 else b"o" + struct.pack(">I", len(digits))
        return head + bytes([value < 0]) + digits  # SMALL_BIG_EXT, LARGE_BIG_EXT
    if isinstance(value, float):
        return b"F" + struct.pack(">d", value)  # NEW_FLOAT_EXT
    if isinstance(value, dict):  # {[{K, V}, ...]}
        return _term((list(value.items()),))
    if isinstance(value, tuple):
        head = b"h" + bytes([len(value)]) if len(value) < 256 else b"i" + struct.pack(">I", len(value))
        return head + b"".join(_term(v) for v in value)
    if isinstance(value, list):
        if not value:
            return b"j"  # NIL_EXT
        if len(value) < 65536 and all(type(v) is int and 0 <= v <= 255 for v in value):
            return b"k" + struct.pack(">H", len(value)) + bytes(value)  # STRING_EXT
        return b"l" + struct.pack(">I", len(value)) + b"".join(_term(v) for v in value) + b"j"
    raise TypeError(f"no Erlang term for {type(value).__name__}")


def _name_option(body: dict, key: str) -> str | None:
    """The ``type``, ``ddoc`` or ``name`` of ``POST /{db}/_index``: a non-empty string when given."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, str):
        raise MangoError(f"Invalid string: {_show(value)}", error="invalid_string")
    if not value and key != "type":
        raise MangoError("Index name or ddoc cannot be empty string", error="invalid_empty_string")
    return value


def delete_index(db: Database, ddoc_name: str, name: str, kind: str = "json") -> dict:
    """``DELETE /{db}/_index/{ddoc}/{type}/{name}``: only JSON indexes exist here, anything else is missing."""
    ddoc_id = "_design/" + ddoc_name.removeprefix("_design/")
    try:
        ddoc = db.get(ddoc_id)
    except NotFound:
        raise NotFound("missing") from None
    if kind != "json" or ddoc.get("language") != "query" or name not in _index_views(ddoc):
        raise NotFound("missing")
    del ddoc["views"][name]
    if not ddoc["views"]:
        ddoc["_deleted"] = True
    db.bulk_docs([ddoc])
    return {"ok": True}


def bulk_delete(db: Database, body: Any) -> dict:
    """``POST /{db}/_index/_bulk_delete``: every JSON index of each named design document goes."""
    ids = body.get("docids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MangoError(f"Bulk Delete requires an array of non-null docids. Docids: {_show(ids)}",
                         error="invalid_bulk_docs")
    _pos_integer(body, "w")
    _only(body, BULK_DELETE_KEYS)
    success, fail = [], []
    known = {i["ddoc"] for i in indexes(db) if i["type"] == "json"}
    for ddoc_id in ids:
        full = "_design/" + ddoc_id.removeprefix("_design/")
        if full not in known:
            fail.append({"id": ddoc_id, "error": "not_found"})
            continue
        ddoc = db.get(full)
        for name in _index_views(ddoc):
            del ddoc["views"][name]
        if not ddoc["views"]:
            ddoc["_deleted"] = True
        result = db.bulk_docs([ddoc])[0]
        if "error" in result:
            fail.append({"id": ddoc_id, "error": result["error"]})
        else:
            success.append({"id": ddoc_id, "ok": True})
    return {"success": success, "fail": fail}


def _index_views(ddoc: dict) -> list[str]:
    """Names of a ``language: query`` design document's JSON indexes."""
    return sorted(n for n, v in (ddoc.get("views") or {}).items()
                  if isinstance(v, dict) and isinstance((v.get("options") or {}).get("def"), dict))


def _map_json(ddoc: dict, names: list[str], docs: list[dict]) -> list[list[list[Any]]]:
    """The rows of JSON indexes: ``[values of the fields], null`` for a document that has all of them
    (and passes the index's ``partial_filter_selector``)."""
    specs = []
    for name in names:
        view = ddoc["views"][name]
        entry = {"def": view["options"]["def"],
                 "_selector": view["map"].get("selector") if isinstance(view.get("map"), dict) else None}
        partial = partial_selector(entry)
        specs.append((columns(entry), compile_selector(partial) if isinstance(partial, dict) else None))
    out = []
    for doc in docs:
        per_view = []
        for fields, partial_test in specs:
            values = [get_field(doc, f) for f in fields]
            keep = fields and all(v is not _MISSING for v in values) and (partial_test is None or partial_test(doc))
            per_view.append([[values, None]] if keep else [])
        out.append(per_view)
    return out


def _conditions(selector: Any) -> dict[str, list[Any]]:
    """The conditions on each field that every match must meet, read from the selector's normal form
    (so a negated condition counts as its opposite, as CouchDB's planner sees it)."""
    return _gather(normalize(selector), {})


def _gather(selector: Any, out: dict[str, list[Any]], prefix: str = "") -> dict[str, list[Any]]:
    """The conditions on each field that every match must meet (top level and ``$and``)."""
    if isinstance(selector, dict):
        for key, value in selector.items():
            if key == "$and" and isinstance(value, list):
                for part in value:
                    _gather(part, out, prefix)
            elif not key.startswith("$"):
                name = prefix + key
                if isinstance(value, dict) and value and all(not k.startswith("$") for k in value):
                    _gather(value, out, name + ".")
                else:
                    out.setdefault(name, []).append(value)
    return out


def _operators(cond: Any) -> dict[str, Any]:
    """A field's condition as operators (a plain value is ``$eq``)."""
    return cond if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond) else {"$eq": cond}


# The operators CouchDB reads an index range from (mango_idx_view.erl, indexable/1).
_INDEXABLE = frozenset({"$lt", "$lte", "$eq", "$gt", "$gte", "$beginsWith", "$exists"})


def _indexable(conditions: dict[str, list[Any]]) -> set[str]:
    """The fields whose conditions an index can be read by."""
    return {f for f, conds in conditions.items() if any(op in _INDEXABLE for c in conds for op in _operators(c))}


def _constant(conditions: dict[str, list[Any]], field: str) -> bool:
    """Whether the selector fixes a field to one value (``$eq``)."""
    return any("$eq" in _operators(c) for c in conditions.get(field, []))


def _unmet(selector: Any, need: set[str], prefix: str = "") -> set[str]:
    """The fields of ``need`` a selector does not require to exist (CouchDB's has_required_fields):
    every condition but ``$exists: false`` requires its field; ``$and`` is seen through, an ``$or``
    requires what all its branches require (an empty one: everything)."""
    if not need or not isinstance(selector, dict):
        return need
    for key, value in selector.items():
        if key == "$and" and isinstance(value, list):
            for part in value:
                need = _unmet(part, need, prefix)
        elif key == "$or" and isinstance(value, list):
            need = set().union(*(_unmet(part, need, prefix) for part in value)) if value else set()
        elif key.startswith("$"):
            continue
        elif isinstance(value, dict) and value and all(not k.startswith("$") for k in value):
            need = _unmet(value, need, prefix + key + ".")
        elif _operators(value) != {"$exists": False}:
            need = need - {prefix + key}
    return need


def _can_sort(cols: list[str], sort_names: list[str], conditions: dict[str, list[Any]]) -> bool:
    """Whether an index's order is the asked order: the sort fields follow in order, after columns
    the selector holds constant (CouchDB's can_use_sort)."""
    if not sort_names:
        return True
    for i, col in enumerate(cols):
        if col == sort_names[0]:
            return cols[i:i + len(sort_names)] == sort_names
        if not _constant(conditions, col):
            return False
    return False


def _unusable(index: dict, selector: dict, sort_names: list[str], conditions: dict[str, list[Any]]) -> list[str]:
    """Why an index cannot answer a query, in CouchDB's words (is_usable; empty: it can): a column the
    selector does not require (sort names aside), or an order that is not the asked one."""
    if index["type"] == "special":
        if not sort_names:
            return []
        fits = "_id" in _indexable(conditions)
        cols = ["_id"]
    else:
        cols = columns(index)
        fits = not _unmet(selector, set(cols) - set(sort_names) - {"_id", "_rev"})
    return ["field_mismatch"] * (not fits) + ["sort_order_mismatch"] * (not _can_sort(cols, sort_names, conditions))


def _bounds(conditions: list[Any]) -> tuple[Any, Any]:
    """The lowest and highest value a field may have (``_MISSING``: unbounded), tightest first."""
    lows, highs = [], []
    for cond in conditions:
        for op, arg in _operators(cond).items():
            if op == "$eq":
                lows.append(arg)
                highs.append(arg)
            elif op in ("$gt", "$gte"):
                lows.append(arg)
            elif op in ("$lt", "$lte"):
                highs.append(arg)
            elif op == "$beginsWith" and isinstance(arg, str):
                lows.append(arg)
                highs.append(arg + "\uffff")
    low = max(lows, key=collation.encode) if lows else _MISSING
    high = min(highs, key=collation.encode) if highs else _MISSING
    return low, high


def key_range(selector: dict, fields: list[str]) -> tuple[list[Any], list[Any]]:
    """CouchDB's start and end keys of a JSON index for a selector (mango_idx_view.erl): the low
    bounds of the fields in order up to the first unbounded one, and the high bounds the same
    way; the end key is then followed by the highest value."""
    conditions = _conditions(selector)
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


def _id_range(selector: dict) -> tuple[Any, Any]:
    """The ``_id`` bounds of an ``_all_docs`` scan (``_MISSING``: open)."""
    return _bounds(_conditions(selector).get("_id", []))


def _nothing(selector: dict) -> bool:
    """CouchDB reads no rows at all for a selector that is only an empty ``$or``, ``$and``, ``$in`` or
    ``$all`` (mango_cursor's maybe_noop_range)."""
    return len(selector) == 1 and next(iter(selector.items())) in (("$or", []), ("$and", []), ("$in", []), ("$all", []))


Position = dict[str, Any]  # where a row is in its index: {"key": key, "id": doc id}, or {"id": doc id} in _all_docs


def _range_bytes(index: dict, selector: dict) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """The (key bytes, id bytes) bounds of a JSON index's rows a selector allows, in ascending order."""
    start, end = key_range(selector, columns(index))
    low = (collation.encode(start), b"")
    high = (collation.encode(end)[:-1] + collation.HIGHEST, collation.HIGHEST)  # [end..., <max>]
    return low, high


def _index_rows(db: Database, index: dict, selector: dict, descending: bool, update: bool,
                after: Position | None = None) -> Iterator[tuple[str, str]]:
    """(doc id, key JSON) of the rows of a JSON index a selector allows, in index order, those after
    ``after`` only (a bookmark's row); the index is brought up to date first unless ``update`` is
    false (then a never built index has no rows)."""
    ddoc = db.get(index["ddoc"])
    if update:
        views.update(db, ddoc, _index_views(ddoc), _map_json)
    stored = views.index_of(db, ddoc)
    if not update and stored.built_seq() is None:
        return
    low, high = _range_bytes(index, selector)
    mark: tuple[bytes, bytes] | None = None
    if after is not None:
        if "key" not in after:
            raise MangoError("Invalid bookmark value: not one of this index", error="invalid_bookmark")
        mark = (collation.encode(after["key"]), collation.encode(after["id"]))
        low, high = (low, min(high, mark)) if descending else (max(low, mark), high)
    bounds = (high, low) if descending else (low, high)
    for doc_id, key_json, _value, key_bytes in stored.scan(index["name"], *bounds, True, descending):
        if mark is not None and key_bytes == mark[0] and collation.encode(doc_id) == mark[1]:
            continue  # the bookmark's own row: the page after it begins past it
        yield doc_id, key_json


def _named(selector: Any, out: set[str], prefix: str = "") -> bool:
    """Every field a selector names, anywhere (an ``$elemMatch`` and its kind test the field's whole
    value); False when it names none that an index could hold."""
    if isinstance(selector, list):
        return all(_named(part, out, prefix) for part in selector)
    if not isinstance(selector, dict):
        return True
    for key, value in selector.items():
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
    if index["type"] != "json":
        return None
    fields = columns(index)
    asked = body.get("fields")
    named: set[str] = set()
    if not isinstance(asked, list) or not asked or not _named(body["selector"], named):
        return None
    named = {n for n in named if not any(f.startswith(n + ".") for f in fields)}  # {"at": {"day": 6}}: "at" leads to at.day
    return fields if set(asked) | named <= set(fields) | {"_id"} else None


def _from_index(db: Database, index: dict, body: dict, predicate: Any, descending: bool, want: int,
                after: Position | None) -> tuple[list[tuple[dict, Position]], int, int]:
    """Up to ``want`` matching documents in index order after ``after``, each with its row's
    position, and the rows and documents examined.

    Only the documents of the rows in range are read, in index order, until the page is full; a
    covering index answers from its rows and reads none.
    """
    covered = _covers(index, body)
    rows = _index_rows(db, index, body["selector"], descending, body.get("update", True), after)
    options = {"conflicts": True} if body.get("conflicts") else None
    matched: list[tuple[dict, Position]] = []
    keys = examined = 0
    more = False  # a row after the full page was reached
    while len(matched) < want:
        page = list(itertools.islice(rows, FETCH))
        if not page:
            break
        if covered is not None:
            docs: Iterator[Any] = (_from_key(doc_id, covered, json.loads(key)) for doc_id, key in page)
        else:
            docs = (row.get("doc") for row in db.all_docs_keys([doc_id for doc_id, _ in page], include_docs=True,
                                                               doc_options=options))
        for doc, (doc_id, key) in zip(docs, page):  # each document read as it is reached
            if len(matched) >= want:
                more = True
                break
            keys += 1
            if doc is None:
                continue  # deleted since the index was read
            examined += covered is None
            if predicate(doc):
                matched.append((doc, {"key": json.loads(key), "id": doc_id}))
    if want and (more or (len(matched) >= want and next(rows, None) is not None)):
        keys += 1  # CouchDB reads the row after a full page before it stops, and counts it
        examined += covered is None
    return matched, keys, examined


def _from_all_docs(db: Database, body: dict, predicate: Any, descending: bool, want: int,
                   after: Position | None) -> tuple[list[tuple[dict, Position]], int]:
    """Matching documents in ``_id`` order after ``after`` (the ``_id`` bounds of the selector narrow
    the scan), each with its position, and the documents examined; stops once ``want`` are found
    when ascending."""
    low, high = _id_range(body["selector"])
    # _all_docs is in raw term order, where every string (every id) sorts after any other value: a
    # low bound that is not a string leaves the scan open, a high one leaves nothing to read.
    start = low if isinstance(low, str) else None
    end = high if isinstance(high, str) else None
    if high is not _MISSING and end is None:
        return [], 0
    if after is not None:
        if not isinstance(after["id"], str) or "key" in after:
            raise MangoError("Invalid bookmark value: not one of this index", error="invalid_bookmark")
        if descending:
            end = after["id"] if end is None else min(end, after["id"])
        else:
            start = after["id"] if start is None else max(start, after["id"])
    options = {"conflicts": True} if body.get("conflicts") else None
    matched: list[tuple[dict, Position]] = []
    examined = 0
    rows = db.all_docs(start=start, end=end, include_docs=True, doc_options=options)
    for row in rows:
        if after is not None and row["id"] == after["id"]:
            continue  # the bookmark's own document: the page after it begins past it
        if row["id"].startswith("_design/"):
            # Never answered. CouchDB counts one as examined only when the selector refuses it (one it
            # matches is dropped after its shard sent it, with its count).
            examined += not predicate(row["doc"])
            continue
        examined += 1
        if predicate(row["doc"]):
            matched.append((row["doc"], {"id": row["id"]}))
            if not descending and len(matched) >= want:
                examined += next(rows, None) is not None  # the row after a full page, read and counted
                break
    if descending:
        matched.reverse()
    return matched, examined


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
    if _nothing(body["selector"]):
        first, last = None, None
    elif index["type"] == "json":
        start, end = key_range(body["selector"], columns(index))
        first, last = start, [*end, "<MAX>"]
    else:
        low, high = _id_range(body["selector"])
        # With a condition on _id an open low end shows as "" (the lowest id), else as null.
        first = low if low is not _MISSING else "" if "_id" in _indexable(_conditions(body["selector"])) else None
        last = "<MAX>" if high is _MISSING else high
    if descending:
        first, last = last, first
    return {"include_docs": _covers(index, body) is None, "view_type": "map", "reduce": False, "partition": None,
            "start_key": first, "end_key": last, "direction": "rev" if descending else "fwd",
            "stable": body.get("stable", False), "update": body.get("update", True),
            "conflicts": True if body.get("conflicts") else "undefined"}


# -- queries ------------------------------------------------------------------------------------

def _wanted(index: dict, use_index: list[str]) -> bool:
    """Whether ``use_index`` (``[ddoc]`` or ``[ddoc, name]``) names an index."""
    if not use_index or index["ddoc"] != "_design/" + use_index[0].removeprefix("_design/"):
        return False
    return len(use_index) < 2 or index["name"] == use_index[1]


def _rank(index: dict, indexable: set[str]) -> tuple[int, int, str, str]:
    """CouchDB's ranking (mango_cursor_view:choose_best_index): the fewest indexable fields of the
    selector left out of the index's leading columns, then the fewest columns, then ddoc and name."""
    cols = columns(index)
    prefix = next((i for i, col in enumerate(cols) if col not in indexable), len(cols))
    return len(indexable) - prefix, len(cols), index["ddoc"], index["name"]


def _choose(all_indexes: list[dict], body: dict, sort: list[tuple[str, str]], for_find: bool) -> dict:
    """The index a query uses (``index``; None: no index can answer it, in ``_explain``), the warning to
    give and what ``_explain`` tells of the others, as CouchDB 3.4 chooses (mango_cursor:create): the
    usable ones, narrowed to ``use_index`` when it names one of them; a JSON index before
    ``_all_docs``; a partial index only when named."""
    selector = body["selector"]
    use_index = _use_index(body.get("use_index")) or []
    sort_names = [f for f, _ in sort]
    conditions = _conditions(selector)
    candidates = [i for i in all_indexes if partial_selector(i) is None or _wanted(i, use_index)]
    reasons = {id(i): _unusable(i, selector, sort_names, conditions) for i in candidates}
    usable = [i for i in candidates if not reasons[id(i)]]
    plan: dict[str, Any] = {"all": all_indexes, "candidates": candidates, "reasons": reasons, "usable": usable,
                            "pool": [], "of_type": [], "index": None, "warning": None, "indexable": set()}
    if not usable:
        if for_find:
            raise MangoError("No index exists for this sort, try indexing by the sort fields.", error="no_usable_index")
        return plan
    named = [i for i in usable if _wanted(i, use_index)]
    warning = None
    if not named:
        if not body.get("allow_fallback", True) and (use_index or len(usable) < 2):
            what = ", ".join(["_design/" + use_index[0].removeprefix("_design/"), *use_index[1:]]) if use_index else ""
            raise MangoError(f"{what} specified by `use_index` could not be found or it is not suitable." if what else
                             "You must specify an index with the `use_index` parameter.", error="invalid_index")
        if use_index:
            ddoc = "_design/" + use_index[0].removeprefix("_design/")
            warning = (f"{ddoc} was not used because it does not contain a valid index for this query."
                       if len(use_index) < 2 else
                       f"{ddoc}, {use_index[1]} was not used because it is not a valid index for this query.")
    plan["pool"] = pool = named or usable
    plan["of_type"] = json_indexes = [i for i in pool if i["type"] == "json"]
    if json_indexes:
        plan["indexable"] = indexable = _indexable(conditions)
        plan["index"], plan["warning"] = min(json_indexes, key=lambda i: _rank(i, indexable)), warning
    else:
        plan["of_type"] = [pool[0]]
        plan["index"], plan["warning"] = pool[0], (warning + "\n" + NO_INDEX) if warning else NO_INDEX
    return plan


def _candidates(plan: dict, body: dict) -> list[dict]:
    """``index_candidates`` of ``_explain``: every index but the chosen one, whether and why it could
    serve, and its rank (CouchDB 3.4's mango_cursor:extract_candidate_indexes)."""
    winner = plan["index"]
    ranked = sorted(plan["of_type"], key=lambda i: _rank(i, plan["indexable"])) if winner and winner["type"] == "json" else []
    groups = [
        [i for i in plan["pool"] if not any(i is t for t in plan["of_type"])],  # of another type
        [i for i in plan["usable"] if not any(i is p for p in plan["pool"])],  # left out by use_index
        [i for i in plan["candidates"] if plan["reasons"][id(i)]],  # cannot answer
    ]
    rank = max(1, len(ranked))
    tags: dict[int, tuple[bool, str, int]] = {}
    for group, reason, usable in zip(groups, ("unfavored_type", "excluded_by_user", None), (True, True, False)):
        for index in group:
            tags[id(index)] = (usable, reason or plan["reasons"][id(index)][0], rank)
        rank += bool(group)
    for index in plan["all"]:
        if not any(index is c for c in plan["candidates"]):
            tags[id(index)] = (False, "is_partial", rank)
    width = len(columns(winner)) if winner and winner["type"] == "json" else 0
    for n, index in enumerate(ranked):
        distance, cols = _rank(index, plan["indexable"])[:2]
        reason = "less_overlap" if distance > 0 else "too_many_fields" if cols > width else "alphabetically_comes_after"
        tags[id(index)] = (True, reason, n)
    fields = body.get("fields") or None
    out = []
    for index in plan["all"]:
        if index is winner or id(index) not in tags:
            continue
        usable, reason, rank = tags[id(index)]
        covering = (index["type"] == "json" and fields is not None and set(fields) <= {"_id", *columns(index)}) \
            if index["type"] == "json" else None
        out.append({"index": public(index), "analysis": {"usable": usable, "reasons": [{"name": reason}],
                                                          "ranking": rank, "covering": covering}})
    # CouchDB lists them in reverse order of their Erlang records: by design document, then name, descending
    # (its own "_all_docs", whose ddoc is an atom, last).
    out.sort(key=lambda c: (c["index"]["ddoc"] is not None, (c["index"]["ddoc"] or "").encode(),
                            c["index"]["name"].encode()), reverse=True)
    return out


def _hints(selector: dict) -> list[dict]:
    """``selector_hints`` of ``_explain``: the fields a JSON index could be read by, and the others."""
    named: set[str] = set()
    _named(selector, named)
    named = {n for n in named if not any(m.startswith(n + ".") for m in named)}  # "a" of a.b is no field
    indexable = _indexable(_conditions(selector))
    return [{"type": "json", "indexable_fields": sorted(indexable), "unindexable_fields": sorted(named - indexable)}]


def _use_index(value: Any) -> list[str] | None:
    """``use_index`` as ``[ddoc]`` or ``[ddoc, name]``: a string ``"ddoc/name"`` or ``"_design/ddoc/name"``
    too, as CouchDB reads it (mango_opts:validate_use_index); None when it is neither."""
    if value is None:
        return []
    if isinstance(value, list):
        return value if len(value) <= 2 and all(isinstance(v, str) for v in value) else None
    if not isinstance(value, str):
        return None
    parts = value.removeprefix("_design/").split("/")
    return parts if len(parts) <= 2 else None


def _bookmark(position: Position) -> str:
    """A bookmark holds the last row's position, as CouchDB's does (its index key and document id),
    so the next page begins after that row even when documents were written in between."""
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def _from_bookmark(text: Any) -> Position | None:
    if text is None:
        return None
    try:  # "nil", what a page with no documents answers, is not one to send back (as in CouchDB)
        value = json.loads(base64.urlsafe_b64decode(str(text) + "=" * (-len(str(text)) % 4)))
        if isinstance(value, dict) and isinstance(value.get("id"), str) and set(value) <= {"key", "id"}:
            return value
    except (ValueError, TypeError):
        pass
    raise MangoError(f"Invalid bookmark value: {json.dumps(text)}", error="invalid_bookmark")


_BOOLEANS = ("conflicts", "update", "stable", "execution_stats", "allow_fallback")
# The keys each request may carry (mango_opts.erl); any other is refused, after the known ones
# are checked, naming the first in the body's order.
FIND_KEYS = frozenset({"selector", "use_index", "bookmark", "limit", "skip", "sort", "fields", "partition",
                       "r", "conflicts", "stale", "update", "stable", *_BOOLEANS})
INDEX_KEYS = frozenset({"index", "type", "name", "ddoc", "w", "partitioned"})
INDEX_DEF_KEYS = frozenset({"fields", "partial_filter_selector"})
BULK_DELETE_KEYS = frozenset({"docids", "w"})


def _only(body: dict, allowed: frozenset[str]) -> None:
    for key in body:
        if key not in allowed:
            raise MangoError(f"Invalid key {key} for this request.", error="invalid_key")


def _pos_integer(body: dict, name: str) -> None:
    """``r`` or ``w``, when given: an integer of at least 1."""
    value = body.get(name)
    if name in body and (type(value) is not int or value < 1):
        raise MangoError(f"{_show(value)} is not an integer greater than zero", error="invalid_pos_integer")


def _check(body: Any) -> dict:
    """The body of ``_find`` or ``_explain``, refused as CouchDB refuses it (mango_opts.erl)."""
    if not isinstance(body, dict) or "selector" not in body:
        raise MangoError("Missing required key: selector", error="missing_required_key")
    if not isinstance(body["selector"], dict):
        compile_selector(body["selector"])  # CouchDB's invalid_selector_json
    for name in ("limit", "skip"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise MangoError(f"{json.dumps(value)} is not an integer greater than or equal to zero",
                             error="invalid_non_neg_integer")
    _pos_integer(body, "r")
    for name in _BOOLEANS:
        if name in body and not isinstance(body[name], bool):
            raise MangoError(f"Invalid boolean value: {_show(body[name])}", error="invalid_boolean")
    fields = body.get("fields", [])
    if not isinstance(fields, list):
        raise MangoError(f"Fields must be an array of strings, not: {_show(fields)}", error="invalid_fields")
    for field in fields:
        if not isinstance(field, str):
            raise MangoError(f"Invalid JSON for field spec: {_show(field)}", error="invalid_field")
    use_index = body.get("use_index")
    if _use_index(use_index) is None:
        raise MangoError(f"Invalid index name: {_show(use_index)}", error="invalid_index_name")
    if body.get("bookmark") is not None and not isinstance(body["bookmark"], str):
        raise MangoError(f"Invalid bookmark value: {_show(body['bookmark'])}", error="invalid_bookmark")
    if body.get("stale", False) not in (False, "ok"):  # CouchDB answers 500 (invalid_ok_or_false_value)
        raise MangoError(f"Invalid value for stale: {_show(body['stale'])}, only \"ok\" or false",
                         error="invalid_ok_or_false_value")
    if body.get("partition", "") != "":  # no database here is partitioned
        raise BadRequest("partition specified on non-partitioned db")
    _only(body, FIND_KEYS)
    return body


def plan(db: Database, body: Any, for_find: bool = True) -> dict:
    """What ``_explain`` answers (and ``_find`` follows)."""
    body = _check(body)
    sort = _sort_spec(body.get("sort", []))
    if len({d for _, d in sort}) > 1:
        raise MangoError("Sorts currently only support a single direction for all fields.", error="unsupported_mixed_sort")
    return {**_choose(indexes(db), body, sort, for_find), "sort": sort, "selector": body["selector"]}


def explain(db: Database, body: Any) -> dict:
    """``POST /{db}/_explain``."""
    chosen = plan(db, body, for_find=False)
    index = chosen["index"]
    limit, skip = body.get("limit", DEFAULT_LIMIT), body.get("skip", 0)
    fields = body.get("fields", [])
    descending = bool(chosen["sort"]) and chosen["sort"][0][1] == "desc"
    opts = {"use_index": _use_index(body.get("use_index")) or [], "bookmark": body.get("bookmark") or "nil",
            "limit": limit, "skip": skip, "sort": {f: d for f, d in chosen["sort"]}, "fields": fields,
            "partition": "", "r": body.get("r", 1), "conflicts": body.get("conflicts", False),
            "stale": False, "update": body.get("update", True), "stable": body.get("stable", False),
            "execution_stats": body.get("execution_stats", False),
            "allow_fallback": body.get("allow_fallback", True)}
    answer: dict[str, Any] = {"dbname": db.name, "index": public(index) if index else None, "partitioned": False,
                              "selector": body["selector"], "opts": opts, "limit": limit, "skip": skip,
                              "fields": fields, "index_candidates": _candidates(chosen, body),
                              "selector_hints": _hints(body["selector"])}
    if index is not None:
        answer["mrargs"] = _mrargs(index, body, descending)
        answer["covering"] = _covers(index, body) is not None
    return answer


def find(db: Database, body: Any) -> dict:
    """``POST /{db}/_find``."""
    started = time.monotonic()
    chosen = plan(db, body)
    predicate = compile_selector(body["selector"])
    index, sort = chosen["index"], chosen["sort"]
    limit, skip = body.get("limit", DEFAULT_LIMIT), body.get("skip", 0)
    after = _from_bookmark(body.get("bookmark"))
    descending = bool(sort) and sort[0][1] == "desc"
    matched: list[tuple[dict, Position]] = []
    keys, examined = 0, 0
    if _nothing(body["selector"]):
        pass
    elif index["type"] == "json":  # index order is the answer's order
        matched, keys, examined = _from_index(db, index, body, predicate, descending, skip + limit, after)
    else:
        matched, examined = _from_all_docs(db, body, predicate, descending, skip + limit, after)
        keys = examined
    page = matched[skip:skip + limit]
    docs = [_project(d, body.get("fields")) for d, _ in page]
    bookmark = _bookmark(page[-1][1]) if page else (body.get("bookmark") or "nil")
    answer: dict[str, Any] = {"docs": docs, "bookmark": bookmark}
    quorum = body.get("r", 1) > 1  # documents read again at quorum: CouchDB counts them apart
    if body.get("execution_stats"):
        answer["execution_stats"] = {
            "total_keys_examined": keys, "total_docs_examined": 0 if quorum else examined,
            "total_quorum_docs_examined": examined if quorum else 0, "results_returned": len(docs),
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
