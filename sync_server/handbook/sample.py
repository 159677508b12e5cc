"""A small sample database, so a new user sees something at once (valid per schemas/)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import NotFound
from ..security.auth import USER_PREFIX, current_name, current_roles
from ..store import Server
from .ownership import KIOSK_ADMIN_ROLE, MEMBER_ROLE, SECRETARY_ROLE, cell_role, kiosk_security
from .policy import secure

CELL = "TQ.NH.KH.C01"

PROVINCE_TZ = timezone(timedelta(hours=7))


def _now() -> datetime:
    return datetime.now(PROVINCE_TZ)


def next_meeting_at() -> str:
    """When the sample's next meeting is: the last half hour (the province's time) at the moment the
    sample is written, so check-in (open from an hour before a meeting to four hours after it, by
    default) is open for hours after a sample is made, whenever that is: the demo's check-in works
    on any day. Read at each write, never at import: whoever imports this module long before writing a
    sample (a test run, a long-lived tool) still writes the half hour of the write."""
    now = _now()
    return now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0).isoformat()


def _dated(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the documents, the next meeting's time filled in now."""
    when = next_meeting_at()
    return [{**doc, "scheduled": when} if doc.get("scheduled") is NEXT else dict(doc) for doc in docs]


NEXT = object()  # marks the next meeting's time in the lists below, filled in by _dated

SAMPLE_DOCS: list[dict[str, Any]] = [
    {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang", "level": "province", "parent": None},
    {"_id": "unit:TQ.NH", "type": "unit", "code": "TQ.NH", "name": "Na Hang", "level": "district", "parent": "TQ"},
    {"_id": "article:dieu-le-dang", "type": "article", "title": "Điều lệ Đảng", "category": "charter",
     "language": "vi", "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00",
     "body": "Đảng Cộng sản Việt Nam là đội tiên phong của giai cấp công nhân..."},
    {"_id": "article:huong-dan-so-tay", "type": "article", "title": "Hướng dẫn sử dụng Sổ tay đảng viên",
     "category": "training", "language": "vi", "audience": ["TQ"], "published_at": "2026-11-02T08:00:00+07:00",
     "body": "Mở ứng dụng, chọn chi bộ, đồng bộ tại nhà văn hoá thôn."},
    {"_id": f"meeting:{CELL}:5d0c9a4e-2f1b-4c3d-8e7f-a1b2c3d4e5f6", "type": "meeting", "kind": "regular",
     "cell": CELL, "scheduled": NEXT, "place": "Nhà văn hoá thôn Bản Lằn",
     "status": "scheduled"},
]


def ensure_sample(server: Server, name: str) -> bool:
    """Create and fill the sample database unless it exists; True when created.

    The sample province the web app opens on (handbook, a cell, demo accounts) is
    completed too, each part only when missing.
    """
    ensure_sample_province(server)
    if server.exists(name):
        return False
    results = server.create(name).bulk_docs(_dated(SAMPLE_DOCS))
    failed = [r for r in results if "error" in r]
    if failed:
        raise ValueError(f"sample documents refused: {failed}")
    return True


# --- the sample province (issue #7): what `serve --sample` opens in the web app ---------
# A handbook with articles in every screen's category (one with a PDF), one cell's
# database with meetings and minutes, and three accounts whose PINs are printed here on
# purpose (a member, the secretary, and the kiosk admin who pairs phones on the kiosk screen):
# they exist only in a data directory made with --sample, and the server
# offers them to the app (GET /_app/sample.json) only while it runs with --sample.
CELL_DB = "cell-tq-nh-kh-c01"
HANDBOOK_DB = "handbook"
DEMO_MEMBER = {"name": f"{CELL}.0003", "pin": "1234", "member": f"member:{CELL}:0003"}
DEMO_SECRETARY = {"name": f"{CELL}.0012", "pin": "2468", "member": f"member:{CELL}:0012"}
# Not a member: an account of the cell (to read its database) with the kiosk-admin role only.
DEMO_KIOSK_ADMIN = {"name": f"{CELL}.kiosk", "pin": "1357"}
MEETING_NEXT = f"meeting:{CELL}:5d0c9a4e-2f1b-4c3d-8e7f-a1b2c3d4e5f6"
MEETING_HELD = f"meeting:{CELL}:b2e47d90-1c3a-4e8f-a5d6-7f09c1e2d384"


def _tiny_pdf(lines: list[str]) -> bytes:
    """A one-page PDF (Helvetica, ASCII text) with a correct cross-reference table."""
    text = " ".join(f"({line}) Tj 0 -28 Td" for line in lines)
    stream = f"BT /F1 18 Tf 60 760 Td {text} ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
                b"/Resources << /Font << /F1 5 0 R >> >> >>"),
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


SAMPLE_PDF = _tiny_pdf(["Nghi quyet so 01-NQ/TU (ban mau)", "Tai lieu mau cho chi bo thon Ban Lan.",
                        "Sample document: the handbook's attachments open offline."])


