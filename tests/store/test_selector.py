"""Mango selectors: validation, matching and view collation (sync_server.store.selector)."""

from __future__ import annotations

import copy

import pytest

from sync_server.errors import BadRequest
from sync_server.store.selector import collate, compile_selector, normalize, raw_order

DOC = {
    "_id": "person:ada",
    "_rev": "1-abc",
    "name": "Ada",
    "age": 36,
    "score": 9.5,
    "active": True,
    "retired": False,
    "nickname": None,
    "tags": ["math", "engines", "poetry"],
    "scores": [3, 7, 12],
    "empty_list": [],
    "empty_obj": {},
    "address": {"city": "London", "geo": {"lat": 51.5, "lon": -0.1}},
    "a.b": "literal dotted key",
    "$weird": "dollar key",
    "friends": [{"name": "Charles", "age": 41}, {"name": "Mary", "age": 29}],
    "cameras": {"primary": {"mp": 12}, "secondary": {"mp": 8}},
}


def matches(selector: dict, doc: dict = DOC) -> bool:
    """Compile selector and run it against doc."""
    return compile_selector(selector)(doc)


def check(cases: list[tuple[dict, bool]]) -> None:
    """Assert each (selector, expected) pair against DOC."""
    for selector, expected in cases:
        assert matches(selector) is expected, selector


# -- collate -------------------------------------------------------------------

ASCENDING = [
    None,
    False,
    True,
    -5,
    0,
    1,
    1.5,
    2,
    "",
    "a",
    "A",
    "aa",
    "b",
    "B",
    "é",
    "f",
    [],
    [None],
    [1],
    [1, 2],
    [2],
    ["a"],
    [[]],
    [{}],
    {},
    {"a": 1},
    {"a": 2},
    {"a": 2, "b": 0},
    {"b": 0},
]


@pytest.mark.parametrize("index", range(len(ASCENDING) - 1))
def test_selector_collate_orders_values_ascending(index):
    lower, higher = ASCENDING[index], ASCENDING[index + 1]
    assert collate(lower, higher) == -1
    assert collate(higher, lower) == 1


@pytest.mark.parametrize(
    "a, b",
    [
        (None, None),
        (True, True),
        (False, False),
        (1, 1.0),
        (0, -0.0),
        ("x", "x"),
        ([1, [2, {"k": "v"}]], [1, [2, {"k": "v"}]]),
        ({"a": [1], "b": None}, {"a": [1], "b": None}),
        ({}, {}),
        ([], []),
    ],
)
def test_selector_collate_equal_values(a, b):
    assert collate(a, b) == 0
    assert collate(b, a) == 0


@pytest.mark.parametrize(
    "a, b",
    [
        (True, 1),
        (False, 0),
        (None, False),
        ("1", 1),
        ([1], 1),
        ({"a": 1}, {"b": 1}),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ([1, 2], [2, 1]),
    ],
)
def test_selector_collate_distinguishes_values(a, b):
    assert collate(a, b) != 0


def test_selector_collate_rejects_non_json_values():
    with pytest.raises(TypeError):
        collate({1, 2}, 1)


# -- implicit equality and field paths ---------------------------------------------


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({}, True),
        ({"name": "Ada"}, True),
        ({"name": "ada"}, False),
        ({"age": 36}, True),
        ({"age": 36.0}, True),
        ({"score": 9.5}, True),
        ({"active": True}, True),
        ({"active": 1}, False),
        ({"retired": False}, True),
        ({"retired": 0}, False),
        ({"nickname": None}, True),
        ({"nickname": False}, False),
        ({"tags": ["math", "engines", "poetry"]}, True),
        ({"tags": ["engines", "math", "poetry"]}, False),
        ({"tags": "math"}, False),
        ({"name": "Ada", "age": 36}, True),
        ({"name": "Ada", "age": 37}, False),
        ({"_id": "person:ada"}, True),
        ({"_rev": "1-abc"}, True),
        ({"missing": None}, False),
        ({"empty_obj": {}}, True),
        ({"address": {}}, False),
    ],
)
def test_selector_implicit_equality(selector, expected):
    assert matches(selector) is expected


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"address.city": "London"}, True),
        ({"address": {"city": "London"}}, True),
        ({"address": {"city": "Paris"}}, False),
        ({"address.geo.lat": 51.5}, True),
        ({"address": {"geo": {"lat": 51.5, "lon": -0.1}}}, True),
        ({"address": {"geo.lon": -0.1}}, True),
        ({"address": {"city": "London", "geo": {"lat": 0}}}, False),
        ({"address": {"$eq": {"city": "London", "geo": {"lat": 51.5, "lon": -0.1}}}}, True),
        ({"address": {"$eq": {"city": "London"}}}, False),
        ({"a\\.b": "literal dotted key"}, True),
        ({"a.b": "literal dotted key"}, False),
        ({"\\$weird": "dollar key"}, True),
        ({"tags.0": "math"}, True),
        ({"tags.2": "poetry"}, True),
        ({"friends.1.name": "Mary"}, True),
        ({"friends": {"0": {"age": 41}}}, True),
        ({"tags.3": "math"}, False),
        ({"tags.first": "math"}, False),
        ({"name.first": "A"}, False),
        ({"address.zip": None}, False),
    ],
)
def test_selector_field_paths(selector, expected):
    assert matches(selector) is expected


