"""sync_server.handbook.validation: reasons, what is not checked, formats, Unicode, the schemas themselves, speed."""

from __future__ import annotations

import copy
import json
import re
import socket
import time
import unicodedata
from typing import Any

import pytest
import referencing.exceptions
from jsonschema.exceptions import best_match
from jsonschema.validators import extend, validator_for

from sync_server.errors import Forbidden
from sync_server.handbook import validation
from sync_server.handbook.validation import load_schema, validate

CELL = "TQ.NH.KH.C01"
MEETING_ID = f"meeting:{CELL}:3f6c1a2e-8b4d-4f0e-9a71-2c5d9e8b7a10"


def meeting(**changes: Any) -> dict[str, Any]:
    doc = {"_id": MEETING_ID, "type": "meeting", "cell": CELL, "kind": "regular",
           "scheduled": "2026-12-03T19:30:00+07:00", "place": "Nhà văn hoá thôn Nà Khậu",
           "agenda": ["Quán triệt nghị quyết", "Kiểm điểm công tác tháng 11"], "status": "scheduled"}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def attendance(**changes: Any) -> dict[str, Any]:
    doc = {"_id": f"attendance:{MEETING_ID}:0012", "type": "attendance", "cell": CELL, "meeting": MEETING_ID,
           "member": f"member:{CELL}:0012", "status": "present", "checked_in_at": "2026-12-03T19:41:12+07:00"}
    doc.update(changes)
    return doc


def minutes(**changes: Any) -> dict[str, Any]:
    doc = {"_id": "minutes:" + MEETING_ID, "type": "minutes", "cell": CELL, "meeting": MEETING_ID,
           "text": "Chi bộ thống nhất kế hoạch tháng 12.", "written_at": "2026-12-03T21:00:00+07:00"}
    doc.update(changes)
    return doc


def reason(doc: dict[str, Any]) -> str:
    with pytest.raises(Forbidden) as caught:
        validate(doc)
    assert (caught.value.status, caught.value.error) == (403, "forbidden")
    return caught.value.reason


# -- reasons ----------------------------------------------------------------------------------


def test_validate_reason_enum() -> None:
    assert reason(meeting(status="done")) == "meeting: 'status' must be one of scheduled, held, cancelled"


def test_validate_reason_missing_field() -> None:
    assert reason(meeting(cell=None)) == "meeting: missing required field 'cell'"


def test_validate_reason_cell_mismatch() -> None:
    assert reason(attendance(cell="TQ.NH.KH.C02")) == \
        "attendance: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)"


def test_validate_reason_attendance_meeting_mismatch() -> None:
    other = f"meeting:{CELL}:b2e47d90"
    assert reason(attendance(meeting=other)) == \
        f"attendance: 'meeting' ({other}) does not match the meeting in _id ({MEETING_ID})"


def test_validate_reason_minutes_id_is_minutes_plus_meeting() -> None:
    other = f"meeting:{CELL}:b2e47d90"
    assert reason(minutes(meeting=other)) == \
        f"minutes: 'meeting' ({other}) does not match the meeting in _id ({MEETING_ID})"


def test_validate_reason_nested_path() -> None:
    assert reason(meeting(agenda=["Quán triệt nghị quyết", 5])) == "meeting: 'agenda/1' must be a string"


def test_validate_reason_unknown_field() -> None:
    assert reason(meeting(ghi_chu="Mang theo sổ tay")) == "meeting: unknown field 'ghi_chu'"


def test_validate_reason_missing_id() -> None:
    assert reason(meeting(_id=None)) == "meeting: missing required field '_id'"


def test_validate_reason_text_length_counts_characters() -> None:
    """100,000 three-byte characters pass; one more is refused."""
    assert len("ệ".encode()) == 3
    validate(minutes(text="ệ" * 100_000))
    assert reason(minutes(text="ệ" * 100_001)) == "minutes: 'text' is longer than 100000 characters"


