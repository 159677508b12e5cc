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
  diacritics), birth year, gender, joining date and handbook status; besides the
  counted (``active``) members there are a few ``moved`` and ``inactive`` ones, some of
  them with the app, which the report's counting rules must leave out;
* per month asked: ``meeting`` documents (the regular monthly meeting, sometimes a
  thematic one), one ``attendance`` document per active member per held meeting,
  ``minutes`` for most held meetings, ``feedback`` from members;
* ``article`` documents (handbook content: resolution, directive, charter, study and
  training material, news), without signatures.

Sizes:

* ``small`` (for tests): 1 district (Na Hang), 2 communes, 4 cells, 100 active members
  (81 smartphone owners, 84 installed: 84% of all and 104% of the target group);
* ``full``: 7 districts, 136 communes, 2,000 cells, exactly 57,597 active members, of
  whom 46,728 own a smartphone (the target group) and exactly 48,597 installed the app
  (45,500 smartphone owners and 3,097 members outside the target group):
  48,597 / 57,597 = 84% and 48,597 / 46,728 = 104%.

``using_share`` (default 0.62) fixes the share of cells that hold at least one meeting
in the software in each month: exactly ``round(using_share * cells)`` cells do (a
float for every month, or a dict month -> share). The other cells record nothing
that month, or a meeting left ``scheduled`` or ``cancelled``. Mountain districts and
older members are less likely to own a smartphone or to use the handbook, so rates
differ between districts while the province totals are exact.

``Province.expected`` holds the numbers the generator knows (members, smartphone,
installed, registered, cells, and per month cells_using, meetings_held, attendance
records and present, minutes, feedback), so a report can be checked against them.

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
    registered: int                     # a subset of the installed members
    moved: int = 0                      # extra members with status moved (not counted)
    inactive: int = 0                   # extra members with status inactive (not counted)