# -- comparison operators ----------------------------------------------------------


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"age": {"$eq": 36}}, True),
        ({"age": {"$ne": 36}}, False),
        ({"age": {"$ne": 35}}, True),
        ({"age": {"$gt": 35}}, True),
        ({"age": {"$gt": 36}}, False),
        ({"age": {"$gte": 36}}, True),
        ({"age": {"$lt": 36}}, False),
        ({"age": {"$lt": 36.5}}, True),
        ({"age": {"$lte": 36}}, True),
        ({"age": {"$gt": 30, "$lt": 40}}, True),
        ({"age": {"$gt": 30, "$lt": 35}}, False),
        ({"name": {"$gt": "Ab"}}, True),
        ({"name": {"$lt": "B"}}, True),
        ({"name": {"$gt": 1000000}}, True),
        ({"age": {"$lt": "0"}}, True),
        ({"age": {"$gt": True}}, True),
        ({"active": {"$gt": False}}, True),
        ({"active": {"$lt": 0}}, True),
        ({"nickname": {"$lt": False}}, True),
        ({"tags": {"$gt": "zzz"}}, True),
        ({"tags": {"$lt": {}}}, True),
        ({"address": {"$gt": []}}, True),
        ({"_id": {"$gt": None}}, True),
        ({"active": {"$eq": 1}}, False),
        ({"active": {"$ne": 1}}, True),
        ({"scores": {"$eq": [3, 7, 12]}}, True),
        ({"scores": {"$eq": 3}}, False),
        ({"friends": {"$eq": [{"name": "Charles", "age": 41}, {"name": "Mary", "age": 29}]}}, True),
    ],
)
def test_selector_comparison_operators(selector, expected):
    assert matches(selector) is expected


# -- missing fields ---------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"$eq": None},
        {"$ne": 1},
        {"$gt": None},
        {"$gte": None},
        {"$lt": {}},
        {"$lte": {}},
        {"$in": [None]},
        {"$nin": [1]},
        {"$nin": []},
        {"$exists": True},
        {"$type": "null"},
        {"$size": 0},
        {"$all": [1]},
        {"$elemMatch": {"$gt": 0}},
        {"$allMatch": {"$gt": 0}},
        {"$keyMapMatch": {"$eq": "a"}},
        {"$regex": ".*"},
        {"$mod": [2, 0]},
        {"$beginsWith": ""},
        {"$not": {"$eq": 1}},
        {"$not": {"$regex": "x"}},
        {"$or": [{"$eq": 1}, {"$ne": 1}]},
        {"sub": {"$exists": True}},
    ],
)
def test_selector_missing_field_fails_condition(condition):
    assert matches({"missing": condition}) is False


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"missing": {"$exists": False}}, True),
        ({"missing": {"$exists": True}}, False),
        ({"name": {"$exists": True}}, True),
        ({"name": {"$exists": False}}, False),
        ({"nickname": {"$exists": True}}, True),
        ({"address.city": {"$exists": True}}, True),
        ({"address.zip": {"$exists": False}}, True),
        ({"missing.deeper": {"$exists": False}}, True),
        ({"missing": {"$not": {"$exists": True}}}, True),
        ({"$not": {"missing": {"$exists": True}}}, True),
        ({"$not": {"name": {"$exists": False}}}, True),
        # A path through a scalar is a "bad path" in CouchDB: nothing matches.
        ({"name.first": {"$exists": False}}, False),
        ({"name.first": {"$exists": True}}, False),
        ({"tags.9": {"$exists": False}}, False),
    ],
)
def test_selector_exists(selector, expected):
    assert matches(selector) is expected


