"""A seeded generator of a realistic sample province (Tuyên Quang, before 2025).

    from sync_server.handbook.generate import generate, write_to_store
    province = generate("full", seed=1, months=["2026-10", "2026-11"], using_share=0.62)
    db = write_to_store(province, Server(data_dir))          # the province's merged records

What it makes (``schemas/MODEL.md`` documents; ``_id`` and fields as the model says):

* the hierarchy: the province ``TQ`` (Tuyên Quang); its districts Thành phố Tuyên Quang
  (``TQ.TP``), Lâm Bình (``TQ.LB``), Na Hang (``TQ.NH``), Chiêm Hóa (``TQ.CH``), Hàm Yên
  (``TQ.HY``), Yên Sơn (``TQ.YS``), Sơn Dương (``TQ.SD``); their communes, wards and
  towns (names of the period, illustrative); cells named after villages (``thôn``/
  ``bản``), residential groups (``tổ dân phố``) and institutions (school, health station,
  commune military and police);
* ``member`` documents with Vietnamese names (family, middle and given names, with
  diacritics), birth year, gender, joining date; besides the counted (``active``) members
  there are a few ``moved`` and ``inactive`` ones, some with a phone the kiosk revoked,
  which the report's counting rules must leave out;
* what members did, never a flag set: ``device`` records (phones paired, mostly in the year
  before the first month, some at a training day in a month reported; a few lost and
  revoked, a few replaced), first sign-ins (``registered_at``: a pairing, or the kiosk's
  shared screen for members without a phone), and the months each was active in
  (``active_months``, ``last_active``: checking in, reading). The ``installed`` and
  ``registered`` flags are then written as the kiosk writes them;
* per month asked: ``meeting`` documents (the regular monthly meeting, sometimes a
  thematic one), one ``attendance`` document per active member per held meeting (in the
  cells using the handbook, members with a live phone check in through the app:
  ``checked_in_at``; agendas and minutes link the article studied, ``article:<slug>``),
  ``minutes`` for most held meetings, ``feedback`` from members, and ``reading`` documents
  (reads per article, per cell and day);
* ``article`` documents (handbook content: resolution, directive, charter, study and
  training material, news), without signatures.

Sizes:

* ``small`` (for tests): 1 district (Na Hang), 2 communes, 4 cells, 100 active members
  (81 smartphone owners, 84 with a live paired phone: 84% of all and 104% of the target
  group; 90 registered);
* ``full``: 7 districts, 136 communes, 2,000 cells, exactly 57,597 active members, of
  whom 46,728 own a smartphone (the target group) and exactly 48,597 have a live paired
  phone at the end of the last month (45,500 smartphone owners and 3,097 members outside
  the target group): 48,597 / 57,597 = 84% and 48,597 / 46,728 = 104%; 50,100 registered
  (the installed, 420 who lost their phone, the rest at the kiosk's screen).

``using_share`` (default 0.62) fixes the share of cells that use the handbook in their
activities in each month (a held meeting with check-ins through the app, or naming an
article): exactly ``round(using_share * cells)`` cells do (a float for every month, or a
dict month -> share). The other cells record nothing that month, a meeting left
``scheduled`` or ``cancelled``, or a meeting held and recorded afterwards without the
app. Mountain districts and older members are less likely to own a smartphone or to use
the handbook, so rates differ between districts and age bands while the province totals
are exact.

``Province.expected`` holds the numbers the generator knows (members, smartphone,
installed, registered, cells, and per month cells_using, meetings_held, attendance
records and present, checked_in, minutes, feedback, active, reads), so a report can be
checked against them.

The same seed gives the same documents on every machine (``random.Random`` only).
"""

from __future__ import annotations

import heapq
import math
import random
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from schemas.hierarchy import Hierarchy, Unit, cell_db_name, format_csv, parse_hierarchy

from ..private_file import write_atomic

Doc = dict[str, Any]
TZ = "+07:00"
PROVINCE_CODE, PROVINCE_NAME = "TQ", "Tuyên Quang"
MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")