SIZES: dict[str, Spec] = {
    "small": Spec(("NH",), 2, 4, 100, 81, 84, 79, 78, moved=2, inactive=1),
    "full": Spec(tuple(d[0] for d in DISTRICTS), None, 2000, 57_597, 46_728, 48_597, 45_500, 45_196,
                 moved=412, inactive=187),
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
        path = Path(path)
        path.write_text(self.hierarchy_csv, encoding="utf-8")
        return path


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
    for month in months:
        gen.month(month, shares[month])
    province = Province(size, seed, months, format_csv(units, comment=_csv_comment(size, seed)),
                        [u.to_doc() for u in units], gen.cell_docs, _articles(rng, units, months), gen.expected)
    return province


def write_hierarchy(path: str | Path, size: str = "full", seed: int = 1, province: Province | None = None) -> Path:
    """Write a province's hierarchy file; without ``province``, only the hierarchy of ``size`` is generated."""
    if province is not None:
        return province.write_hierarchy(path)
    spec = SIZES[size]
    units, _ = _hierarchy(random.Random(seed), spec)
    path = Path(path)
    path.write_text(format_csv(units, comment=_csv_comment(size, seed)), encoding="utf-8")
    return path


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


class _Generator:
    """Members first (exact counts), then each month's meetings, attendance, minutes, feedback."""

    def __init__(self, rng: random.Random, spec: Spec, units: list[Unit], cells: list[Unit],
                 weights: dict[str, tuple[float, float]], months: list[str]) -> None:
        self.rng, self.spec, self.cells, self.weights, self.months = rng, spec, cells, weights, months
        self.names = {u.code: u.name for u in units}
        self.cell_docs: dict[str, list[Doc]] = {c.code: [] for c in cells}
        self.active: dict[str, list[Doc]] = {}     # cell -> its active members
        self.installed: dict[str, list[str]] = {}  # cell -> ids of active installed members
        self.expected: dict[str, Any] = {"cells": len(cells), "members": spec.members,
                                         "smartphone": spec.smartphone, "installed": spec.installed,
                                         "registered": spec.registered}
        for key in ("cells_using", "meetings_held", "attendance_records", "attendance_present",
                    "minutes_recorded", "feedback_received"):
            self.expected[key] = {}

    def members(self) -> None:
        rng, spec = self.rng, self.spec
        sizes = _apportion(spec.members, [rng.lognormvariate(0, 0.45) for _ in self.cells], 3)
        first_month = min(self.months) if self.months else "2026-01"
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
        inst = sorted(installed)
        registered = _pick(rng, inst, [1.0] * len(inst), spec.registered)
        extra = ["moved"] * spec.moved + ["inactive"] * spec.inactive
        extra_cells = [rng.randrange(len(self.cells)) for _ in extra]
        counters = [0] * len(self.cells)
        for i, (c, born, gender) in enumerate(people):
            doc = self._member(c, counters, born, gender, "active", i in smartphone, i in installed,
                               i in registered, first_month)
            self.active.setdefault(self.cells[c].code, []).append(doc)
        for status, c in zip(extra, extra_cells):
            born = year - int(rng.triangular(22, 88, 50))
            phone = rng.random() < 0.5
            self._member(c, counters, born, "female" if rng.random() < 0.3 else "male", status, phone,
                         phone and rng.random() < 0.6, False, first_month)
        for cell in self.cells:
            members = self.active.get(cell.code, [])
            self.installed[cell.code] = [m["_id"] for m in members if m["installed"]]

    def _member(self, c: int, counters: list[int], born: int, gender: str, status: str, smartphone: bool,
                installed: bool, registered: bool, month: str) -> Doc:
        rng = self.rng
        cell = self.cells[c].code
        counters[c] += 1
        number = f"{counters[c]:03d}"
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE[gender])} {rng.choice(GIVEN[gender])}"
        joined_year = min(int(month[:4]) - 1, born + 18 + int(rng.expovariate(1 / 12)))
        doc: Doc = {"_id": f"member:{cell}:{number}", "type": "member", "cell": cell, "member_no": number,
                    "name": name, "born": born, "gender": gender,
                    "joined": f"{joined_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "status": status, "smartphone": smartphone, "installed": installed,
                    "registered": registered, "last_active": None}
        if installed:
            doc["last_active"] = _time(month, rng.randint(1, 28), rng.randint(6, 21), rng.randint(0, 59))
        self.cell_docs[cell].append(doc)
        return doc

    def month(self, month: str, share: float) -> None:
        rng, exp = self.rng, self.expected
        n_using = round(share * len(self.cells))
        codes = [c.code for c in self.cells]
        using = _pick(rng, list(range(len(codes))), [self.weights[c][1] for c in codes], n_using)
        days = _days_in(month)
        totals = dict.fromkeys(("meetings_held", "attendance_records", "attendance_present",
                                "minutes_recorded", "feedback_received"), 0)
        for index, code in enumerate(codes):
            docs = self.cell_docs[code]
            members = self.active.get(code, [])
            place = (f"Nhà văn hóa {self.names[code][len('Chi bộ '):]}" if "thôn" in self.names[code]
                     or "bản" in self.names[code] or "tổ dân phố" in self.names[code]
                     else "Hội trường Ủy ban nhân dân")
            meetings: list[tuple[str, str]] = []  # (kind, status)
            if index in using:
                meetings.append(("regular", "held"))
                if rng.random() < 0.25:
                    meetings.append(("thematic", "held" if rng.random() < 0.7 else "scheduled"))
            else:
                roll = rng.random()
                if roll < 0.3:
                    meetings.append(("regular", "scheduled"))
                elif roll < 0.4:
                    meetings.append(("regular", "cancelled"))
            for kind, status in meetings:
                day, hour = rng.randint(1, min(days, 10 if kind == "regular" else 28)), rng.choice((8, 14, 19))
                meeting_id = f"meeting:{code}:{_uid(rng)}"
                agenda = rng.sample(AGENDA, 3)
                if kind == "thematic":
                    agenda = [f"Sinh hoạt chuyên đề: {rng.choice(THEMES)}"] + agenda[:1]
                meeting: Doc = {"_id": meeting_id, "type": "meeting", "cell": code, "kind": kind,
                                "scheduled": _time(month, day, hour, 30 if hour == 19 else 0), "place": place,
                                "agenda": agenda, "status": status}
                docs.append(meeting)
                if status != "held":
                    continue
                meeting["held_at"] = _time(month, day, hour, 35 if hour == 19 else 5)
                totals["meetings_held"] += 1
                presence = rng.uniform(0.72, 0.98)
                present = 0
                for member in members:
                    roll = rng.random()
                    state = "present" if roll < presence else ("excused" if roll < presence + 0.6 * (1 - presence)
                                                                 else "absent")
                    att: Doc = {"_id": f"attendance:{meeting_id}:{member['member_no']}", "type": "attendance",
                                "cell": code, "meeting": meeting_id, "member": member["_id"], "status": state}
                    if state == "present":
                        present += 1
                        att["checked_in_at"] = _time(month, day, hour, 25 if hour == 19 else 0)
                    docs.append(att)
                totals["attendance_records"] += len(members)
                totals["attendance_present"] += present
                if rng.random() < 0.85 and members:
                    secretary = members[0]["_id"]
                    docs.append({"_id": f"minutes:{meeting_id}", "type": "minutes", "cell": code,
                                 "meeting": meeting_id, "secretary": secretary,
                                 "text": (f"{self.names[code]} tổ chức sinh hoạt {'chuyên đề' if kind == 'thematic' else 'định kỳ'} "
                                          f"tháng {int(month[5:])}/{month[:4]}. Có mặt {present}/{len(members)} "
                                          "đảng viên. Chi bộ đã quán triệt các văn bản mới trên Sổ tay đảng viên."),
                                 "decisions": rng.sample(DECISIONS, 2),
                                 "written_at": _time(month, min(days, day + 1), 9)})
                    totals["minutes_recorded"] += 1
            installed = self.installed.get(code, [])
            for _ in range(_small_count(rng, 0.6 if installed else 0.0)):
                about, text = rng.choice(FEEDBACK)
                fb: Doc = {"_id": f"feedback:{code}:{_uid(rng)}", "type": "feedback", "cell": code, "about": about,
                           "text": text, "created_at": _time(month, rng.randint(1, days), rng.randint(6, 21),
                                                             rng.randint(0, 59)),
                           "member": rng.choice(installed), "rating": rng.randint(2, 5)}
                if about == "content":
                    fb["article"] = f"article:{rng.choice(ARTICLES)[0]}"
                docs.append(fb)
                totals["feedback_received"] += 1
        exp["cells_using"][month] = n_using
        for key, value in totals.items():
            exp[key][month] = value


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