# -- array operators ---------------------------------------------------------------


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"age": {"$in": [35, 36]}}, True),
        ({"age": {"$in": [35, 37]}}, False),
        ({"age": {"$in": []}}, False),
        ({"active": {"$in": [1]}}, False),
        ({"active": {"$in": [True]}}, True),
        ({"tags": {"$in": ["poetry", "x"]}}, True),
        ({"tags": {"$in": ["x", "y"]}}, False),
        ({"tags": {"$in": [["math", "engines", "poetry"]]}}, False),
        ({"empty_list": {"$in": [[]]}}, False),
        ({"address": {"$in": [{"city": "London", "geo": {"lat": 51.5, "lon": -0.1}}]}}, True),
        ({"age": {"$nin": [35, 37]}}, True),
        ({"age": {"$nin": [36]}}, False),
        ({"age": {"$nin": []}}, True),
        ({"active": {"$nin": [1]}}, True),
        ({"tags": {"$nin": ["x", "y"]}}, True),
        ({"tags": {"$nin": ["x", "math"]}}, False),
        ({"empty_list": {"$nin": ["x"]}}, True),
    ],
)
def test_selector_in_and_nin(selector, expected):
    assert matches(selector) is expected


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"tags": {"$size": 3}}, True),
        ({"tags": {"$size": 2}}, False),
        ({"empty_list": {"$size": 0}}, True),
        ({"name": {"$size": 3}}, False),
        ({"address": {"$size": 2}}, False),
        ({"tags": {"$all": ["poetry", "math"]}}, True),
        ({"tags": {"$all": ["poetry", "x"]}}, False),
        ({"tags": {"$all": []}}, False),
        ({"tags": {"$all": [["math", "engines", "poetry"]]}}, True),
        ({"tags": {"$all": [["math", "engines"]]}}, False),
        ({"name": {"$all": ["Ada"]}}, False),
        ({"scores": {"$all": [3.0, 12]}}, True),
        ({"friends": {"$all": [{"name": "Mary", "age": 29}]}}, True),
        ({"scores": {"$elemMatch": {"$gt": 10}}}, True),
        ({"scores": {"$elemMatch": {"$gt": 12}}}, False),
        ({"scores": {"$elemMatch": {"$gt": 5, "$lt": 7}}}, False),
        ({"scores": {"$elemMatch": {"$gt": 5, "$lt": 8}}}, True),
        ({"friends": {"$elemMatch": {"name": "Mary", "age": {"$lt": 30}}}}, True),
        ({"friends": {"$elemMatch": {"name": "Mary", "age": {"$gt": 30}}}}, False),
        ({"empty_list": {"$elemMatch": {"$exists": True}}}, False),
        ({"name": {"$elemMatch": {"$eq": "Ada"}}}, False),
        ({"friends": {"$elemMatch": {}}}, False),
        ({"scores": {"$allMatch": {"$gt": 0}}}, True),
        ({"scores": {"$allMatch": {"$gt": 3}}}, False),
        ({"friends": {"$allMatch": {"age": {"$gt": 18}}}}, True),
        ({"friends": {"$allMatch": {"name": "Mary"}}}, False),
        ({"empty_list": {"$allMatch": {"$gt": 0}}}, False),
        ({"name": {"$allMatch": {"$eq": "Ada"}}}, False),
    ],
)
def test_selector_array_operators(selector, expected):
    assert matches(selector) is expected


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"cameras": {"$keyMapMatch": {"$eq": "secondary"}}}, True),
        ({"cameras": {"$keyMapMatch": {"$eq": "tertiary"}}}, False),
        ({"cameras": {"$keyMapMatch": {"$beginsWith": "pri"}}}, True),
        ({"empty_obj": {"$keyMapMatch": {"$exists": True}}}, False),
        ({"tags": {"$keyMapMatch": {"$eq": "0"}}}, False),
        ({"name": {"$keyMapMatch": {"$eq": "Ada"}}}, False),
    ],
)
def test_selector_key_map_match(selector, expected):
    assert matches(selector) is expected


# -- type and miscellaneous operators ------------------------------------------------


@pytest.mark.parametrize(
    "field, type_name",
    [
        ("nickname", "null"),
        ("active", "boolean"),
        ("retired", "boolean"),
        ("age", "number"),
        ("score", "number"),
        ("name", "string"),
        ("tags", "array"),
        ("empty_list", "array"),
        ("address", "object"),
        ("empty_obj", "object"),
    ],
)
def test_selector_type(field, type_name):
    assert matches({field: {"$type": type_name}}) is True
    others = {"null", "boolean", "number", "string", "array", "object"} - {type_name}
    for other in others:
        assert matches({field: {"$type": other}}) is False, (field, other)


