"""report.html rendered by headless Chromium: the charts and the numbers are in the DOM, and a
screenshot is taken (copied to $REPORT_SCREENSHOT_DIR when that is set, to look at).

Chromium must be installed (``scripts/install-browser``); without it these tests fail, they
do not skip.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sync_server.handbook.generate import Province, generate, write_to_store
from sync_server.handbook.report_html import NO_DATA, fmt_int, fmt_pct, pct_whole
from sync_server.handbook.reports import Report, compute, write_reports
from sync_server.store import Server

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1200, 1600)
TIMEOUT = 120  # seconds one Chromium run may take
PLOT_X, PLOT_W = 200, 470  # the share chart's plot area (report_html.chart_share_using)


def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once on ``url`` with its own profile directory."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): run scripts/install-browser (as root) to install it")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *extra, url]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        pytest.fail(f"chromium exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    children: list[Element] = field(default_factory=list)
    parts: list[Element | str] = field(default_factory=list)  # text and child elements, in order

    def all_text(self) -> str:
        return "".join(p if isinstance(p, str) else p.all_text() for p in self.parts)

    def find_all(self, tag: str) -> list[Element]:
        found = [c for c in self.children if c.tag == tag]
        for child in self.children:
            found += child.find_all(tag)
        return found

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class DomParser(HTMLParser):
    """A tree of the dumped DOM (enough to check elements, attributes and text)."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        self.current.parts.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        self.current.parts.append(element)

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.parts.append(data)


def parse_dom(html: str) -> Element:
    parser = DomParser()
    parser.feed(html)
    parser.close()
    return parser.root