# District code, name, commune names (wards "P:", towns "TT:", communes plain), and two
# weights: how likely a member owns a smartphone / a cell uses the handbook (mountains lower).
DISTRICTS: list[tuple[str, str, list[str], float, float]] = [
    ("TP", "Thành phố Tuyên Quang", [
        "P:Phan Thiết", "P:Minh Xuân", "P:Tân Quang", "P:Tân Hà", "P:Hưng Thành", "P:Nông Tiến", "P:Ỷ La",
        "P:Đội Cấn", "P:Mỹ Lâm", "P:An Tường", "Lưỡng Vượng", "An Khang", "Thái Long"], 1.6, 1.5),
    ("LB", "Huyện Lâm Bình", [
        "Lăng Can", "Bình An", "Hồng Quang", "Khuôn Hà", "Phúc Yên", "Thổ Bình", "Thượng Lâm", "Xuân Lập"],
     0.55, 0.55),
    ("NH", "Huyện Na Hang", [
        "TT:Na Hang", "Khâu Tinh", "Côn Lôn", "Đà Vị", "Hồng Thái", "Năng Khả", "Sinh Long", "Sơn Phú",
        "Thanh Tương", "Thượng Giáp", "Thượng Nông", "Yên Hoa"], 0.6, 0.6),
    ("CH", "Huyện Chiêm Hóa", [
        "TT:Vĩnh Lộc", "Bình Phú", "Hòa An", "Hòa Phú", "Hùng Mỹ", "Kim Bình", "Kiên Đài", "Linh Phú",
        "Minh Quang", "Nhân Lý", "Ngọc Hội", "Phúc Thịnh", "Phú Bình", "Tân An", "Tân Mỹ", "Tân Thịnh",
        "Tri Phú", "Trung Hà", "Trung Hòa", "Xuân Quang", "Yên Lập", "Yên Nguyên", "Bình Nhân", "Hà Lang",
        "Hòa Quang", "Vinh Quang"], 0.85, 0.85),
    ("HY", "Huyện Hàm Yên", [
        "TT:Tân Yên", "Bạch Xa", "Bằng Cốc", "Bình Xa", "Đức Ninh", "Hùng Đức", "Minh Dân", "Minh Hương",
        "Minh Khương", "Nhân Mục", "Phù Lưu", "Tân Thành", "Thái Hòa", "Thái Sơn", "Thành Long", "Yên Lâm",
        "Yên Phú", "Yên Thuận"], 0.95, 1.0),
    ("YS", "Huyện Yên Sơn", [
        "TT:Yên Sơn", "Chân Sơn", "Chiêu Yên", "Công Đa", "Đạo Viện", "Hoàng Khai", "Hùng Lợi", "Kiến Thiết",
        "Kim Quan", "Lang Quán", "Lực Hành", "Mỹ Bằng", "Nhữ Hán", "Nhữ Khê", "Phú Thịnh", "Phúc Ninh",
        "Quý Quân", "Tân Long", "Tân Tiến", "Thái Bình", "Tiến Bộ", "Trung Minh", "Trung Môn", "Trung Sơn",
        "Trung Trực", "Tứ Quận", "Xuân Vân", "Đội Bình"], 1.1, 1.1),
    ("SD", "Huyện Sơn Dương", [
        "TT:Sơn Dương", "Bình Yên", "Cấp Tiến", "Chi Thiết", "Đại Phú", "Đông Lợi", "Đông Thọ", "Hào Phú",
        "Hồng Lạc", "Hợp Hòa", "Hợp Thành", "Kháng Nhật", "Lương Thiện", "Minh Thanh", "Ninh Lai", "Phúc Ứng",
        "Phú Lương", "Quyết Thắng", "Sơn Nam", "Tân Thanh", "Tân Trào", "Thiện Kế", "Thượng Ấm", "Tú Thịnh",
        "Tuân Lộ", "Trung Yên", "Văn Phú", "Vĩnh Lợi", "Sầm Dương", "Lâm Xuyên", "Đồng Quý"], 1.05, 1.05),
]
PREFIX = {"P": "Phường", "TT": "Thị trấn"}

FAMILY = (["Nguyễn"] * 6 + ["Hoàng"] * 3 + ["Ma"] * 3 + ["Trần", "Lê", "Phạm", "Vũ", "Đỗ", "Bùi", "Hà", "Hà",
          "Nông", "Nông", "Lý", "Triệu", "Bàn", "Đặng", "Quan", "Lâm", "Sầm", "Mạc", "Chẩu", "La", "Lục", "Âu",
          "Giàng", "Vương", "Đào", "Phan"])
MIDDLE = {"male": ["Văn", "Văn", "Văn", "Đức", "Hữu", "Quang", "Xuân", "Minh", "Thế", "Công", "Đình", "Ngọc"],
          "female": ["Thị", "Thị", "Thị", "Thu", "Ngọc", "Thanh", "Hồng", "Kim", "Thúy", "Minh"]}
GIVEN = {"male": ["Anh", "Bình", "Cường", "Dũng", "Đạt", "Giang", "Hải", "Hiếu", "Hoàng", "Hùng", "Huy", "Khánh",
                  "Long", "Mạnh", "Nam", "Phong", "Quân", "Sơn", "Thắng", "Thành", "Tiến", "Toàn", "Trung", "Tuấn",
                  "Tùng", "Việt", "Vinh", "Lợi", "Chiến", "Thái", "Phúc", "Tài", "Đông", "Khải", "Lượng"],
         "female": ["Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hồng", "Huệ", "Hương", "Lan",
                    "Liên", "Linh", "Loan", "Mai", "Nga", "Ngọc", "Nhung", "Oanh", "Phương", "Quyên", "Thảo",
                    "Thơ", "Thủy", "Trang", "Tuyết", "Vân", "Yến", "Xuân", "Lụa", "Đào"]}
VILLAGE_A = ["Nà", "Bản", "Khuổi", "Pác", "Phiêng", "Nặm", "Bó", "Cốc", "Lũng", "Khau", "Thẳm", "Nậm", "Pắc",
             "Tát", "Pù", "Nà", "Bản"]
VILLAGE_B = ["Héc", "Lằn", "Khoang", "Mạ", "Tầm", "Nưa", "Vài", "Coóc", "Thiêng", "Mỏ", "Lừa", "Luông", "Đon",
             "Chang", "Quân", "Hu", "Pài", "Tông", "Phày", "Bung", "Ngòa", "Xả", "Kẹp", "Khét", "Khậu", "Ten"]
VILLAGE_KINH = ["Đồng Tâm", "Tân Lập", "Tân Tiến", "Đồng Bầu", "Hòa Bình", "Trung Tâm", "Đoàn Kết", "Thống Nhất",
                "Cầu Xi", "An Lạc", "Làng Mới", "Đồng Xe", "Gia Khâu", "Tân Thành", "Đồng Mán", "Cây Quýt"]