def test_validate_reason_cuts_long_values() -> None:
    got = reason(meeting(_id=f"meeting:{CELL}:" + "x" * 200))
    assert got.startswith(f"meeting: '_id' (meeting:{CELL}:xxx") and "…) does not match ^meeting:" in got


def test_validate_first_error_is_deterministic() -> None:
    """Two broken fields: the same one is reported whatever the member order."""
    doc = meeting(status="done", kind="thường kỳ", agenda="không phải danh sách")
    backwards = dict(reversed(list(doc.items())))
    assert reason(doc) == reason(backwards) == reason(copy.deepcopy(doc))


def test_validate_reports_required_before_field_errors() -> None:
    assert reason(meeting(cell=None, status="done")) == "meeting: missing required field 'cell'"


# -- what is not validated ------------------------------------------------------------------


def test_validate_unknown_type_refused() -> None:
    assert reason({"_id": "note:1", "type": "note", "text": "ghi chú"}) == "unknown document type 'note'"


@pytest.mark.parametrize("value", [None, 5, ["meeting"], {"name": "meeting"}, ""])
def test_validate_non_string_or_empty_type_refused(value: Any) -> None:
    assert reason({"_id": "x", "type": value}).startswith("unknown document type ")


@pytest.mark.parametrize("doc", [
    {"_id": "plain", "text": "không có type"},
    {"_id": "_design/handbook", "filters": {"audience": "function (doc, req) { return true; }"}},
    {"_id": "_design/typed", "type": "meeting", "views": {}},
    {"_id": "_local/checkpoint", "type": "whatever", "last_seq": "12-abc"},
    {},
], ids=["plain", "design", "design-with-type", "local", "empty"])
def test_validate_untyped_and_system_docs_pass(doc: dict[str, Any]) -> None:
    assert validate(doc) is None


def test_validate_deleted_docs_pass() -> None:
    validate({"_id": MEETING_ID, "_deleted": True})
    validate({"_id": MEETING_ID, "_rev": "2-" + "a" * 32, "_deleted": True, "type": "meeting"})
    validate({"_id": "note:1", "_deleted": True, "type": "note"})


def test_validate_deleted_false_is_validated() -> None:
    assert reason(meeting(_deleted=False, status="done")).startswith("meeting: 'status'")


def test_validate_couchdb_members_allowed() -> None:
    validate(meeting(_rev="3-" + "b" * 32, _revisions={"start": 3, "ids": ["b" * 32]},
                     _conflicts=["2-" + "c" * 32], _attachments={"anh.jpg": {"stub": True, "length": 1}}))


# -- formats and patterns ------------------------------------------------------------------------

GOOD_TIMES = ["2026-12-03T19:30:00+07:00", "2026-12-03T12:30:00.000Z", "2026-12-03t12:30:00z",
              "2026-12-03T19:30:00.123456-03:30", "2024-02-29T00:00:00+00:00", "1998-12-31T23:59:60Z",
              "1999-01-01T06:59:60+07:00", "2026-12-03T19:30:00-00:00"]
BAD_TIMES = ["2026-12-03T19:30:00", "2026-12-03 19:30:00+07:00", "2026-12-03", "2026-12-03T19:30+07:00",
             "2025-02-29T00:00:00Z", "2026-12-03T24:00:00Z", "2026-12-03T19:60:00Z", "2026-12-03T19:30:61Z",
             "2026-12-03T19:30:60Z", "2026-12-03T19:30:00+24:00", "2026-12-03T19:30:00+07:60", "2026-12-03T19:30:00+0700",
             "2026-12-03T19:30:00+07", "２０２６-12-03T19:30:00Z", "2026-12-03T19:30:00Z\n", " 2026-12-03T19:30:00Z",
             "2026-12-03T19:30:00.Z", ""]


@pytest.mark.parametrize("value", GOOD_TIMES)
def test_format_date_time_accepts(value: str) -> None:
    validate(meeting(scheduled=value))


@pytest.mark.parametrize("value", BAD_TIMES)
def test_format_date_time_refuses(value: str) -> None:
    assert "is not a valid date-time (RFC 3339 with an offset" in reason(meeting(scheduled=value))