def test_selector_type_unknown_name_never_matches():
    assert matches({"age": {"$type": "integer"}}) is False


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"name": {"$regex": "^A"}}, True),
        ({"name": {"$regex": "d"}}, True),
        ({"name": {"$regex": "^a"}}, False),
        ({"name": {"$regex": "(?i)^a"}}, True),
        ({"name": {"$regex": "^Ada$"}}, True),
        ({"age": {"$regex": "36"}}, False),
        ({"tags": {"$regex": "math"}}, False),
        ({"name": {"$beginsWith": "Ad"}}, True),
        ({"name": {"$beginsWith": ""}}, True),
        ({"name": {"$beginsWith": "ad"}}, False),
        ({"name": {"$beginsWith": "Ada Lovelace"}}, False),
        ({"age": {"$beginsWith": "3"}}, False),
        ({"_id": {"$beginsWith": "person:"}}, True),
        ({"age": {"$mod": [6, 0]}}, True),
        ({"age": {"$mod": [5, 1]}}, True),
        ({"age": {"$mod": [5, 0]}}, False),
        ({"age": {"$mod": [-5, 1]}}, True),
        ({"score": {"$mod": [2, 1]}}, False),
        ({"active": {"$mod": [1, 0]}}, False),
        ({"name": {"$mod": [1, 0]}}, False),
    ],
)
def test_selector_misc_operators(selector, expected):
    assert matches(selector) is expected


@pytest.mark.parametrize(
    "value, expected",
    [(-7, True), (7, False), (-6, False), (-1, True), (2, False)],
)
def test_selector_mod_keeps_sign_of_dividend(value, expected):
    assert matches({"n": {"$mod": [3, -1]}}, {"n": value}) is expected


def test_selector_mod_rejects_float_values():
    assert matches({"n": {"$mod": [2, 0]}}, {"n": 4.0}) is False
    assert matches({"n": {"$mod": [2, 0]}}, {"n": 4}) is True


# -- combination operators ------------------------------------------------------------


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"$and": [{"name": "Ada"}, {"age": 36}]}, True),
        ({"$and": [{"name": "Ada"}, {"age": 1}]}, False),
        ({"$and": []}, True),
        ({"$or": [{"name": "Bob"}, {"age": 36}]}, True),
        ({"$or": [{"name": "Bob"}, {"age": 1}]}, False),
        ({"$or": []}, True),
        ({"$nor": [{"name": "Bob"}, {"age": 1}]}, True),
        ({"$nor": [{"name": "Bob"}, {"age": 36}]}, False),
        ({"$nor": []}, True),
        ({"$not": {"name": "Bob"}}, True),
        ({"$not": {"name": "Ada"}}, False),
        ({"$not": {"$not": {"name": "Ada"}}}, True),
        ({"$not": {"name": "Ada", "age": 1}}, True),
        ({"$not": {"$or": [{"name": "Bob"}, {"age": 36}]}}, False),
        ({"$not": {"$nor": [{"name": "Bob"}, {"age": 36}]}}, True),
        ({"$not": {"$and": []}}, True),
        ({"$not": {}}, True),
        ({"age": {"$or": [{"$lt": 10}, {"$gt": 30}]}}, True),
        ({"age": {"$or": [{"$lt": 10}, {"$gt": 40}]}}, False),
        ({"age": {"$or": [35, 36]}}, True),
        ({"age": {"$and": [{"$gt": 30}, {"$lt": 40}]}}, True),
        ({"age": {"$not": {"$gt": 40}}}, True),
        ({"age": {"$not": {"$in": [36]}}}, False),
        ({"address": {"$or": [{"city": "Paris"}, {"geo.lat": {"$gt": 50}}]}}, True),
        ({"address": {"$not": {"city": "Paris"}}}, True),
        ({"name": "Ada", "$or": [{"age": 1}, {"tags": {"$size": 3}}]}, True),
        ({"friends": {"$elemMatch": {"$not": {"name": "Charles"}}}}, True),
        ({"friends": {"$allMatch": {"$not": {"name": "Charles"}}}}, False),
        ({"scores": {"$not": {"$elemMatch": {"$gt": 100}}}}, True),
        ({"scores": {"$not": {"$size": 3}}}, False),
    ],
)
def test_selector_combination_operators(selector, expected):
    assert matches(selector) is expected