def png_size_and_pixels(path: Path) -> tuple[tuple[int, int], bytes]:
    """Width, height and the decompressed image data of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, size, idat = 8, (0, 0), b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return size, zlib.decompress(idat)


@pytest.fixture(scope="module")
def province_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Province, object]]:
    province = generate("full", seed=1, months=["2026-11"], using_share=0.62)
    db = write_to_store(province, Server(tmp_path_factory.mktemp("store")))
    yield province, db
    db.close()


@pytest.fixture(scope="module")
def november(province_db: tuple[Province, object], tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    province, db = province_db
    report = compute(db, province.hierarchy, "2026-11")
    out = tmp_path_factory.mktemp("report")
    return report, write_reports(report, out)["report.html"]


def test_report_renders_with_charts_and_numbers(november: tuple[Report, Path], tmp_path: Path) -> None:
    report, html_path = november
    dom_text = chromium(tmp_path, html_path.as_uri(), "--dump-dom").stdout
    dom = parse_dom(dom_text)
    assert "<script" not in dom_text.lower()
    text = dom.all_text()

    # Headline figures, as the province's own report writes them.
    p = report.province
    assert pct_whole(p.install_rate_all) == "84%" and pct_whole(p.install_rate_target) == "104%"
    values = [e.all_text() for e in dom.find_all("div") if "value" in e.classes()]
    assert values[:3] == ["84%", "104%", "62%"]
    for fragment in ("48.597 / 57.597", "48.597 / 46.728", "1.240 / 2.000", "Tuyên Quang",
                     "(Party-member handbook report)", "(November 2026)"):
        assert fragment in text, fragment

    svgs = [s for s in dom.find_all("svg") if s.attrs.get("role") == "img"]
    assert [s.attrs["id"] for s in svgs] == ["chart-share", "chart-install"]
    for svg in svgs:
        titles = [c for c in svg.children if c.tag == "title"]
        assert len(titles) == 1 and "(" in titles[0].all_text()
        assert svg.attrs["aria-labelledby"].split()[0] == titles[0].attrs["id"]
        assert [c for c in svg.children if c.tag == "desc"]
    share, install = svgs
    assert "(Share of cells using the handbook, by district)" in share.all_text()
    districts = report.level("district")
    assert len(districts) == 7

    # One bar per district, its width the district's share; a dashed line at the 80% goal.
    bars = [g for g in share.find_all("g") if "bar" in g.classes()]
    assert [g.attrs["data-code"] for g in bars] == [d.code for d in districts]
    for g, district in zip(bars, districts):
        rects = g.find_all("rect")
        assert len(rects) == 1
        assert float(rects[0].attrs["width"]) == pytest.approx(PLOT_W * district.share_using, abs=0.06)
        assert fmt_pct(district.share_using) in g.all_text()
        assert district.name in g.find_all("title")[0].all_text()
    dashed = [ln for ln in share.find_all("line") if "goal-line" in ln.classes()]
    assert len(dashed) == 1 and dashed[0].attrs.get("stroke-dasharray")
    assert float(dashed[0].attrs["x1"]) == pytest.approx(PLOT_X + PLOT_W * 0.80)
    assert "Mục tiêu (goal) 80%" in share.all_text()

    # Installation: two bars per district (all members, target group).
    bars = [g for g in install.find_all("g") if "bar" in g.classes()]
    assert len(bars) == 7
    for g, district in zip(bars, districts):
        assert len(g.find_all("rect")) == 2
        for rate in (district.install_rate_all, district.install_rate_target):
            assert fmt_pct(rate) in g.all_text()
    assert "(of the target group)" in install.all_text()

    # The table fallback holds the same numbers.
    table = next(t for t in dom.find_all("table") if t.attrs.get("id") == "district-table")
    rows = [tr for tr in table.find_all("tr") if tr.attrs.get("data-code")]
    assert [tr.attrs["data-code"] for tr in rows] == [d.code for d in districts] + ["TQ"]
    for tr, district in zip(rows, [*districts, p]):
        cells = [c.all_text() for c in tr.children]
        assert cells[0] == district.name
        assert cells[1] == fmt_int(district.members) and cells[3] == fmt_int(district.installed)
        assert cells[5] == fmt_pct(district.install_rate_all) and cells[9] == fmt_pct(district.share_using)
    assert fmt_int(57_597) in rows[-1].all_text() and "104,0%" in rows[-1].all_text()


def test_trend_help_and_reading_sections(november: tuple[Report, Path], tmp_path: Path) -> None:
    report, html_path = november
    dom = parse_dom(chromium(tmp_path, html_path.as_uri(), "--dump-dom").stdout)
    tables = {t.attrs.get("id"): t for t in dom.find_all("table") if t.attrs.get("id")}
    # the trend, month by month, ends with the report's month and its headline figures
    months = [tr.attrs["data-month"] for tr in tables["trend-table"].find_all("tr") if tr.attrs.get("data-month")]
    assert months == report.months and months[-1] == "2026-11"
    last = [c.all_text() for c in tables["trend-table"].find_all("tr")[-1].children]
    assert last[3] == "48.597" and last[6] == "104,0%" and last[8] == "62,0%"
    # every cell to help is listed once, each with its reasons and its members by age band
    rows = [tr for d in dom.find_all("details") if "help" in d.classes() for tr in d.find_all("tr")
            if tr.attrs.get("data-code")]
    assert [tr.attrs["data-code"] for tr in rows] == [c.code for c in report.to_help()]
    assert len(rows) == report.province.cells_to_help > 0
    assert all("(" in tr.children[2].all_text() for tr in rows)  # the reason, in both languages
    bands = [tr.attrs["data-band"] for tr in tables["bands-table"].find_all("tr") if tr.attrs.get("data-band")]
    assert bands == ["under_35", "35_49", "50_64", "65_plus"]
    # reading: the most read articles, by title
    top = [tr.children[0].all_text() for tr in tables["top-articles"].find_all("tr")[1:]]
    assert len(top) == 8 and top[0] == report.title(report.top_articles("TQ")[0][0])


def test_screenshot(november: tuple[Report, Path], tmp_path: Path) -> None:
    _, html_path = november
    png = tmp_path / "report.png"
    chromium(tmp_path, html_path.as_uri(), f"--screenshot={png}")
    assert png.exists(), "chromium wrote no screenshot"
    size, pixels = png_size_and_pixels(png)
    assert size == WINDOW
    assert len(set(pixels[: len(pixels) // 2])) > 50, "the screenshot looks blank"
    target = os.environ.get("REPORT_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(target) / "report.png")
        shutil.copy(html_path, Path(target) / "report.html")


def test_month_without_data_says_no_data(province_db: tuple[Province, object], tmp_path: Path) -> None:
    province, db = province_db
    report = compute(db, province.hierarchy, "2027-01")
    html_path = write_reports(report, tmp_path / "empty")["report.html"]
    dom = parse_dom(chromium(tmp_path, html_path.as_uri(), "--dump-dom").stdout)
    share = next(s for s in dom.find_all("svg") if s.attrs.get("id") == "chart-share")
    bars = [g for g in share.find_all("g") if "bar" in g.classes()]
    assert len(bars) == 7
    for g in bars:
        assert g.find_all("rect") == []
        assert NO_DATA in g.all_text() and "0,0%" not in g.all_text()
    values = [e.all_text() for e in dom.find_all("div") if "value" in e.classes()]
    assert values[:4] == ["84%", "104%", NO_DATA, NO_DATA]


def test_missing_chromium_fails_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Chromium the browser tests fail (never skip), saying how to install it."""
    monkeypatch.setitem(globals(), "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match="run scripts/install-browser"):
        chromium(tmp_path, "file:///dev/null", "--dump-dom")