INSTITUTIONS = ["Chi bộ Trường Tiểu học", "Chi bộ Trường THCS", "Chi bộ Trạm Y tế", "Chi bộ Quân sự",
                "Chi bộ Công an", "Chi bộ Trường Mầm non"]
AGENDA = ["Thông qua biên bản kỳ sinh hoạt trước", "Đánh giá kết quả thực hiện nhiệm vụ tháng",
          "Phương hướng nhiệm vụ tháng tới", "Thu đảng phí", "Ý kiến của đảng viên",
          "Học tập nghị quyết, chỉ thị mới qua Sổ tay đảng viên", "Công tác phát triển đảng viên",
          "Hướng dẫn sử dụng Sổ tay đảng viên điện tử"]
THEMES = ["Học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh", "Chuyển đổi số trong sinh hoạt chi bộ",
          "Xây dựng nông thôn mới", "Bảo vệ rừng và phát triển kinh tế đồi rừng", "Phòng chống thiên tai mùa mưa lũ"]
DECISIONS = ["Hoàn thành thu đảng phí đúng hạn", "Phân công đảng viên giúp đỡ hộ nghèo",
             "Tổ chức hướng dẫn cài đặt Sổ tay cho đảng viên cao tuổi", "Vận động nhân dân tham gia làm đường bê tông",
             "Giới thiệu quần chúng ưu tú để bồi dưỡng kết nạp Đảng", "Duy trì sinh hoạt tại nhà văn hóa thôn"]
FEEDBACK = [("software", "Chữ trong ứng dụng nhỏ quá, đảng viên cao tuổi khó đọc."),
            ("software", "Nhà văn hóa thôn chưa có Internet ổn định, đồng bộ rất chậm."),
            ("software", "Ứng dụng dễ dùng, xem nghị quyết ngay trên điện thoại rất tiện."),
            ("software", "Đề nghị đơn giản hóa bước đăng nhập."),
            ("content", "Đề nghị tóm tắt nghị quyết ngắn gọn hơn để dễ nắm bắt."),
            ("content", "Cần thêm tài liệu sinh hoạt chuyên đề bằng tiếng dân tộc."),
            ("training", "Đề nghị có video hướng dẫn sử dụng cho chi bộ vùng cao."),
            ("training", "Cần tập huấn thêm cho bí thư chi bộ về nhập biên bản."),
            ("other", "Đề nghị hỗ trợ kết nối Internet tại nhà văn hóa thôn.")]
ARTICLES = [("nghi-quyet-dai-hoi-tinh-xvii", "resolution",
             "Nghị quyết Đại hội đại biểu Đảng bộ tỉnh Tuyên Quang lần thứ XVII"),
            ("chi-thi-05-ct-tw", "directive",
             "Chỉ thị 05-CT/TW về đẩy mạnh học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh"),
            ("dieu-le-dang", "charter", "Điều lệ Đảng Cộng sản Việt Nam"),
            ("huong-dan-su-dung-so-tay", "training", "Hướng dẫn sử dụng Sổ tay đảng viên điện tử"),
            ("huong-dan-dong-bo-nha-van-hoa", "training", "Hướng dẫn đồng bộ dữ liệu tại nhà văn hóa thôn"),
            ("tai-lieu-sinh-hoat-chuyen-de", "study", "Tài liệu sinh hoạt chuyên đề: chuyển đổi số ở cơ sở"),
            ("nghi-quyet-nong-thon-moi", "resolution", "Nghị quyết về xây dựng nông thôn mới giai đoạn 2026-2030"),
            ("ban-tin-so-tay-dang-vien", "news", "Bản tin Sổ tay đảng viên: 84% đảng viên đã cài đặt ứng dụng")]


@dataclass(frozen=True)
class Spec:
    """Sizes of a generated province. Counts are of ``active`` members."""

    districts: tuple[str, ...]          # district codes taken from DISTRICTS, in that order
    communes: int | None                # communes per district (None: all of the district's)
    cells: int                          # cells in the province (at least 1 per commune)
    members: int
    smartphone: int                     # the target group
    installed: int
    installed_in_target: int            # installed members who own a smartphone
    registered: int                     # signed in at least once: every installed member (pairing is a
    #                                     sign-in), those who lost their phone, and some at the kiosk's screen
    lost: int = 0                       # smartphone owners whose only phone was revoked (not installed)
    moved: int = 0                      # extra members with status moved (not counted)
    inactive: int = 0                   # extra members with status inactive (not counted)


SIZES: dict[str, Spec] = {
    "small": Spec(("NH",), 2, 4, 100, 81, 84, 79, 90, lost=1, moved=2, inactive=1),
    "full": Spec(tuple(d[0] for d in DISTRICTS), None, 2000, 57_597, 46_728, 48_597, 45_500, 50_100,
                 lost=420, moved=412, inactive=187),
}


@dataclass
class Province:
    """A generated province: hierarchy, each cell's records, and the handbook's articles."""

    size: str
    seed: int
    months: list[str]
    hierarchy_csv: str
    units: list[Doc]                    # the unit documents, province first
    cell_docs: dict[str, list[Doc]]     # cell code -> that cell's database content
    articles: list[Doc]
    expected: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def hierarchy(self) -> Hierarchy:
        """The hierarchy, parsed from ``hierarchy_csv``."""
        return parse_hierarchy(self.hierarchy_csv, f"<generated {self.size} province>")

    def docs(self) -> Iterator[Doc]:
        """Every cell's documents, cell after cell."""
        for docs in self.cell_docs.values():
            yield from docs

    def doc_count(self) -> int:
        """How many cell documents there are."""
        return sum(len(docs) for docs in self.cell_docs.values())

    def write_hierarchy(self, path: str | Path) -> Path:
        """Write the hierarchy file (UTF-8 CSV, see ``schemas.hierarchy``); returns the path."""
        return write_atomic(path, self.hierarchy_csv)


