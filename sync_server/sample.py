"""A small sample database, so a new user sees something at once (valid per schemas/)."""

from __future__ import annotations

from .store import Server

CELL = "TQ.NH.KH.C01"
SAMPLE_DOCS = [
    {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang", "level": "province", "parent": None},
    {"_id": "unit:TQ.NH", "type": "unit", "code": "TQ.NH", "name": "Na Hang", "level": "district", "parent": "TQ"},
    {"_id": "article:dieu-le-dang", "type": "article", "title": "Điều lệ Đảng", "category": "charter",
     "language": "vi", "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00",
     "body": "Đảng Cộng sản Việt Nam là đội tiên phong của giai cấp công nhân..."},
    {"_id": "article:huong-dan-so-tay", "type": "article", "title": "Hướng dẫn sử dụng Sổ tay đảng viên",
     "category": "training", "language": "vi", "audience": ["TQ"], "published_at": "2026-11-02T08:00:00+07:00",
     "body": "Mở ứng dụng, chọn chi bộ, đồng bộ tại nhà văn hoá thôn."},
    {"_id": f"meeting:{CELL}:5d0c9a4e-2f1b-4c3d-8e7f-a1b2c3d4e5f6", "type": "meeting", "kind": "regular",
     "cell": CELL, "scheduled": "2026-12-03T19:30:00+07:00", "place": "Nhà văn hoá thôn Bản Lằn",
     "status": "scheduled"},
]


def ensure_sample(server: Server, name: str) -> bool:
    """Create and fill the sample database unless it exists; True when created."""
    if server.exists(name):
        return False
    results = server.create(name).bulk_docs([dict(doc) for doc in SAMPLE_DOCS])
    failed = [r for r in results if "error" in r]
    if failed:
        raise ValueError(f"sample documents refused: {failed}")
    return True