@pytest.mark.parametrize(
    "selector, doc, expected",
    [
        # Negations are pushed to the leaves, so a negated leaf on a missing field fails.
        ({"$not": {"a": 1}}, {}, False),
        ({"$not": {"a": 1}}, {"a": 2}, True),
        ({"$nor": [{"a": 1}]}, {}, False),
        ({"$not": {"a": 1, "b": 2}}, {"b": 3}, True),
        ({"$not": {"a": 1, "b": 2}}, {}, False),
        ({"$not": {"a": {"$exists": False}}}, {}, False),
        ({"$not": {"a": {"$exists": True}}}, {}, True),
        ({"a": {"$ne": 1}}, {}, False),
        ({"a": {"$nin": [1]}}, {}, False),
        ({"a": {"$ne": 1}}, {"a": None}, True),
    ],
)
def test_selector_negation_on_missing_fields(selector, doc, expected):
    assert matches(selector, doc) is expected


# -- compiling ---------------------------------------------------------------------------


def test_selector_compile_once_match_many():
    selector = {"type": "member", "age": {"$gte": 18}}
    original = copy.deepcopy(selector)
    predicate = compile_selector(selector)
    docs = [
        {"_id": "a", "type": "member", "age": 18},
        {"_id": "b", "type": "member", "age": 17},
        {"_id": "c", "type": "guest", "age": 40},
        {"_id": "d", "type": "member"},
    ]
    assert [doc["_id"] for doc in docs if predicate(doc)] == ["a"]
    assert selector == original


def test_selector_does_not_mutate_document():
    doc = copy.deepcopy(DOC)
    matches({"$or": [{"friends": {"$elemMatch": {"age": {"$gt": 40}}}}, {"x": 1}]}, doc)
    assert doc == DOC


# -- invalid selectors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "selector, reason",
    [
        ("name", "Selector must be a JSON object"),
        (["name"], "Selector must be a JSON object"),
        (None, "Selector must be a JSON object"),
        ({"$foo": 1}, "Invalid operator: $foo"),
        ({"a": {"$foo": 1}}, "Invalid operator: $foo"),
        ({"a": {"$elemMatch": {"$bar": 1}}}, "Invalid operator: $bar"),
        ({"a": {"$where": "1"}}, "Unsupported operator: $where"),
        ({"$text": "bond"}, "Unsupported operator: $text"),
        ({"$and": {"a": 1}}, "Bad argument for operator $and"),
        ({"$or": "a"}, "Bad argument for operator $or"),
        ({"$nor": None}, "Bad argument for operator $nor"),
        ({"$not": [{"a": 1}]}, "Bad argument for operator $not"),
        ({"a": {"$in": 1}}, "Bad argument for operator $in"),
        ({"a": {"$in": {"x": 1}}}, "Bad argument for operator $in"),
        ({"a": {"$nin": "abc"}}, "Bad argument for operator $nin"),
        ({"a": {"$all": 1}}, "Bad argument for operator $all"),
        ({"a": {"$exists": 1}}, "Bad argument for operator $exists"),
        ({"a": {"$exists": "true"}}, "Bad argument for operator $exists"),
        ({"a": {"$type": 1}}, "Bad argument for operator $type"),
        ({"a": {"$size": "3"}}, "Bad argument for operator $size"),
        ({"a": {"$size": 3.0}}, "Bad argument for operator $size"),
        ({"a": {"$size": -1}}, "Bad argument for operator $size"),
        ({"a": {"$size": True}}, "Bad argument for operator $size"),
        ({"a": {"$regex": "("}}, "Bad argument for operator $regex"),
        ({"a": {"$regex": 1}}, "Invalid operator: $regex"),
        ({"a": {"$beginsWith": 1}}, "Invalid operator: $beginsWith"),
        ({"a": {"$mod": 2}}, "Bad argument for operator $mod"),
        ({"a": {"$mod": [2]}}, "Bad argument for operator $mod"),
        ({"a": {"$mod": [2, 0, 1]}}, "Bad argument for operator $mod"),
        ({"a": {"$mod": [0, 0]}}, "Bad argument for operator $mod"),
        ({"a": {"$mod": [2.5, 0]}}, "Bad argument for operator $mod"),
        ({"a": {"$mod": [2, 0.5]}}, "Bad argument for operator $mod"),
        ({"a": {"$mod": [True, 0]}}, "Bad argument for operator $mod"),
        ({"a": {"$elemMatch": [1]}}, "Bad argument for operator $elemMatch"),
        ({"a": {"$allMatch": 1}}, "Bad argument for operator $allMatch"),
        ({"a": {"$keyMapMatch": "k"}}, "Bad argument for operator $keyMapMatch"),
        ({"$eq": 1}, "One or more conditions is missing a field name."),
        ({"$and": [{"$gt": 1}]}, "One or more conditions is missing a field name."),
        ({"": 1}, "One or more conditions is missing a field name."),
        ({"a..b": 1}, "Invalid field name: a..b"),
        ({"a.": 1}, "Invalid field name: a."),
    ],
)
def test_selector_invalid_raises_bad_request(selector, reason):
    with pytest.raises(BadRequest) as caught:
        compile_selector(selector)
    assert reason in caught.value.reason
    assert caught.value.status == 400