def generate(size: str = "small", seed: int = 1, months: list[str] | tuple[str, ...] = ("2026-11",),
             using_share: float | dict[str, float] = 0.62) -> Province:
    """Generate a province of ``size`` (``small`` or ``full``) with records for ``months`` (``YYYY-MM``).

    :param using_share: share of cells holding at least one meeting in the software each
        month (a float, or month -> float); exactly ``round(share * cells)`` cells do.
    """
    spec = SIZES.get(size)
    if spec is None:
        raise ValueError(f"unknown size {size!r}: one of {', '.join(SIZES)}")
    months = [_check_month(m) for m in months]
    shares = using_share if isinstance(using_share, dict) else {m: using_share for m in months}
    for month in months:
        share = shares.get(month)
        if share is None or not 0.0 <= share <= 1.0:
            raise ValueError(f"using_share for {month} must be between 0 and 1, got {share!r}")
    rng = random.Random(seed)
    units, weights = _hierarchy(rng, spec)
    cells = [u for u in units if u.level == "cell"]
    gen = _Generator(rng, spec, units, cells, weights, months)
    gen.members()
    for month in sorted(months):
        gen.month(month, shares[month])
    gen.finish()
    province = Province(size, seed, months, format_csv(units, comment=_csv_comment(size, seed)),
                        [u.to_doc() for u in units], gen.cell_docs, _articles(rng, units, months), gen.expected)
    return province


def write_hierarchy(path: str | Path, size: str = "full", seed: int = 1, province: Province | None = None) -> Path:
    """Write a province's hierarchy file; without ``province``, only the hierarchy of ``size`` is generated."""
    if province is not None:
        return province.write_hierarchy(path)
    spec = SIZES[size]
    units, _ = _hierarchy(random.Random(seed), spec)
    return write_atomic(path, format_csv(units, comment=_csv_comment(size, seed)))


def write_to_store(province: Province, server: Any, merged_db: str = "province", *, cell_dbs: bool = False,
                   handbook_db: str | None = None, batch: int = 5000) -> Any:
    """Write the province into a ``sync_server.store.Server``; returns the merged database.

    The merged database (created if missing) gets the unit documents and every cell's
    records, as the province's nightly merge leaves them. With ``cell_dbs`` each cell's
    records also go to its own database (``cell_db_name``); with ``handbook_db`` the
    unit documents and the articles go there.
    """
    merged = server.get(merged_db) if server.exists(merged_db) else server.create(merged_db)
    _write_batches(merged, province.units, batch)
    _write_batches(merged, province.docs(), batch)  # batches span cells: few, large transactions
    if cell_dbs:
        for code, docs in province.cell_docs.items():
            name = cell_db_name(code)
            _write_batches(server.get(name) if server.exists(name) else server.create(name), docs, batch)
    if handbook_db:
        handbook = server.get(handbook_db) if server.exists(handbook_db) else server.create(handbook_db)
        _write_batches(handbook, province.units + province.articles, batch)
    return merged


def _write_batches(db: Any, docs: Iterable[Doc], batch: int) -> None:
    """Write ``docs`` with ``bulk_docs`` in batches of ``batch`` (copies: the store may add fields)."""
    chunk: list[Doc] = []
    for doc in docs:
        chunk.append(dict(doc))
        if len(chunk) >= batch:
            _write_chunk(db, chunk)
            chunk = []
    if chunk:
        _write_chunk(db, chunk)


def _write_chunk(db: Any, chunk: list[Doc]) -> None:
    failed = [r for r in db.bulk_docs(chunk) if "error" in r]
    if failed:
        raise RuntimeError(f"writing to {db.name} failed for {len(failed)} documents, e.g. {failed[0]}")


# -- hierarchy -------------------------------------------------------------------------

def _check_month(month: str) -> str:
    if not isinstance(month, str) or not MONTH_RE.fullmatch(month):
        raise ValueError(f"a month is YYYY-MM, got {month!r}")
    return month


def _csv_comment(size: str, seed: int) -> str:
    return (f"Tuyên Quang (before 2025): a generated sample province, size {size}, seed {seed}.\n"
            "code,name,level,parent: see schemas/hierarchy.py")


def ascii_fold(text: str) -> str:
    """Vietnamese text without diacritics (``Đ`` -> ``D``)."""
    text = text.replace("Đ", "D").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _part(name: str, taken: set[str]) -> str:
    """A unique code part from a name's initials (``Khâu Tinh`` -> ``KT``, then ``KT2``...)."""
    words = ascii_fold(name).upper().split()
    base = "".join(w[0] for w in words)[:10] or "X"
    if base in taken:
        longer = (words[0][:2] + "".join(w[0] for w in words[1:]))[:10]
        base = longer if longer not in taken else base
    part, n = base, 2
    while part in taken:
        part, n = f"{base}{n}", n + 1
    taken.add(part)
    return part


