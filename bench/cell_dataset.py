"""A deterministic "cell data set": what one party cell's kiosk pulls from the provincial hub.

    .venv/bin/python bench/dataset.py [--quick] [--load URL/DB]

* 2,000 meetings of the cell, about 1 KB of JSON each (Vietnamese agenda text);
* 200 handbook articles of about 8 KB each (Vietnamese body);
* 20 of those articles carry a 100 KB PDF attachment: random bytes from a seeded
  RNG behind a ``%PDF-1.4`` header, incompressible like real PDFs.

Documents follow schemas/*.schema.json (types ``meeting`` and ``article``), so a
store that validates writes accepts them.

``--quick``: 200 meetings, 20 articles, 2 PDFs. The same seed gives the same
documents, byte for byte, on every machine (Python's ``random.Random`` is stable
across platforms for ``randrange``/``choice``/``randbytes``). The documents come
in a seeded shuffled order, as a hub's changes feed mixes types.

``load(url, db, docs)`` creates the database and writes the documents with
``_bulk_docs`` in bodies of bounded size; ``payload_bytes(docs)`` gives the
physical payload: the JSON documents gzip-compressed, plus the raw attachment bytes.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gzip
import json
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

Doc = dict[str, Any]
SEED = 20240601
FULL = (2000, 200, 20)  # meetings, articles, PDFs
QUICK = (200, 20, 2)
MEETING_BYTES = 1000
ARTICLE_BYTES = 8000
PDF_BYTES = 100_000
CELL = "TQ.NH.KH.C01"  # the kiosk's cell (unit codes: schemas/MODEL.md)
LOAD_BODY_BYTES = 256_000  # largest _bulk_docs body when loading (a hub fills in small writes)

HO = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
      "Dương", "Lý"]
DEM = ["Văn", "Thị", "Hữu", "Minh", "Thanh", "Ngọc", "Quốc", "Đức", "Thu", "Hoài", "Xuân", "Bích", "Công", "Kim"]
TEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phương", "Quân", "Sơn",
       "Thảo", "Trang", "Tuấn", "Yến", "Khoa", "Nhung", "Đạt", "Huệ", "Lộc", "Tâm"]
PLACES = ["Hội trường UBND phường Bến Nghé", "Nhà văn hóa khu phố 3", "Phòng họp Đảng ủy xã Tân Phú",
          "Hội trường Trường THCS Lê Lợi", "Trụ sở Mặt trận Tổ quốc phường Đa Kao",
          "Nhà sinh hoạt cộng đồng ấp Bình Thạnh", "Phòng họp chi bộ khu dân cư số 7"]
TITLES = ["Sinh hoạt chi bộ định kỳ tháng {m}/{y}",
          "Họp chuyên đề: học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh",
          "Kiểm điểm, đánh giá chất lượng đảng viên cuối năm {y}",
          "Triển khai nghị quyết Đảng bộ phường nhiệm kỳ mới",
          "Họp chi ủy mở rộng về công tác phát triển đảng viên"]
AGENDA = ["Thông qua biên bản kỳ họp trước", "Đánh giá kết quả thực hiện nhiệm vụ tháng",
          "Phương hướng nhiệm vụ tháng tới", "Thu đảng phí", "Ý kiến của đảng viên",
          "Công tác an sinh xã hội trên địa bàn", "Giới thiệu quần chúng ưu tú"]
REASONS = ["Đi công tác tỉnh Bình Dương", "Ốm, có giấy xác nhận của trạm y tế", "Trực ca tại cơ quan",
           "Việc gia đình đột xuất", "Đang tham gia lớp bồi dưỡng lý luận chính trị"]
SUBJECTS = ["Chi bộ", "Đồng chí bí thư", "Ban chấp hành", "Các đảng viên", "Tổ dân phố", "Hội phụ nữ",
            "Đoàn thanh niên", "Ủy ban nhân dân phường", "Mặt trận Tổ quốc", "Hội cựu chiến binh",
            "Chi ủy", "Đảng ủy xã", "Tổ công tác", "Ban vận động khu phố"]
VERBS = ["đã thống nhất", "đề nghị tăng cường", "cần tiếp tục thực hiện", "đã hoàn thành", "chủ động triển khai",
         "báo cáo kết quả", "xây dựng kế hoạch", "kiểm tra, giám sát", "tuyên truyền, vận động",
         "phối hợp tổ chức", "rút kinh nghiệm về", "quán triệt sâu sắc"]
OBJECTS = ["công tác phát triển đảng viên mới", "việc thu nộp đảng phí đúng hạn",
           "phong trào toàn dân bảo vệ an ninh Tổ quốc", "chương trình xây dựng nông thôn mới",
           "công tác giữ gìn vệ sinh môi trường khu dân cư", "việc học tập nghị quyết của Đảng",
           "hỗ trợ các gia đình chính sách, hộ nghèo", "cải cách thủ tục hành chính",
           "nâng cao chất lượng sinh hoạt chi bộ", "phòng, chống dịch bệnh tại địa phương",
           "chuyển đổi số trong quản lý đảng viên", "công tác khen thưởng cuối năm",
           "phòng chống tham nhũng, lãng phí", "đền ơn đáp nghĩa, uống nước nhớ nguồn"]
TAILS = ["trong thời gian tới", "theo đúng kế hoạch đã đề ra", "một cách thiết thực, hiệu quả",
         "với sự đồng thuận cao của nhân dân", "ngay trong quý này", "trên địa bàn phường",
         "theo chỉ đạo của cấp ủy cấp trên", "bảo đảm dân chủ, công khai, minh bạch"]
TOPICS = ["Điều lệ Đảng", "Quy định về những điều đảng viên không được làm", "Nghiệp vụ công tác đảng",
          "Hướng dẫn sinh hoạt chi bộ", "Công tác kiểm tra, giám sát", "Kỹ năng tuyên truyền miệng",
          "Lịch sử Đảng bộ địa phương", "Chuyển sinh hoạt đảng", "Công tác dân vận"]


# Common Vietnamese syllables, most frequent first: free text is drawn from them with Zipf-like
# weights, so that it gzip-compresses about as well as real prose (3-4x), not like a template.
SYLLABLES = """và của có là các được trong cho không những người đã với này một để khi đến về đồng chí đảng
viên chi bộ công tác nhân dân cán bộ thực hiện phường xã năm tháng ngày họp kết quả nhiệm vụ kế
hoạch tổ chức phát triển kinh tế xã hội an ninh trật tự quốc phòng giáo dục y tế văn hóa gia
đình tình hình địa phương khu phố ấp thôn bản hộ nghèo chính sách bảo hiểm lao động việc làm
thanh niên phụ nữ cựu chiến binh nông dân mặt trận đoàn thể tuyên truyền vận động học tập làm
theo tư tưởng đạo đức phong cách lãnh đạo chỉ đạo điều hành kiểm tra giám sát kỷ luật khen
thưởng đánh giá xếp loại chất lượng hoàn thành xuất sắc tốt còn hạn chế tồn tại nguyên nhân
khắc phục giải pháp đề xuất kiến nghị ý kiến thảo luận thống nhất biểu quyết nghị quyết chỉ thị
quy định hướng dẫn văn bản báo cáo biên bản thông báo quyết định đường giao thông nông thôn môi
trường vệ sinh rác thải nước sạch điện chiếu sáng cây xanh trường học trạm y tế nhà văn hóa sân
chơi hội trường ủy ban nhân dân đảng ủy chính quyền mùa mưa lũ lụt hạn hán phòng chống dịch
bệnh tiêm chủng khám chữa bệnh người cao tuổi trẻ em học sinh sinh viên bà con cô chú anh chị
em ông bà cha mẹ con cháu họ hàng láng giềng tiếp tục tăng cường nâng cao đẩy mạnh phát huy giữ
vững củng cố xây dựng chỉnh đốn đổi mới sáng tạo hiệu quả thiết thực cụ thể kịp thời nghiêm túc
đầy đủ chặt chẽ dân chủ công khai minh bạch trách nhiệm nghĩa vụ quyền lợi đóng góp ủng hộ quỹ
vì người nghèo đền ơn đáp nghĩa tình nghĩa sản xuất kinh doanh buôn bán chợ ruộng vườn lúa gạo
cà phê cao su hồ tiêu thủy sản chăn nuôi thu nhập bình quân đầu người tăng giảm so với cùng kỳ
đạt vượt chỉ tiêu phấn đấu mục tiêu số liệu thống kê danh sách hồ sơ thủ tục đăng ký tạm trú
thường trú căn cước chứng nhận sáng chiều tối hôm nay mai qua tuần trước sau đầu cuối giữa quý
đợt lần thứ nhất hai ba bốn năm rất cũng đều vẫn sẽ đang vừa mới chưa đã từng luôn thường xuyên
định kỳ đột xuất bất thường
""".split()  # noqa: SIM905 - a list literal of 400 words would not be readable
_WEIGHTS = [1 / (rank + 8) for rank in range(len(SYLLABLES))]


def prose(rng: random.Random, words: int) -> str:
    """Free Vietnamese-like text of ``words`` syllables, with a capital and a full stop."""
    text = " ".join(rng.choices(SYLLABLES, _WEIGHTS, k=words))
    return text[0].upper() + text[1:] + "."


def sentence(rng: random.Random) -> str:
    """One sentence of the cell's administrative register: a set phrase or free text."""
    if rng.random() < 0.3:
        return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}."
    return prose(rng, rng.randrange(8, 22))