def _article(slug: str, title: str, category: str, day: int, summary: str, body: str) -> dict:
    return {"_id": f"article:{slug}", "type": "article", "title": title, "category": category,
            "language": "vi", "audience": ["TQ"], "published_at": f"2026-11-{day:02d}T08:00:00+07:00",
            "summary": summary, "body": body}


HANDBOOK_DOCS: list[dict[str, Any]] = [
    {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang", "level": "province", "parent": None},
    {"_id": "unit:TQ.NH", "type": "unit", "code": "TQ.NH", "name": "Na Hang", "level": "district", "parent": "TQ"},
    {"_id": "unit:TQ.NH.KH", "type": "unit", "code": "TQ.NH.KH", "name": "Khâu Tinh", "level": "commune",
     "parent": "TQ.NH"},
    {"_id": f"unit:{CELL}", "type": "unit", "code": CELL, "name": "Chi bộ thôn Bản Lằn", "level": "cell",
     "parent": "TQ.NH.KH"},
    {**_article("nghi-quyet-01-tu", "Nghị quyết số 01-NQ/TU về chuyển đổi số", "resolution", 5,
                "Nghị quyết của Tỉnh uỷ về chuyển đổi số trong sinh hoạt chi bộ.",
                "Tỉnh uỷ yêu cầu các chi bộ đưa Sổ tay đảng viên điện tử vào sinh hoạt định kỳ.\n\n"
                "Mục tiêu: trên 80% chi bộ sử dụng Sổ tay trong sinh hoạt chi bộ.\n\n"
                "Bản đầy đủ ở tệp đính kèm (PDF)."),
     "_attachments": {"nghi-quyet-01-tu.pdf": {"content_type": "application/pdf",
                                               "data": base64.b64encode(SAMPLE_PDF).decode()}}},
    _article("dieu-le-dang", "Điều lệ Đảng", "charter", 1, "Điều lệ Đảng Cộng sản Việt Nam.",
             "Đảng Cộng sản Việt Nam là đội tiên phong của giai cấp công nhân, đồng thời là đội tiên phong "
             "của nhân dân lao động và của dân tộc Việt Nam.\n\nĐảng viên có nhiệm vụ tuyệt đối trung thành "
             "với mục đích lý tưởng cách mạng của Đảng."),
    _article("chi-thi-sinh-hoat-chi-bo", "Chỉ thị về nâng cao chất lượng sinh hoạt chi bộ", "directive", 3,
             "Sinh hoạt chi bộ đều đặn mỗi tháng một lần.",
             "Chi bộ sinh hoạt thường kỳ mỗi tháng một lần, sinh hoạt chuyên đề ít nhất mỗi quý một lần.\n\n"
             "Bí thư chi bộ chuẩn bị nội dung; thư ký ghi biên bản."),
    _article("hoc-tap-tu-tuong-ho-chi-minh", "Học tập và làm theo tư tưởng Hồ Chí Minh", "study", 8,
             "Chuyên đề học tập năm 2026.",
             "Mỗi đảng viên đăng ký một việc làm cụ thể để học tập và làm theo tư tưởng, đạo đức, "
             "phong cách Hồ Chí Minh."),
    _article("huong-dan-so-tay", "Hướng dẫn sử dụng Sổ tay đảng viên", "training", 2,
             "Cách mở Sổ tay, đọc tài liệu và điểm danh.",
             "Mở ứng dụng, đăng nhập bằng mã đảng viên và mã PIN.\n\nĐồng bộ tại nhà văn hoá thôn: "
             "khi điện thoại bắt được Wi-Fi của nhà văn hoá, dữ liệu tự cập nhật."),
    _article("tin-nha-van-hoa-co-wifi", "Nhà văn hoá thôn Bản Lằn đã có Wi-Fi", "news", 20,
             "Đảng viên có thể đồng bộ Sổ tay tại nhà văn hoá.",
             "Từ tháng 11/2026, nhà văn hoá thôn Bản Lằn có máy Sổ tay và Wi-Fi phục vụ đảng viên."),
]


def _member(no: str, name: str, born: int, gender: str, *, phone_paired: str | None = None,
            signed_in: str | None = None, active_on: tuple[str, ...] = ()) -> list[dict]:
    """A member's record and their phone's ``device`` record, from what they did, as the kiosk writes them
    (``usage.py``): installed because a phone was paired (and not revoked), registered since their first
    sign-in (a pairing is one), active in the months they did something. Nothing is typed in as a flag."""
    first = min(filter(None, (phone_paired, signed_in)), default=None)
    member: dict[str, Any] = {
        "_id": f"member:{CELL}:{no}", "type": "member", "cell": CELL, "member_no": no, "name": name, "born": born,
        "gender": gender, "status": "active", "smartphone": True, "installed": phone_paired is not None,
        "registered": first is not None}
    if first is not None:
        member["registered_at"] = first
    if active_on:
        member["last_active"] = max(active_on)
        member["active_months"] = sorted({moment[:7] for moment in active_on})
    if phone_paired is None:
        return [member]
    device = {"_id": f"device:{CELL}:{_DEVICE_IDS[no]}", "type": "device", "cell": CELL, "member": member["_id"],
              "paired_at": phone_paired, "label": f"Điện thoại của {name.split()[-1]}", "revoked": False}
    return [member, device]


def _attendance(meeting: str, no: str, **how: str) -> dict:
    return {"_id": f"attendance:{meeting}:{no}", "type": "attendance", "cell": CELL, "meeting": meeting,
            "member": f"member:{CELL}:{no}", "status": "present", **how}


_DEVICE_IDS = {"0003": "3f9a61c2d4e8b057", "0012": "c07b2e95a1d64f38"}
_HELD_AT = "2026-11-05T19:30:00+07:00"
# The sample cell's story: the secretary paired her phone at the training day in October; at the
# thematic meeting in November the kiosk admin paired the demo member's phone before it began, both
# checked in through the app, and the secretary marked Đặng Thị Hoà, who has a phone but has never
# signed in. The nightly report reads 3 members, 2 installed, 2 registered, 2 active in 2026-11, and
# the cell using the handbook that month (check-ins through the app at a held meeting).
CELL_DOCS: list[dict[str, Any]] = [
    *_member("0003", "Hoàng Văn Thắng", 1949, "male", phone_paired="2026-11-05T19:10:00+07:00",
             active_on=("2026-11-05T19:24:00+07:00",)),
    *_member("0012", "Ma Thị Lụa", 1968, "female", phone_paired="2026-10-20T09:30:00+07:00",
             active_on=("2026-10-20T09:30:00+07:00", "2026-11-05T21:10:00+07:00")),
    *_member("0013", "Đặng Thị Hoà", 1968, "female"),
    {"_id": MEETING_NEXT, "type": "meeting", "kind": "regular", "cell": CELL,
     "scheduled": NEXT, "place": "Nhà văn hoá thôn Bản Lằn", "status": "scheduled",
     "agenda": ["Quán triệt Nghị quyết số 01-NQ/TU", "Đánh giá công việc tháng 11"]},
    {"_id": MEETING_HELD, "type": "meeting", "kind": "thematic", "cell": CELL,
     "scheduled": _HELD_AT, "place": "Nhà văn hoá thôn Bản Lằn", "status": "held",
     "held_at": "2026-11-05T19:45:00+07:00", "agenda": ["Chuyên đề học tập năm 2026"]},
    _attendance(MEETING_HELD, "0003", checked_in_at="2026-11-05T19:24:00+07:00", scheduled=_HELD_AT),
    _attendance(MEETING_HELD, "0012", checked_in_at="2026-11-05T19:18:00+07:00", scheduled=_HELD_AT),
    _attendance(MEETING_HELD, "0013", marked_by=DEMO_SECRETARY["member"], marked_at="2026-11-05T19:40:00+07:00"),
    {"_id": f"minutes:{MEETING_HELD}", "type": "minutes", "cell": CELL, "meeting": MEETING_HELD,
     "text": "Chi bộ sinh hoạt chuyên đề. Có mặt 3/3 đảng viên.",
     "decisions": ["Mỗi đảng viên đăng ký một việc làm cụ thể theo chuyên đề."],
     "attendance": {"present": 3, "members": 3},
     "secretary": DEMO_SECRETARY["member"], "written_at": "2026-11-05T21:10:00+07:00"},
]


def _account(person: dict, roles: list[str]) -> dict:
    return {"_id": f"{USER_PREFIX}{person['name']}", "type": "user", "name": person["name"],
            "roles": roles, "pin": person["pin"]}


def ensure_sample_province(server: Server) -> list[str]:
    """Create the sample handbook, cell database and accounts that are missing; the names created."""
    created = []
    for name, docs in ((HANDBOOK_DB, HANDBOOK_DOCS), (CELL_DB, CELL_DOCS)):
        if not server.exists(name):
            _fill(server.create(name), docs)
            created.append(name)
    # the cell's records are read by its accounts only, the handbook by the people of the kiosk;
    # nothing is open to anonymous clients (deny by default)
    for name in (HANDBOOK_DB, CELL_DB):
        secure(server.get(name), kiosk_security(name, CELL))
    users = server.get_or_create("_users")
    accounts = [_account(DEMO_MEMBER, [MEMBER_ROLE, cell_role(CELL)]),
                _account(DEMO_SECRETARY, [MEMBER_ROLE, SECRETARY_ROLE, cell_role(CELL)]),
                _account(DEMO_KIOSK_ADMIN, [KIOSK_ADMIN_ROLE, cell_role(CELL)])]
    missing = [a for a in accounts if not _exists(users, a["_id"])]
    if missing:
        _fill(users, missing)
        created.extend(a["name"] for a in missing)
    return created


def _exists(db: Any, doc_id: str) -> bool:
    try:
        db.get(doc_id)
    except NotFound:
        return False
    return True


def _fill(db: Any, docs: list[dict]) -> None:
    """Write as the server itself (no user roles), whatever request ran last in this thread."""
    roles, name = current_roles.set(None), current_name.set(None)
    try:
        results = db.bulk_docs(_dated(docs))
    finally:
        current_roles.reset(roles)
        current_name.reset(name)
    failed = [r for r in results if "error" in r]
    if failed:
        raise ValueError(f"sample documents refused: {failed}")