def _apportion(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split ``total`` into integers proportional to ``weights``, each at least ``minimum``."""
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError(f"cannot give {len(weights)} parts at least {minimum} out of {total}")
    wsum = sum(weights)
    exact = [spare * w / wsum for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (exact[i] - parts[i], -i), reverse=True)
    for i in order[:spare - sum(parts)]:
        parts[i] += 1
    return [p + minimum for p in parts]


def _hierarchy(rng: random.Random, spec: Spec) -> tuple[list[Unit], dict[str, tuple[float, float]]]:
    """Units (province, then each district with its communes and cells) and each cell's
    (smartphone weight, usage weight)."""
    units = [Unit(PROVINCE_CODE, PROVINCE_NAME, "province", None)]
    communes: list[tuple[Unit, bool, tuple[float, float]]] = []  # commune, is urban, district weights
    district_units: list[tuple[Unit, list[tuple[Unit, bool]]]] = []
    for code, name, commune_names, phone_w, use_w in DISTRICTS:
        if code not in spec.districts:
            continue
        district = Unit(f"{PROVINCE_CODE}.{code}", name, "district", PROVINCE_CODE)
        taken: set[str] = set()
        mine = []
        chosen = commune_names if spec.communes is None else commune_names[:spec.communes]
        for raw in chosen:
            kind, _, cname = raw.rpartition(":")
            full_name = f"{PREFIX.get(kind, 'Xã')} {cname}"
            commune = Unit(f"{district.code}.{_part(cname, taken)}", full_name, "commune", district.code)
            mine.append((commune, bool(kind)))
            communes.append((commune, bool(kind), (phone_w, use_w)))
        district_units.append((district, mine))
    sizes = _apportion(spec.cells, [rng.uniform(0.6, 1.6) for _ in communes], 1)
    cell_count = dict(zip((c.code for c, _, _ in communes), sizes))
    weights: dict[str, tuple[float, float]] = {}
    for district, mine in district_units:
        units.append(district)
        for commune, urban in mine:
            units.append(commune)
            for cell in _cells(rng, commune, urban, cell_count[commune.code]):
                units.append(cell)
                dist_w = next(w for c, _, w in communes if c.code == commune.code)
                weights[cell.code] = (dist_w[0] * (1.25 if urban else 1.0), dist_w[1] * (1.2 if urban else 1.0))
    return units, weights


def _cells(rng: random.Random, commune: Unit, urban: bool, count: int) -> list[Unit]:
    institutions = min(len(INSTITUTIONS), max(0, (count - 4) // 3))
    names: list[str] = []
    seen: set[str] = set()
    villages = count - institutions
    for n in range(1, villages + 1):
        if urban:
            name = f"Chi bộ tổ dân phố {n}"
        else:
            for _ in range(50):
                if rng.random() < 0.65:
                    village = f"{rng.choice(VILLAGE_A)} {rng.choice(VILLAGE_B)}"
                    kind = "bản" if rng.random() < 0.3 else "thôn"
                else:
                    village, kind = rng.choice(VILLAGE_KINH), "thôn"
                if village not in seen:
                    break
            else:
                village, kind = f"{n}", "thôn"
            seen.add(village)
            name = f"Chi bộ {kind} {village}"
        names.append(name)
    names += INSTITUTIONS[:institutions]
    return [Unit(f"{commune.code}.C{i:02d}", name, "cell", commune.code) for i, name in enumerate(names, start=1)]


# -- records ---------------------------------------------------------------------------

def _pick(rng: random.Random, candidates: list[int], weights: list[float], k: int) -> set[int]:
    """Exactly ``k`` of ``candidates``, drawn without replacement with the given weights."""
    if k > len(candidates):
        raise ValueError(f"cannot pick {k} of {len(candidates)}")
    keyed = ((rng.random() ** (1.0 / w), c) for c, w in zip(candidates, weights))
    return {c for _, c in heapq.nlargest(k, keyed)}


def _uid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _time(month: str, day: int, hour: int, minute: int = 0) -> str:
    return f"{month}-{day:02d}T{hour:02d}:{minute:02d}:00{TZ}"


def _days_in(month: str) -> int:
    year, mon = int(month[:4]), int(month[5:])
    nxt = (year + mon // 12, mon % 12 + 1)
    import datetime

    return (datetime.date(nxt[0], nxt[1], 1) - datetime.date(year, mon, 1)).days


def _shift(month: str, by: int) -> str:
    """The month ``by`` months after ``month`` (before, when negative)."""
    index = int(month[:4]) * 12 + int(month[5:]) - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass
class _Person:
    """What one active member did, from which their records are written."""

    doc: Doc
    devices: list[Doc] = field(default_factory=list)
    active: set[str] = field(default_factory=set)   # months they used the handbook in
    last_day: dict[str, str] = field(default_factory=dict)  # month -> the time of their latest activity in it

    def live_in(self, month: str) -> bool:
        """A phone paired by the start of ``month``'s meetings and not revoked by then."""
        return any(d["paired_at"][:7] <= month and (not d["revoked"] or d["revoked_at"][:7] > month)
                   for d in self.devices)


class _Generator:
    """Members first (exact counts), what they did with the handbook, then each month's meetings,
    attendance (with check-ins through the app), minutes, feedback and reading.

    Nothing is set as a flag: a member is installed because a ``device`` record was paired
    and not revoked, registered because they signed in (``registered_at``, or a pairing),
    active in a month because they did something then (``active_months``, ``last_active``);
    the ``installed``/``registered`` flags are then written as the kiosk would
    (``sync_server/handbook/usage.py``)."""

    def __init__(self, rng: random.Random, spec: Spec, units: list[Unit], cells: list[Unit],
                 weights: dict[str, tuple[float, float]], months: list[str]) -> None:
        self.rng, self.spec, self.cells, self.weights = rng, spec, cells, weights
        self.months = sorted(months)
        self.names = {u.code: u.name for u in units}
        self.cell_docs: dict[str, list[Doc]] = {c.code: [] for c in cells}
        self.people: dict[str, list[_Person]] = {}    # cell -> its active members
        self.expected: dict[str, Any] = {"cells": len(cells), "members": spec.members,
                                         "smartphone": spec.smartphone, "installed": spec.installed,
                                         "registered": spec.registered}
        for key in ("cells_using", "meetings_held", "attendance_records", "attendance_present",
                    "minutes_recorded", "feedback_received", "reads", "active", "checked_in"):
            self.expected[key] = {}

    def members(self) -> None:
        rng, spec = self.rng, self.spec
        sizes = _apportion(spec.members, [rng.lognormvariate(0, 0.45) for _ in self.cells], 3)
        first_month = self.months[0] if self.months else "2026-01"
        last_month = self.months[-1] if self.months else first_month
        year = int(first_month[:4])
        # One row per active member: (cell index, born, gender).
        people: list[tuple[int, int, str]] = []
        for index, size in enumerate(sizes):
            for _ in range(size):
                age = min(90, max(20, int(rng.triangular(20, 88, 42))))
                people.append((index, year - age, "female" if rng.random() < 0.32 else "male"))
        all_ids = list(range(len(people)))
        phone_w = [self.weights[self.cells[c].code][0] * _age_factor(year - born) for c, born, _ in people]
        smartphone = _pick(rng, all_ids, phone_w, spec.smartphone)
        owners = [i for i in all_ids if i in smartphone]
        others = [i for i in all_ids if i not in smartphone]
        installed = _pick(rng, owners, [phone_w[i] for i in owners], spec.installed_in_target)
        installed |= _pick(rng, others, [phone_w[i] for i in others], spec.installed - spec.installed_in_target)
        # Lost phones: members who paired one, had it revoked and never paired another (registered, not installed).
        lost_pool = [i for i in owners if i not in installed]
        lost = _pick(rng, lost_pool, [1.0] * len(lost_pool), spec.lost)
        # Members who signed in only at the kiosk's shared screen (no phone of their own): older ones more.
        rest = [i for i in all_ids if i not in installed and i not in lost]
        kiosk_only = _pick(rng, rest, [2.0 if year - people[i][1] >= 55 else 1.0 for i in rest],
                           spec.registered - spec.installed - spec.lost)
        extra = ["moved"] * spec.moved + ["inactive"] * spec.inactive
        extra_cells = [rng.randrange(len(self.cells)) for _ in extra]
        counters = [0] * len(self.cells)
        for i, (c, born, gender) in enumerate(people):
            person = _Person(self._member(c, counters, born, gender, "active", i in smartphone, first_month))
            code = self.cells[c].code
            if i in installed:
                if rng.random() < 0.04:  # an earlier phone, replaced: revoked when the new one was paired
                    old = self._pairing_time(first_month, last_month, early=True)
                    new = self._pairing_time(first_month, last_month)
                    old, new = min(old, new), max(old, new)
                    person.devices.append(self._device(code, person.doc, old, revoked=new))
                    person.devices.append(self._device(code, person.doc, new))
                else:
                    person.devices.append(self._device(code, person.doc, self._pairing_time(first_month, last_month)))
            elif i in lost:
                paired = self._pairing_time(first_month, last_month, early=True)
                person.devices.append(self._device(code, person.doc, paired,
                                                   revoked=self._later(paired, last_month)))
            if person.devices:
                person.doc["registered_at"] = min(d["paired_at"] for d in person.devices)
            elif i in kiosk_only:
                person.doc["registered_at"] = self._pairing_time(first_month, last_month)
            self.people.setdefault(code, []).append(person)
        for status, c in zip(extra, extra_cells):
            born = year - int(rng.triangular(22, 88, 50))
            phone = rng.random() < 0.5
            doc = self._member(c, counters, born, "female" if rng.random() < 0.3 else "male", status, phone,
                               first_month)
            if phone and rng.random() < 0.6:  # paired before they moved; the kiosk stopped their phone since
                paired = self._pairing_time(first_month, first_month, early=True)
                self._device(self.cells[c].code, doc, paired, revoked=self._later(paired, first_month))
                doc["registered_at"] = paired

    def _member(self, c: int, counters: list[int], born: int, gender: str, status: str, smartphone: bool,
                month: str) -> Doc:
        rng = self.rng
        cell = self.cells[c].code
        counters[c] += 1
        number = f"{counters[c]:03d}"
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE[gender])} {rng.choice(GIVEN[gender])}"
        joined_year = min(int(month[:4]) - 1, born + 18 + int(rng.expovariate(1 / 12)))
        doc: Doc = {"_id": f"member:{cell}:{number}", "type": "member", "cell": cell, "member_no": number,
                    "name": name, "born": born, "gender": gender,
                    "joined": f"{joined_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "status": status, "smartphone": smartphone, "installed": False, "registered": False,
                    "last_active": None}
        self.cell_docs[cell].append(doc)
        return doc

    def _pairing_time(self, first: str, last: str, early: bool = False) -> str:
        """When a phone was paired (or a member first signed in): mostly in the year before the first
        month; some during the months reported, at the start of a month (a training day at the kiosk)."""
        rng = self.rng
        if early or rng.random() < 0.88:
            return _time(_shift(first, -rng.randint(1, 12)), rng.randint(1, 28), rng.randint(7, 20), rng.randint(0, 59))
        months = [m for m in self.months if first <= m <= last] or [first]
        return _time(rng.choice(months), rng.randint(1, 2), rng.randint(7, 11), rng.randint(0, 59))

    def _later(self, after: str, last: str) -> str:
        """A time after ``after`` and before ``last`` ends."""
        month = after[:7]
        while month < last and self.rng.random() < 0.6:
            month = _shift(month, 1)
        days = _days_in(month)
        if month != after[:7]:
            return _time(month, self.rng.randint(1, days), self.rng.randint(7, 20))
        day = self.rng.randint(min(int(after[8:10]) + 1, days), days)
        return _time(month, day, 21, 30) if day == int(after[8:10]) else _time(month, day, self.rng.randint(7, 20))

    def _device(self, cell: str, member: Doc, paired: str, revoked: str | None = None) -> Doc:
        device: Doc = {"_id": f"device:{cell}:{_uid(self.rng)}", "type": "device", "cell": cell,
                       "member": member["_id"], "paired_at": paired,
                       "label": f"Điện thoại của {member['name'].split()[-1]}", "revoked": revoked is not None}
        if revoked is not None:
            device["revoked_at"] = revoked
        self.cell_docs[cell].append(device)
        return device

    def _activity(self, person: _Person, moment: str) -> None:
        month = moment[:7]
        person.active.add(month)
        if moment > person.last_day.get(month, ""):
            person.last_day[month] = moment

    def month(self, month: str, share: float) -> None:
        rng, exp = self.rng, self.expected
        n_using = round(share * len(self.cells))
        codes = [c.code for c in self.cells]
        using = _pick(rng, list(range(len(codes))), [self.weights[c][1] for c in codes], n_using)
        days = _days_in(month)
        totals = dict.fromkeys(("meetings_held", "attendance_records", "attendance_present",
                                "minutes_recorded", "feedback_received", "reads", "checked_in"), 0)
        for index, code in enumerate(codes):
            docs = self.cell_docs[code]
            people = self.people.get(code, [])
            place = (f"Nhà văn hóa {self.names[code][len('Chi bộ '):]}" if "thôn" in self.names[code]
                     or "bản" in self.names[code] or "tổ dân phố" in self.names[code]
                     else "Hội trường Ủy ban nhân dân")
            meetings: list[tuple[str, str, bool]] = []  # (kind, status, held with the handbook)
            if index in using:
                meetings.append(("regular", "held", True))
                if rng.random() < 0.25:
                    meetings.append(("thematic", "held" if rng.random() < 0.7 else "scheduled", True))
            else:
                roll = rng.random()
                if roll < 0.2:  # held, recorded afterwards by the secretary: no check-in, no article named
                    meetings.append(("regular", "held", False))
                elif roll < 0.45:
                    meetings.append(("regular", "scheduled", False))
                elif roll < 0.55:
                    meetings.append(("regular", "cancelled", False))
            for kind, status, with_app in meetings:
                day = rng.randint(3, min(days, 10)) if kind == "regular" else rng.randint(3, 28)
                hour = rng.choice((8, 14, 19))
                meeting_id = f"meeting:{code}:{_uid(rng)}"
                agenda = rng.sample(AGENDA, 3)
                if kind == "thematic":
                    agenda = [f"Sinh hoạt chuyên đề: {rng.choice(THEMES)}"] + agenda[:1]
                linked = with_app and rng.random() < 0.5
                if linked:  # the secretary linked the article the cell studies
                    slug, _, title = rng.choice(ARTICLES)
                    agenda.append(f"Học tập: {title} (article:{slug})")
                meeting: Doc = {"_id": meeting_id, "type": "meeting", "cell": code, "kind": kind,
                                "scheduled": _time(month, day, hour, 30 if hour == 19 else 0), "place": place,
                                "agenda": agenda, "status": status}
                docs.append(meeting)
                if status != "held":
                    continue
                meeting["held_at"] = _time(month, day, hour, 35 if hour == 19 else 5)
                totals["meetings_held"] += 1
                presence = rng.uniform(0.72, 0.98)
                present = checked = 0
                check_in = _time(month, day, hour, 25 if hour == 19 else 0)
                attendance: list[Doc] = []
                for person in people:
                    member = person.doc
                    roll = rng.random()
                    state = "present" if roll < presence else ("excused" if roll < presence + 0.6 * (1 - presence)
                                                                 else "absent")
                    att: Doc = {"_id": f"attendance:{meeting_id}:{member['member_no']}", "type": "attendance",
                                "cell": code, "meeting": meeting_id, "member": member["_id"], "status": state}
                    if state == "present":
                        present += 1
                        # with the handbook, members with a phone check in themselves; the secretary marks the rest
                        if with_app and person.live_in(month) and rng.random() < 0.9:
                            att["checked_in_at"] = check_in
                            checked += 1
                            self._activity(person, check_in)
                    attendance.append(att)
                if with_app and not checked and not linked:  # nobody could check in: the minutes name the article
                    linked = True
                docs += attendance
                totals["attendance_records"] += len(people)
                totals["attendance_present"] += present
                totals["checked_in"] += checked
                if (rng.random() < 0.85 or linked and not any("article:" in a for a in agenda)) and people:
                    secretary = people[0].doc["_id"]
                    text = (f"{self.names[code]} tổ chức sinh hoạt {'chuyên đề' if kind == 'thematic' else 'định kỳ'} "
                            f"tháng {int(month[5:])}/{month[:4]}. Có mặt {present}/{len(people)} đảng viên.")
                    if with_app:
                        slug, _, title = rng.choice(ARTICLES)
                        text += f" Chi bộ đã quán triệt {title} trên Sổ tay đảng viên (article:{slug})."
                    docs.append({"_id": f"minutes:{meeting_id}", "type": "minutes", "cell": code,
                                 "meeting": meeting_id, "secretary": secretary, "text": text,
                                 "decisions": rng.sample(DECISIONS, 2),
                                 "written_at": _time(month, min(days, day + 1), 9)})
                    totals["minutes_recorded"] += 1
            totals["reads"] += self._reading(code, month, days, index in using)
            with_phone = [p.doc["_id"] for p in people if p.devices]
            for _ in range(_small_count(rng, 0.6 if with_phone else 0.0)):
                about, text = rng.choice(FEEDBACK)
                fb: Doc = {"_id": f"feedback:{code}:{_uid(rng)}", "type": "feedback", "cell": code, "about": about,
                           "text": text, "created_at": _time(month, rng.randint(1, days), rng.randint(6, 21),
                                                             rng.randint(0, 59)),
                           "member": rng.choice(with_phone), "rating": rng.randint(2, 5)}
                if about == "content":
                    fb["article"] = f"article:{rng.choice(ARTICLES)[0]}"
                docs.append(fb)
                totals["feedback_received"] += 1
        exp["cells_using"][month] = n_using
        for key, value in totals.items():
            exp[key][month] = value

    def _reading(self, code: str, month: str, days: int, using: bool) -> int:
        """Members who use the handbook this month read articles on their phones or at the kiosk; the kiosk
        counts the reads per cell and day (``reading`` documents: no person named). Returns the reads."""
        rng = self.rng
        per_day: dict[int, dict[str, int]] = {}
        # reads gather on a few days (before a meeting, a training day at the kiosk): few documents a month
        reading_days = rng.sample(range(1, days + 1), 4)
        for person in self.people.get(code, []):
            phone = person.live_in(month)
            if not (phone or "registered_at" in person.doc):
                continue
            chance = (0.35 if phone else 0.15) * _use_factor(int(month[:4]) - person.doc["born"]) \
                * (1.2 if using else 0.6)
            if month not in person.active and rng.random() >= chance:
                continue
            for _ in range(1 + _small_count(rng, 0.8)):
                day = rng.choice(reading_days)
                slug = rng.choices(ARTICLES, weights=READ_WEIGHTS)[0][0]
                counts = per_day.setdefault(day, {})
                counts[f"article:{slug}"] = counts.get(f"article:{slug}", 0) + 1
                self._activity(person, _time(month, day, rng.randint(6, 21), rng.randint(0, 59)))
        for day, counts in sorted(per_day.items()):
            date = f"{month}-{day:02d}"
            self.cell_docs[code].append({"_id": f"reading:{code}:{date}:kiosk", "type": "reading", "cell": code,
                                         "date": date, "counts": dict(sorted(counts.items()))})
        return sum(sum(c.values()) for c in per_day.values())

    def finish(self) -> None:
        """Write what the members did into their records, as the kiosk would have."""
        last = self.months[-1] if self.months else None
        for people in self.people.values():
            for person in people:
                doc = person.doc
                doc["installed"] = last is not None and any(not d["revoked"] for d in person.devices)
                doc["registered"] = "registered_at" in doc
                if person.active:
                    latest = max(person.active)
                    doc["active_months"] = sorted(person.active)
                    doc["last_active"] = person.last_day[latest]
        for month in self.months:
            self.expected["active"][month] = sum(month in p.active for people in self.people.values()
                                                 for p in people)
        for cell in self.cell_docs.values():  # the moved and inactive members' records, too
            for doc in cell:
                if doc["type"] == "member" and doc["status"] != "active":
                    doc["registered"] = "registered_at" in doc