@pytest.mark.parametrize(("value", "ok"), [
    ("2024-02-29", True), ("1975-04-30", True), ("2025-02-29", False), ("2026-13-01", False), ("2026-1-01", False),
    ("20261203", False), ("2026-12-03T00:00:00Z", False), ("2026-12-03\n", False), ("٢٠٢٦-12-03", False),
])
def test_format_date(value: str, ok: bool) -> None:
    doc = {"_id": f"member:{CELL}:0012", "type": "member", "cell": CELL, "member_no": "0012", "name": "Ma Thị Lụa",
           "joined": value, "status": "active", "smartphone": True, "installed": True, "registered": True}
    if ok:
        validate(doc)
    else:
        assert reason(doc) == f"member: 'joined' ({value}) is not a valid date (YYYY-MM-DD)"


def test_format_checker_knows_every_format_the_schemas_use() -> None:
    used = set()
    for name in validation.SCHEMA_NAMES:
        used |= set(re.findall(r'"format": "([^"]+)"', json.dumps(load_schema(name))))
    assert used == {"date", "date-time"}
    assert used <= set(validation.FORMAT_CHECKER.checkers)


@pytest.mark.parametrize("doc", [
    meeting(cell=CELL + "\n"),
    meeting(_id=MEETING_ID + "\n"),
    {**attendance(), "status": "present"} | {"member": f"member:{CELL}:0012\n"},
], ids=["cell", "_id", "member"])
def test_pattern_final_dollar_does_not_match_before_a_newline(doc: dict[str, Any]) -> None:
    """Python's "$" matches before a final newline; JSON Schema's (ECMA-262) does not."""
    assert "does not match ^" in reason(doc)


def test_pattern_audience_code_with_newline_refused() -> None:
    article = json.loads((validation.SCHEMA_DIR / "examples/article/valid-training-unsigned.json").read_text("utf-8"))
    article["audience"] = ["TQ\n"]
    assert reason(article).startswith("article: 'audience/0' (TQ\n) does not match")


# -- Unicode -------------------------------------------------------------------------------------


def test_validate_keeps_unicode_byte_for_byte() -> None:
    """Composed and decomposed Vietnamese go through validation and JSON unchanged."""
    composed = "Đồng chí Bí thư quán triệt Nghị quyết; các đảng viên thảo luận sôi nổi, ý kiến đóng góp thiết thực."
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    for text in (composed, decomposed):
        doc = minutes(text=text, decisions=[text[:40]])
        before = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        snapshot = copy.deepcopy(doc)
        validate(doc)
        assert doc == snapshot
        after = json.dumps(json.loads(before.decode("utf-8")), ensure_ascii=False).encode("utf-8")
        assert after == before and doc["text"] == text


# -- the schemas ------------------------------------------------------------------------------


def test_schema_dir_holds_every_schema() -> None:
    names = sorted(p.name.removesuffix(".schema.json") for p in validation.SCHEMA_DIR.glob("*.schema.json"))
    assert names == sorted(validation.SCHEMA_NAMES)


