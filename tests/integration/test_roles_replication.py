"""The role rules through replication: a member's phone (real PouchDB in Node) pushes to the
kiosk with the member's account, and every document the member may not write is refused with
a per-document 403 `forbidden` while the rest lands; another cell's database cannot be pulled.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.peers

CELL, OTHER = "TQ.NH.KH.C01", "TQ.NH.KH.C02"
DB, OTHER_DB = "cell-tq-nh-kh-c01", "cell-tq-nh-kh-c02"
MEETING = f"meeting:{CELL}:00000000-0000-4000-8000-000000000001"


def attendance(member_no: str) -> dict:
    return {"_id": f"attendance:{MEETING}:{member_no}", "type": "attendance", "cell": CELL, "meeting": MEETING,
            "member": f"member:{CELL}:{member_no}", "status": "present",
            "scheduled": "2026-12-03T19:30:00+07:00", "checked_in_at": "2026-12-03T19:40:00+07:00"}


def set_up(kiosk: Any) -> None:
    with httpx.Client(base_url=kiosk.url, trust_env=False) as admin:
        for db, cell in ((DB, CELL), (OTHER_DB, OTHER)):
            assert admin.put(f"/{db}").status_code == 201
            security = {"admins": {"names": [], "roles": []}, "members": {"names": [], "roles": [f"cell:{cell}"]}}
            assert admin.put(f"/{db}/_security", json=security).status_code == 200
        assert admin.put("/_users").status_code in (201, 412)
        for name, pin, roles in ((f"{CELL}.001", "2468", ["member", f"cell:{CELL}"]),):
            doc = {"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": roles, "pin": pin}
            assert admin.put(f"/_users/{doc['_id']}", json=doc).status_code == 201
        meeting = {"_id": MEETING, "type": "meeting", "cell": CELL, "kind": "regular", "status": "held",
                   "scheduled": "2026-12-03T19:30:00+07:00"}
        assert admin.put(f"/{DB}/{MEETING}", json=meeting).status_code == 201
        theirs = {**meeting, "_id": MEETING.replace(CELL, OTHER), "cell": OTHER}
        assert admin.put(f"/{OTHER_DB}/{theirs['_id']}", json=theirs).status_code == 201


def test_a_members_phone_pushes_only_what_the_member_may_write(kiosk, pouch, tmp_path):
    set_up(kiosk)
    phone = str(tmp_path / "phone")
    own = attendance("001")
    forbidden = [
        attendance("002"),  # someone else's check-in
        {"_id": f"minutes:{MEETING}", "type": "minutes", "cell": CELL, "meeting": MEETING, "text": "giả mạo",
         "decisions": [], "secretary": f"member:{CELL}:001", "written_at": "2026-12-03T21:00:00+07:00"},
        {"_id": f"meeting:{CELL}:00000000-0000-4000-8000-000000000002", "type": "meeting", "cell": CELL,
         "kind": "regular", "status": "scheduled", "scheduled": "2026-12-10T19:30:00+07:00"},
        {"_id": "article:gia-mao", "type": "article", "title": "Giả mạo", "category": "charter", "language": "vi",
         "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00", "body": "..."},
    ]
    written = pouch({"op": "bulk", "db": phone, "docs": [own, *forbidden], "new_edits": True})
    assert all(row.get("ok") for row in written)

    member_url = f"http://{CELL}.001:2468@127.0.0.1:{kiosk.port}/{DB}"
    result = pouch({"op": "replicate", "source": phone, "target": member_url})
    assert result["docs_read"] == 5 and result["docs_written"] == 1 and result["doc_write_failures"] == 4
    with httpx.Client(base_url=kiosk.url, trust_env=False) as admin:
        ids = {row["id"] for row in admin.get(f"/{DB}/_all_docs").json()["rows"]}
        assert ids == {MEETING, own["_id"]}

    # The member cannot read another cell's database by replication either.
    other_url = f"http://{CELL}.001:2468@127.0.0.1:{kiosk.port}/{OTHER_DB}"
    with pytest.raises(pytest.fail.Exception, match="unauthorized|forbidden|401|403"):
        pouch({"op": "replicate", "source": other_url, "target": str(tmp_path / "stolen")})