def name(rng: random.Random) -> str:
    return f"{rng.choice(HO)} {rng.choice(DEM)} {rng.choice(TEN)}"


def encode(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as replicators send it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _grow(doc: Doc, key: str, size: int, rng: random.Random, sep: str = " ") -> Doc:
    """Append sentences to ``doc[key]`` until the document's JSON reaches ``size`` bytes."""
    while len(encode(doc)) < size:
        doc[key] = (doc[key] + sep + sentence(rng)) if doc[key] else sentence(rng)
    return doc


def _uuid(rng: random.Random) -> str:
    """A uuid4-shaped id from the seeded RNG (reproducible, unlike uuid.uuid4)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def meeting(rng: random.Random, cell: str = CELL) -> Doc:
    """A meeting of about 1 KB (schemas/meeting.schema.json): when, where, and its agenda in Vietnamese."""
    day = datetime.date(2023, 1, 1) + datetime.timedelta(days=rng.randrange(1000))
    scheduled = f"{day.isoformat()}T{rng.choice(['07:30', '14:00', '19:30'])}:00+07:00"
    status = rng.choice(["held", "held", "held", "scheduled", "cancelled"])
    doc: Doc = {"_id": f"meeting:{cell}:{_uuid(rng)}", "type": "meeting", "cell": cell,
                "kind": rng.choice(["regular", "regular", "thematic", "extraordinary"]),
                "scheduled": scheduled, "place": rng.choice(PLACES), "status": status,
                "agenda": [AGENDA[0], rng.choice(TITLES).format(m=day.month, y=day.year)]}
    if status == "held":
        doc["held_at"] = scheduled
    target = MEETING_BYTES + rng.randrange(-100, 60)
    while len(encode(doc)) < target:
        doc["agenda"].append(sentence(rng))
    return doc


def article(index: int, rng: random.Random, pdf: bytes | None = None) -> Doc:
    """A handbook article of about 8 KB (schemas/article.schema.json), with a PDF when given one."""
    topic = rng.choice(TOPICS)
    doc: Doc = {"_id": f"article:so-tay-{index:04d}", "type": "article", "title": f"{topic} - bài {index + 1}",
                "category": rng.choice(["resolution", "directive", "charter", "study", "training", "news"]),
                "language": "vi", "audience": rng.choice([["TQ"], ["TQ.NH"], [CELL], ["TQ.NH", "TQ.LB"]]),
                "published_at": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T08:00:00+07:00",
                "summary": sentence(rng), "body": ""}
    while len(encode(doc)) < ARTICLE_BYTES + rng.randrange(-400, 400):
        paragraph = " ".join(sentence(rng) for _ in range(rng.randrange(3, 7)))
        doc["body"] = f"{doc['body']}\n\n{paragraph}" if doc["body"] else paragraph
    if pdf is not None:
        doc["_attachments"] = {"van-ban.pdf": {"content_type": "application/pdf",
                                               "data": base64.b64encode(pdf).decode()}}
    return doc


def pdf_bytes(index: int, seed: int = SEED) -> bytes:
    """A 100 KB "PDF": a header and seeded random bytes (compresses no better than a real one)."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    return head + random.Random(seed * 1000 + index).randbytes(PDF_BYTES - len(head))


def cell_dataset(quick: bool = False, seed: int = SEED) -> list[Doc]:
    """The whole data set, in a seeded shuffled order (``QUICK`` sizes when ``quick``).

    The PDFs are attached to evenly spaced articles (every tenth one).
    """
    meetings, articles, pdfs = QUICK if quick else FULL
    rng = random.Random(seed)
    every = articles // pdfs
    docs = [meeting(rng) for _ in range(meetings)]
    docs += [article(i, rng, pdf_bytes(i // every, seed) if i % every == 0 and i // every < pdfs else None)
             for i in range(articles)]
    rng.shuffle(docs)
    return docs


def push_meetings(count: int = 500, seed: int = SEED + 1) -> list[Doc]:
    """Meetings written at the kiosk, to push to the hub (other ids than the data set's)."""
    rng = random.Random(seed)
    return [meeting(rng) for _ in range(count)]


@dataclass
class Payload:
    """The physical size of a set of documents."""

    docs: int
    json_bytes: int  # compact JSON, attachments left out
    json_gzip_bytes: int  # the same, gzip-compressed as one stream
    attachment_bytes: int  # raw (binary) attachment bytes

    @property
    def gzip_total(self) -> int:
        """What must cross the link at the very least: compressed JSON plus raw attachments."""
        return self.json_gzip_bytes + self.attachment_bytes


def payload_bytes(docs: Iterable[Doc]) -> Payload:
    """JSON bodies (attachments stripped) gzip-compressed, plus attachment bytes."""
    stream, attachments, count = bytearray(), 0, 0
    for doc in docs:
        count += 1
        body = {k: v for k, v in doc.items() if k != "_attachments"}
        for att in (doc.get("_attachments") or {}).values():
            attachments += len(base64.b64decode(att["data"]))
        stream += encode(body) + b"\n"
    return Payload(count, len(stream), len(gzip.compress(bytes(stream), 6, mtime=0)), attachments)


def load(url: str, db: str, docs: list[Doc], *, auth: tuple[str, str] | None = None,
         create: bool = True, timeout: float = 300.0) -> int:
    """Create ``db`` on the server at ``url`` and write ``docs`` with _bulk_docs; returns the count written."""
    written = 0
    with httpx.Client(base_url=url, auth=auth, timeout=timeout, trust_env=False) as http:
        path = "/" + quote(db, safe="")
        if create:
            response = http.put(path)
            if response.status_code not in (201, 202, 412):
                raise RuntimeError(f"PUT {path}: {response.status_code} {response.text}")
        body: list[Doc] = []
        size = 0
        for doc in [*docs, None]:
            doc_size = len(encode(doc)) if doc is not None else 0
            if body and (doc is None or size + doc_size > LOAD_BODY_BYTES):
                response = http.post(path + "/_bulk_docs", json={"docs": body})
                rows = response.json() if response.status_code == 201 else None
                if rows is None or any("error" in row for row in rows):
                    raise RuntimeError(f"_bulk_docs into {db}: {response.status_code} {response.text[:500]}")
                written += len(rows)
                body, size = [], 0
            if doc is not None:
                body.append(doc)
                size += doc_size
    return written


def describe(docs: list[Doc]) -> str:
    kinds: dict[str, int] = {}
    for doc in docs:
        kinds[doc["type"]] = kinds.get(doc["type"], 0) + 1
    kinds["PDF"] = sum(len(doc.get("_attachments") or {}) for doc in docs)
    p = payload_bytes(docs)
    return (f"{p.docs} docs ({', '.join(f'{n} {k}s' for k, n in sorted(kinds.items()))}): JSON {p.json_bytes:,} B "
            f"(gzip {p.json_gzip_bytes:,} B), attachments {p.attachment_bytes:,} B, "
            f"physical payload {p.gzip_total:,} B")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Describe, or load into a server, the cell data set.")
    parser.add_argument("--quick", action="store_true", help="200 meetings, 20 articles, 2 PDFs")
    parser.add_argument("--validate", action="store_true", help="check every document against schemas/")
    parser.add_argument("--load", metavar="URL/DB", help="create this database URL and load the data set into it")
    args = parser.parse_args(argv)
    docs = cell_dataset(args.quick)
    print(describe(docs))
    if args.validate:
        from sync_server.handbook import validation

        for doc in [*docs, *push_meetings()]:
            validation.validate(doc)
        print("every document matches its schema")
    if args.load:
        root, _, db = args.load.rstrip("/").rpartition("/")
        parsed = httpx.URL(root)
        auth = (parsed.username, parsed.password) if parsed.username else None
        base = str(parsed.copy_with(username=None, password=None))
        print(f"loaded {load(base, db, docs, auth=auth)} documents into {db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
