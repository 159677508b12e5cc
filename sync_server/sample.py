"""A small sample database, so a new user sees something at once."""

from __future__ import annotations

from .store import Server

SAMPLE_DOCS = [
    {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang", "level": "province", "parent": None},
    {"_id": "unit:TQ.NH", "type": "unit", "code": "TQ.NH", "name": "Na Hang", "level": "district", "parent": "TQ"},
    {"_id": "article:dieu-le", "type": "article", "title": "Điều lệ Đảng", "category": "charter",
     "language": "vi", "body": "Đảng Cộng sản Việt Nam là đội tiên phong của giai cấp công nhân..."},
    {"_id": "article:huong-dan-so-tay", "type": "article", "title": "Hướng dẫn sử dụng Sổ tay đảng viên",
     "category": "training", "language": "vi", "body": "Mở ứng dụng, chọn chi bộ, đồng bộ tại nhà văn hoá thôn."},
    {"_id": "meeting:TQ.NH.C01:2026-12", "type": "meeting", "kind": "regular", "cell": "TQ.NH.C01",
     "scheduled": "2026-12-03T19:30:00+07:00", "place": "Nhà văn hoá thôn Bản Lằn", "status": "scheduled"},
]


def ensure_sample(server: Server, name: str) -> bool:
    """Create and fill the sample database unless it exists; True when created."""
    if server.exists(name):
        return False
    server.create(name).bulk_docs([dict(doc) for doc in SAMPLE_DOCS])
    return True