def test_selector_invalid_regex_reason_names_problem():
    with pytest.raises(BadRequest) as caught:
        compile_selector({"a": {"$regex": "[a-"}})
    assert caught.value.reason.startswith('Bad argument for operator $regex: "[a-"')
    assert "regular expression" in caught.value.reason


def test_raw_order_is_erlang_term_order() -> None:
    """Numbers < false < null < true < objects < arrays < strings (by code point)."""
    ordered = [-1, 0, 2.5, 3, False, None, True, {}, {"a": 1}, {"a": 1, "b": 1}, {"a": 2}, {"b": 0},
               [], [0], [0, 0], ["a"], "", "1", "B", "Z", "a", "aa", "é"]
    for i, a in enumerate(ordered):
        assert raw_order(a, a) == 0
        for b in ordered[i + 1:]:
            assert (raw_order(a, b), raw_order(b, a)) == (-1, 1), (a, b)
    assert raw_order(1, 1.0) == 0


@pytest.mark.parametrize(("selector", "ids"), [
    ({"_id": {"$lt": {}}}, []),
    ({"_id": {"$gt": {}}}, ["B", "a", "é"]),
    ({"_id": {"$gte": None}}, ["B", "a", "é"]),
    ({"_id": {"$lte": []}}, []),
    ({"_id": {"$eq": 0}}, []),
    ({"_id": {"$ne": 0}}, ["B", "a", "é"]),
    ({"_id": {"$gt": "B"}}, ["a", "é"]),  # ICU would put "B" after "a"
    ({"_id": {"$in": ["a", {}]}}, ["a"]),
    ({"_id": {"$nin": ["a", {}]}}, ["B", "é"]),
    ({"x._id": {"$gt": "a"}}, ["B"]),  # not the document's _id: ICU collation
    ({"list": {"$elemMatch": {"_id": {"$gt": "a"}}}}, []),  # _id under $elemMatch is raw too
])
def test_id_is_compared_in_raw_order(selector: dict, ids: list[str]) -> None:
    docs = [{"_id": "B", "x": {"_id": "B"}, "list": [{"_id": "B"}]}, {"_id": "a"}, {"_id": "é"}]
    match = compile_selector(selector)
    assert [d["_id"] for d in docs if match(d)] == ids


def test_normalize_gives_couchdbs_normal_form() -> None:
    assert normalize({}) == {}
    assert normalize({"type": "x"}) == {"type": {"$eq": "x"}}
    assert normalize({"a": {"b": 1}, "c": {"$gt": 2, "$lt": 5}, "$not": {"d": 1}, "$nor": [{"e": 1}]}) == {"$and": [
        {"a.b": {"$eq": 1}}, {"$and": [{"c": {"$gt": 2}}, {"c": {"$lt": 5}}]}, {"d": {"$ne": 1}},
        {"$and": [{"e": {"$ne": 1}}]}]}
    assert normalize({"$not": {"$or": [{"p": {"$in": [1]}}, {"q": {"$exists": True}}, {"r": {"$regex": "x"}}]}}) == \
        {"$and": [{"p": {"$nin": [1]}}, {"q": {"$exists": False}}, {"r": {"$not": {"$regex": "x"}}}]}
    assert normalize({"j": {"$elemMatch": {"k": 1, "l": {"$ne": 2}}}, "m": {}}) == {"$and": [
        {"j": {"$elemMatch": {"$and": [{"k": {"$eq": 1}}, {"l": {"$ne": 2}}]}}}, {"m": {"$eq": {}}}]}
    selector = {"a": {"$not": {"$not": {"$gt": 1}}}}
    assert normalize(selector) == {"a": {"$gt": 1}} and selector == {"a": {"$not": {"$not": {"$gt": 1}}}}