@pytest.mark.parametrize("name", validation.SCHEMA_NAMES)
def test_schema_shape(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://handbook.example/schemas/{name}.schema.json"
    assert schema["title"] and schema["description"]
    assert schema["additionalProperties"] is False
    validator_for(schema).check_schema(schema)
    if name != "hierarchy":
        assert schema["properties"]["type"] == {"description": "Document type.", "const": name}
        assert schema["required"][:2] == ["_id", "type"]
        assert schema["patternProperties"] == {"^_": True}
        assert schema["properties"]["_id"]["pattern"].startswith(f"^{name}:")


def test_schema_shared_fields_are_identical() -> None:
    """A field that several schemas share (cell, references, times) has one rule everywhere."""
    groups: dict[str, set[str]] = {}
    for name in validation.DOCUMENT_TYPES:
        for field, sub in load_schema(name)["properties"].items():
            group = {"secretary": "member"}.get(field, field)
            if field.endswith("_at") or field in ("scheduled", "last_active"):
                group = "time"
                sub = {"format": sub["format"]}
            if group in ("cell", "member", "meeting", "time"):
                groups.setdefault(group, set()).add(json.dumps({k: v for k, v in sub.items() if k != "description"}))
    assert {group: len(rules) for group, rules in groups.items()} == {"cell": 1, "member": 1, "meeting": 1, "time": 1}


def test_load_schema_returns_a_fresh_copy() -> None:
    first = load_schema("meeting")
    first["title"] = "đã sửa"
    assert load_schema("meeting")["title"] == "Meeting"


@pytest.mark.parametrize("name", ["note", "../pyproject", "MODEL", ""])
def test_load_schema_unknown_name(name: str) -> None:
    with pytest.raises(ValueError, match="no schema named"):
        load_schema(name)


def test_no_network_for_refs(monkeypatch: pytest.MonkeyPatch) -> None:
    """$ref resolves among our schemas by $id; any other URL fails at once instead of being fetched."""

    def no_network(*args: Any) -> None:
        raise AssertionError("validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    cls = validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    ours = cls({"$ref": "https://handbook.example/schemas/meeting.schema.json"}, registry=validation._registry(),
               format_checker=validation.FORMAT_CHECKER)
    assert ours.is_valid(meeting()) and not ours.is_valid(meeting(status="done"))
    remote = cls({"$ref": "https://example.com/other.schema.json"}, registry=validation._registry())
    with pytest.raises(referencing.exceptions.Unresolvable):
        remote.is_valid({})


def test_shortcut_reports_what_jsonschema_reports() -> None:
    """The leaf short-cut in properties/items changes speed only: same errors as plain jsonschema."""
    docs = [(p.parent.name, json.loads(p.read_text("utf-8"))) for p in (validation.SCHEMA_DIR / "examples").glob("*/*.json")]
    docs += [("meeting", meeting(status="done", agenda=["", 3], scheduled="hôm nay", extra=1))]
    for name, doc in docs:
        schema = load_schema(name)
        plain = extend(validator_for(schema), {"pattern": validation._pattern})(
            schema, registry=validation._registry(), format_checker=validation.FORMAT_CHECKER)

        def summary(errors: Any) -> list[tuple[Any, ...]]:
            return sorted((tuple(map(str, e.absolute_path)), e.validator, e.message) for e in errors)

        assert summary(validation._validator(name).iter_errors(doc)) == summary(plain.iter_errors(doc)), doc
        ours, theirs = best_match(validation._validator(name).iter_errors(doc)), best_match(plain.iter_errors(doc))
        assert (ours and ours.message) == (theirs and theirs.message)


def test_signature_made_by_signing_matches_the_article_schema() -> None:
    """The shape `sync-server publish` writes (sync_server/security/signing.py) is the shape the schema accepts."""
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from sync_server.security import signing

    article = json.loads((validation.SCHEMA_DIR / "examples/article/valid-training-unsigned.json").read_text("utf-8"))
    key = ed25519.Ed25519PrivateKey.generate()
    for files in ({}, {"huong-dan.pdf": "Tài liệu hướng dẫn".encode()}):
        validate(signing.sign(article, key, "tq-2026", files))


def test_public_api() -> None:
    assert validation.__all__ == ["DOCUMENT_TYPES", "SCHEMA_DIR", "load_schema", "validate", "validate_hierarchy_row"]


# -- speed (printed, not asserted) ----------------------------------------------------------------


def test_validate_speed_10000_meetings() -> None:
    docs = [meeting(_id=f"meeting:{CELL}:m{i:05d}", status="held", held_at="2026-12-03T19:45:00+07:00")
            for i in range(10_000)]
    validate(docs[0])  # compile outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    for doc in docs:
        validate(doc)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"\nvalidated 10,000 meeting documents in {elapsed:.3f} s wall, {cpu:.3f} s CPU ({cpu / 10_000 * 1e6:.1f} µs each)")