READ_WEIGHTS = [5, 3, 2, 3, 1, 2, 3, 1]  # how often each of ARTICLES is read


def _use_factor(age: int) -> float:
    """How much more likely than average a member of this age uses the handbook in a month."""
    return 1.1 if age < 35 else 1.0 if age < 50 else 0.75 if age < 65 else 0.45


def _age_factor(age: int) -> float:
    """How much more likely than average a member of this age owns a smartphone."""
    return 1.3 if age < 40 else 1.1 if age < 55 else 0.75 if age < 70 else 0.35


def _small_count(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth's method; means are small)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _articles(rng: random.Random, units: list[Unit], months: list[str]) -> list[Doc]:
    province = units[0].code
    districts = [u.code for u in units if u.level == "district"]
    first = min(months) if months else "2026-01"
    year, mon = int(first[:4]), int(first[5:])
    before = f"{year - (mon == 1):04d}-{(mon - 2) % 12 + 1:02d}"
    docs = []
    for i, (slug, category, title) in enumerate(ARTICLES):
        audience = [province] if i % 4 != 3 or not districts else rng.sample(districts, min(2, len(districts)))
        body = (f"{title}.\n\n" + ". ".join(rng.sample(AGENDA + DECISIONS + THEMES, 8)) + ".\n\n"
                "Đảng viên đọc, nghiên cứu và thực hiện; chi bộ thảo luận trong kỳ sinh hoạt gần nhất.")
        docs.append({"_id": f"article:{slug}", "type": "article", "title": title, "body": body,
                     "category": category, "language": "vi", "audience": audience,
                     "published_at": _time(before, 1 + i * 3, 8), "summary": title})
    return docs
