"""Each file under schemas/examples/ passes or fails as its name says, for the rule its name gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sync_server.errors import Forbidden
from sync_server.handbook import validation

EXAMPLES = validation.SCHEMA_DIR / "examples"
FILES = sorted(EXAMPLES.glob("*/*.json"))
VALID = [f for f in FILES if f.name.startswith("valid-")]
INVALID = [f for f in FILES if f.name.startswith("invalid-")]

# What each invalid example must be refused for: a part of the reason that names the field and the rule.
REASONS = {
    "article/invalid-audience-bad-code": "article: 'audience/1' (Na Hang) does not match",
    "article/invalid-audience-duplicate": "article: 'audience' must not repeat items (TQ.NH appears twice)",
    "article/invalid-audience-empty": "article: 'audience' must not be empty",
    "article/invalid-audience-too-deep": "article: 'audience/0' (TQ.NH.KH.C01.T1) does not match",
    "article/invalid-bad-category": "article: 'category' must be one of resolution, directive, charter, study, training, news",
    "article/invalid-bad-language": "article: 'language' (tiếng Việt) does not match",
    "article/invalid-id-bad-slug": "article: '_id' (article:hướng-dẫn) does not match",
    "article/invalid-missing-audience": "article: missing required field 'audience'",
    "article/invalid-missing-published-at": "article: missing required field 'published_at'",
    "article/invalid-published-at-date-only": "article: 'published_at' (2026-09-01) is not a valid date-time",
    "article/invalid-signature-bad-alg": "article: 'signature/alg' must be Ed25519",
    "article/invalid-signature-bad-attachment-hash":
        "article: 'signature/attachments/nghi-quyet.pdf' (md5-XUFAKrxLKna5cZ2REBfFkg==) does not match",
    "article/invalid-signature-bad-sig": "article: 'signature/sig' (",
    "article/invalid-signature-missing-sig": "article: missing required field 'signature/sig'",
    "article/invalid-signature-unknown-field": "article: unknown field 'signature/signed_by'",
    "article/invalid-title-too-long": "article: 'title' is longer than 300 characters",
    "article/invalid-unknown-field": "article: unknown field 'cell'",
    "cert_request/invalid-bad-reason": "cert_request: 'reason' must be one of new, renewal, wrong_key",
    "cert_request/invalid-csr-not-pem": "cert_request: 'csr' is not a readable PEM request with a DNS name",
    "cert_request/invalid-csr-other-name":
        "cert_request: 'csr' is for c02.kh.nh.kiosk.tq.example.vn, not for 'name' (c01.kh.nh.kiosk.tq.example.vn)",
    "cert_request/invalid-id-cell-mismatch": "cert_request: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "cert_request/invalid-missing-csr": "cert_request: missing required field 'csr'",
    "cert_request/invalid-name-upper-case": "cert_request: 'name' (C01.KH.NH.KIOSK.TQ.EXAMPLE.VN) does not match",
    "cert_request/invalid-unknown-field": "cert_request: unknown field 'key'",
    "certificate/invalid-chain-other-name":
        "certificate: 'chain' is for c02.kh.nh.kiosk.tq.example.vn, not for 'name' (c01.kh.nh.kiosk.tq.example.vn)",
    "certificate/invalid-chain-private-key": "certificate: 'chain' (-----BEGIN PRIVATE KEY-----",
    "certificate/invalid-id-not-kiosk": "certificate: '_id' (certificate:TQ.NH.KH.C01:phone) does not match",
    "certificate/invalid-missing-request-rev": "certificate: missing required field 'request_rev'",
    "certificate/invalid-not-after-date-only": "certificate: 'not_after' (2027-01-30) is not a valid date-time",
    "attendance/invalid-bad-status": "attendance: 'status' must be one of present, absent, excused",
    "attendance/invalid-checked-in-at-bad-offset": "attendance: 'checked_in_at' (2026-11-05T19:41:12+07) is not a valid date-time",
    "attendance/invalid-id-cell-mismatch": "attendance: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "attendance/invalid-id-meeting-mismatch":
        "attendance: 'meeting' (meeting:TQ.NH.KH.C01:3f6c1a2e-8b4d-4f0e-9a71-2c5d9e8b7a10) does not match the meeting"
        " in _id (meeting:TQ.NH.KH.C01:b2e47d90-1c3a-4e8f-a5d6-7f09c1e2d384)",
    "attendance/invalid-id-member-mismatch":
        "attendance: 'member' (member:TQ.NH.KH.C01:0003) does not match the member in _id (member:TQ.NH.KH.C01:0012)",
    "attendance/invalid-id-missing-member-no":
        "attendance: '_id' (attendance:meeting:TQ.NH.KH.C01:b2e47d90-1c3a-4e8f-a5d6-7f09c1e2d384) does not match",
    "attendance/invalid-marked-by-other-cell":
        "attendance: 'marked_by' (member:TQ.NH.KH.C02:0012) is not a member of cell TQ.NH.KH.C01",
    "attendance/invalid-missing-meeting": "attendance: missing required field 'meeting'",
    "attendance/invalid-missing-member": "attendance: missing required field 'member'",
    "reading/invalid-id-cell-mismatch": "reading: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "reading/invalid-id-date-mismatch": "reading: 'date' (2026-11-04) does not match the date in _id (2026-11-03)",
    "reading/invalid-count-zero": "reading: 'counts/article:dieu-le-dang' (0) must be at least 1",
    "reading/invalid-count-not-integer": "reading: 'counts/article:dieu-le-dang' must be an integer",
    "reading/invalid-counts-not-an-article": "reading: unknown field 'counts/member:TQ.NH.KH.C01:0003'",
    "reading/invalid-names-a-member": "reading: unknown field 'member'",
    "reading/invalid-missing-counts": "reading: missing required field 'counts'",
    "device/invalid-id-bad-device-id": "device: '_id' (device:TQ.NH.KH.C01:điện-thoại-lụa) does not match",
    "device/invalid-id-cell-mismatch": "device: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "device/invalid-member-bad-id": "device: 'member' (Ma Thị Lụa) does not match",
    "device/invalid-member-other-cell": "device: 'member' (member:TQ.NH.KH.C02:0012) is not a member of cell TQ.NH.KH.C01",
    "device/invalid-missing-member": "device: missing required field 'member'",
    "device/invalid-paired-at-not-time": "device: 'paired_at' (2 tháng 10 năm 2026) is not a valid date-time",
    "device/invalid-revoked-not-bool": "device: 'revoked' must be a boolean",
    "feedback/invalid-article-bad-id": "feedback: 'article' (Hướng dẫn sử dụng) does not match",
    "feedback/invalid-bad-about": "feedback: 'about' must be one of software, content, training, other",
    "feedback/invalid-id-cell-mismatch": "feedback: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "feedback/invalid-member-other-cell": "feedback: 'member' (member:TQ.LB.TL.C03:0040) is not a member of cell TQ.NH.KH.C01",
    "feedback/invalid-missing-created-at": "feedback: missing required field 'created_at'",
    "feedback/invalid-missing-text": "feedback: missing required field 'text'",
    "feedback/invalid-rating-not-integer": "feedback: 'rating' must be an integer",
    "feedback/invalid-rating-too-high": "feedback: 'rating' (6) must be at most 5",
    "feedback/invalid-rating-zero": "feedback: 'rating' (0) must be at least 1",
    "hierarchy/invalid-bad-level": "hierarchy: 'level' must be one of province, district, commune, cell",
    "hierarchy/invalid-empty-name": "hierarchy: 'name' must not be empty",
    "hierarchy/invalid-missing-parent": "hierarchy: missing required field 'parent'",
    "hierarchy/invalid-parent-not-prefix": "hierarchy: 'parent' (TQ.NH.SP) does not match the parent in 'code' (TQ.NH.KH)",
    "hierarchy/invalid-province-with-parent": "hierarchy: 'parent' must be null",
    "hierarchy/invalid-unknown-field": "hierarchy: unknown field '_id'",
    "meeting/invalid-agenda-item-empty": "meeting: 'agenda/1' must not be empty",
    "meeting/invalid-agenda-not-list": "meeting: 'agenda' must be an array",
    "meeting/invalid-bad-kind": "meeting: 'kind' must be one of regular, thematic, extraordinary",
    "meeting/invalid-bad-status": "meeting: 'status' must be one of scheduled, held, cancelled",
    "meeting/invalid-held-at-bad-offset": "meeting: 'held_at' (2026-11-05T19:45:00+7:00) is not a valid date-time",
    "meeting/invalid-id-bad-uuid": "meeting: '_id' (meeting:TQ.NH.KH.C01:họp tháng 12) does not match",
    "meeting/invalid-id-cell-mismatch": "meeting: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "meeting/invalid-id-cell-three-parts": "meeting: '_id' (meeting:TQ.NH.C01:2026-12) does not match",
    "meeting/invalid-missing-cell": "meeting: missing required field 'cell'",
    "meeting/invalid-missing-scheduled": "meeting: missing required field 'scheduled'",
    "meeting/invalid-place-too-long": "meeting: 'place' is longer than 300 characters",
    "meeting/invalid-scheduled-bad-month": "meeting: 'scheduled' (2026-13-03T19:30:00+07:00) is not a valid date-time",
    "meeting/invalid-scheduled-date-only": "meeting: 'scheduled' (2026-12-03) is not a valid date-time",
    "meeting/invalid-scheduled-no-offset": "meeting: 'scheduled' (2026-12-03T19:30:00) is not a valid date-time",
    "meeting/invalid-unknown-field": "meeting: unknown field 'chu_tri'",
    "meeting/invalid-wrong-type-case": "unknown document type 'Meeting'",
    "member/invalid-bad-gender": "member: 'gender' must be one of male, female, other",
    "member/invalid-bad-status": "member: 'status' must be one of active, moved, inactive",
    "member/invalid-born-out-of-range": "member: 'born' (68) must be at least 1900",
    "member/invalid-cell-three-parts": "member: 'cell' (TQ.NH.C01) does not match",
    "member/invalid-id-cell-mismatch": "member: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "member/invalid-id-member-no-mismatch": "member: 'member_no' (0021) does not match the member_no in _id (0012)",
    "member/invalid-joined-bad-date": "member: 'joined' (1994-02-30) is not a valid date",
    "member/invalid-last-active-no-offset": "member: 'last_active' (2026-11-28T20:14:05) is not a valid date-time",
    "member/invalid-missing-cell": "member: missing required field 'cell'",
    "member/invalid-missing-registered": "member: missing required field 'registered'",
    "member/invalid-name-empty": "member: 'name' must not be empty",
    "member/invalid-smartphone-not-bool": "member: 'smartphone' must be a boolean",
    "member/invalid-unknown-field": "member: unknown field 'phone'",
    "minutes/invalid-decisions-not-strings": "minutes: 'decisions/0' must be a string",
    "minutes/invalid-id-cell-mismatch": "minutes: 'cell' (TQ.NH.KH.C02) does not match the cell in _id (TQ.NH.KH.C01)",
    "minutes/invalid-id-meeting-mismatch":
        "minutes: 'meeting' (meeting:TQ.NH.KH.C01:3f6c1a2e-8b4d-4f0e-9a71-2c5d9e8b7a10) does not match the meeting"
        " in _id (meeting:TQ.NH.KH.C01:b2e47d90-1c3a-4e8f-a5d6-7f09c1e2d384)",
    "minutes/invalid-meeting-bad-id": "minutes: 'meeting' (2026-11-05) does not match",
    "minutes/invalid-attendance-typed-text": "minutes: 'attendance/present'",
    "minutes/invalid-missing-text": "minutes: missing required field 'text'",
    "minutes/invalid-missing-written-at": "minutes: missing required field 'written_at'",
    "minutes/invalid-secretary-other-cell":
        "minutes: 'secretary' (member:TQ.LB.TL.C03:0040) is not a member of cell TQ.NH.KH.C01",
    "minutes/invalid-text-empty": "minutes: 'text' must not be empty",
    "unit/invalid-bad-level": "unit: 'level' must be one of province, district, commune, cell",
    "unit/invalid-code-lowercase": "unit: 'code' (TQ.nh) does not match",
    "unit/invalid-code-part-too-long": "unit: 'code' (TQ.NH.KH.CHIBOTHONNAKHAU) does not match",
    "unit/invalid-id-code-mismatch": "unit: 'code' (TQ.NH.KH.C01) does not match the code in _id (TQ.NH.KH.C02)",
    "unit/invalid-level-parts-mismatch": "unit: 'code' (TQ.NH.KH) does not match",
    "unit/invalid-missing-name": "unit: missing required field 'name'",
    "unit/invalid-name-too-long": "unit: 'name' is longer than 200 characters",
    "unit/invalid-parent-not-prefix": "unit: 'parent' (TQ.LB) does not match the parent in 'code' (TQ.NH)",
    "unit/invalid-province-with-parent": "unit: 'parent' must be null",
    "unit/invalid-unknown-field": "unit: unknown field 'ten_bi_thu'",
}


def key(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def check(path: Path, doc: dict[str, Any]) -> None:
    """Validate an example the way its kind is validated in production."""
    if path.parent.name == "hierarchy":
        validation.validate_hierarchy_row(doc)
    else:
        validation.validate(doc)


@pytest.mark.parametrize("path", VALID, ids=key)
def test_example_valid_passes(path: Path) -> None:
    check(path, load(path))


@pytest.mark.parametrize("path", INVALID, ids=key)
def test_example_invalid_fails_for_its_rule(path: Path) -> None:
    with pytest.raises(Forbidden) as caught:
        check(path, load(path))
    assert caught.value.status == 403 and caught.value.error == "forbidden"
    assert REASONS[key(path)] in caught.value.reason


@pytest.mark.parametrize("path", INVALID, ids=key)
def test_example_invalid_breaks_one_rule(path: Path) -> None:
    """All schema errors concern one field; or none do and exactly one cross-field rule is broken."""
    doc = load(path)
    name = path.parent.name
    if name != "hierarchy" and doc.get("type") not in validation.DOCUMENT_TYPES:
        return  # refused for its type alone
    errors = list(validation._validator(name).iter_errors(doc))
    # a missing member is reported at its parent object: its message tells which one
    fields = {(*e.absolute_path, e.message if e.validator == "required" else "") for e in errors}
    if errors:
        assert len(fields) == 1, [e.message for e in errors]
    else:
        assert len(list(validation._CROSS_FIELD[name](doc))) == 1


def test_examples_cover_every_schema() -> None:
    """Every schema has several valid and several invalid examples, and every invalid one a known reason."""
    for name in validation.SCHEMA_NAMES:
        assert len([f for f in VALID if f.parent.name == name]) >= 2, name
        assert len([f for f in INVALID if f.parent.name == name]) >= 5, name
    assert sorted(REASONS) == sorted(key(f) for f in INVALID)
    assert {f.parent.name for f in FILES} == set(validation.SCHEMA_NAMES)
    assert len(VALID) + len(INVALID) == len(FILES), "example names start with valid- or invalid-"


@pytest.mark.parametrize("path", VALID, ids=key)
def test_example_valid_is_unchanged_by_validation(path: Path) -> None:
    raw = path.read_bytes()
    doc = load(path)
    check(path, doc)
    assert (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8") == raw
