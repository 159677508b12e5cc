"""``report.html``: one self-contained page for a month's report (``render(report) -> str``).

Inline CSS and inline SVG only: no script, font, image or style sheet is fetched, so
the file opens offline from a USB stick or an e-mail. Vietnamese labels with English
in parentheses. Numbers in Vietnamese format (``57.597``, ``84,4%``); headline rates
rounded to whole percent as in the province's own reports (``84%``, ``104%``).

Accessibility: each chart is an ``<svg role="img">`` with ``<title>`` and ``<desc>``
(and a ``<title>`` on every bar), and the same numbers follow in tables with captions
and header cells; colour is never the only signal (values are printed beside the bars,
the goal is a labelled dashed line). A rate with no data reads "không có dữ liệu (no data)",
never 0%.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reports import Report, Row

NO_DATA_VI = "không có dữ liệu"
NO_DATA = f"{NO_DATA_VI} (no data)"
LEVEL_LABELS = {"province": "Tỉnh (Province)", "district": "Huyện, thành phố (District)",
                "commune": "Xã, phường, thị trấn (Commune)", "cell": "Chi bộ (Cell)"}
COLOR_MET, COLOR_BELOW = "#1a7f37", "#b45309"
COLOR_ALL, COLOR_TARGET = "#1d4ed8", "#0f766e"

CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;color:#1f2328;background:#f6f8fa;
 font-size:15px;line-height:1.45}
main{max-width:1140px;margin:0 auto;padding:20px 24px 40px;background:#fff}
h1{font-size:24px;margin:0 0 4px;color:#8b0000}
h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}
.sub{margin:0 0 16px;color:#57606a}
.en{color:#57606a;font-weight:normal}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin:12px 0}
.card{border:1px solid #d0d7de;border-radius:8px;padding:12px 14px;background:#fafbfc}
.card .label{font-size:13px;color:#57606a}
.card .value{font-size:30px;font-weight:bold;margin:2px 0}
.card .detail{font-size:13px}
.met{color:#1a7f37}.below{color:#b45309}.nodata{color:#6e7781;font-style:italic}
.card .value.nodata{font-size:18px;font-weight:normal;margin:8px 0 10px}
td.n.nodata{white-space:normal;min-width:64px;font-size:11px;text-align:center}
figure{margin:12px 0 8px}
figcaption{font-size:13px;color:#57606a;margin-top:4px}
svg text{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:12px;margin:8px 0 16px}
th .en{font-size:11px}
caption{text-align:left;font-weight:bold;padding:4px 0;font-size:14px}
th,td{border:1px solid #d0d7de;padding:3px 5px;vertical-align:top}
th{background:#eef1f4;text-align:left;font-weight:600}
th[scope=row]{min-width:150px;background:#f6f8fa}
td.goal{min-width:74px}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:bold;background:#f6f8fa}
details{margin:6px 0}
summary{cursor:pointer;font-weight:600}
dl{font-size:13px}dt{font-weight:bold;margin-top:6px}dd{margin-left:16px}
footer{margin-top:24px;font-size:12px;color:#57606a}
@media print{body{background:#fff}main{padding:0}details{display:block}}
"""


def fmt_int(value: int) -> str:
    """An integer in Vietnamese format: ``57.597``."""
    return f"{value:,}".replace(",", ".")


def _round_half_up(value: float, digits: int) -> float:
    scale = 10 ** digits
    return math.floor(value * scale + 0.5) / scale


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A rate as a percentage, Vietnamese decimal comma (``84,4%``); None is "no data"."""
    if value is None:
        return NO_DATA
    number = _round_half_up(value * 100, digits)
    text = f"{number:,.{digits}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return text + "%"


def pct_whole(value: float | None) -> str:
    """A rate rounded to a whole percent (``84%``, ``104%``); None is "no data"."""
    return NO_DATA if value is None else f"{int(_round_half_up(value * 100, 0))}%"


def _month_label(month: str) -> str:
    names = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December"]
    return f"Tháng {int(month[5:])}/{month[:4]} ({names[int(month[5:]) - 1]} {month[:4]})"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _rate_cell(value: float | None) -> str:
    if value is None:
        return f'<td class="n nodata">{NO_DATA}</td>'
    return f'<td class="n">{fmt_pct(value)}</td>'


def _goal_text(row: Row) -> str:
    met = row.meets_goal
    if met is None:
        return f'<span class="nodata">{NO_DATA}</span>'
    return '<span class="met">đạt (met)</span>' if met else '<span class="below">chưa đạt (not met)</span>'


# -- charts ----------------------------------------------------------------------------

def _short(name: str) -> str:
    """A district's name without its "Huyện"/"Thành phố" prefix, for chart labels."""
    for prefix in ("Huyện ", "Thị xã "):
        if name.startswith(prefix):
            return name[len(prefix):]
    if name.startswith("Thành phố "):
        return "TP. " + name[len("Thành phố "):]
    return name


def _chart_open(name: str, width: int, height: int, title: str, desc: str, heading: str, heading_en: str) -> list[str]:
    """An accessible chart's opening: ``<svg id="chart-NAME">`` labelled by its title and description
    (read out by screen readers), and its heading in Vietnamese with the English in grey."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{name}-title {name}-desc" '
            f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" class="chart" id="chart-{name}">',
            f'<title id="{name}-title">{_e(title)}</title>', f'<desc id="{name}-desc">{_e(desc)}</desc>',
            f'<text x="0" y="18" font-size="14" font-weight="bold" fill="#1f2328">{_e(heading)} '
            f'<tspan fill="#57606a" font-weight="normal">({_e(heading_en)})</tspan></text>']


def _axis(x0: float, width: float, top: float, bottom: float, maximum: float, step: float) -> list[str]:
    parts = []
    ticks = int(round(maximum / step))
    for i in range(ticks + 1):
        value = i * step
        x = x0 + width * value / maximum
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#d8dee4" stroke-width="1"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" font-size="12" text-anchor="middle" fill="#57606a">'
                     f'{int(round(value * 100))}%</text>')
    return parts


def chart_share_using(report: Report, rows: list[Row]) -> str:
    """Horizontal bars: share of cells using the handbook per district, dashed goal line."""
    label_w, plot_w, value_w, row_h, top = 200, 470, 200, 34, 54
    width = label_w + plot_w + value_w
    bottom = top + row_h * max(1, len(rows))
    height = bottom + 58
    goal = report.goal
    title = "Tỷ lệ chi bộ sử dụng Sổ tay trong sinh hoạt, theo huyện (Share of cells using the handbook, by district)"
    desc_rows = "; ".join(f"{_short(r.name)}: {fmt_pct(r.share_using)} ({fmt_int(r.cells_using)}/{fmt_int(r.cells)})"
                          for r in rows)
    desc = (f"{_month_label(report.month)}. Mục tiêu (goal) {pct_whole(goal)}. {desc_rows}. "
            "Bảng số liệu bên dưới (data table below).")
    out = _chart_open("share", width, height, title, desc, "Tỷ lệ chi bộ sử dụng Sổ tay", "share of cells using the handbook")
    out += _axis(label_w, plot_w, top - 8, bottom, 1.0, 0.2)
    for i, row in enumerate(rows):
        y = top + i * row_h
        share = row.share_using
        out.append(f'<g class="bar" data-code="{_e(row.code)}">')
        label = f"{row.name}: {fmt_pct(share)} ({fmt_int(row.cells_using)}/{fmt_int(row.cells)} chi bộ, cells)"
        out.append(f'<title>{_e(label)}</title>')
        out.append(f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" font-size="13" text-anchor="end" '
                   f'fill="#1f2328">{_e(_short(row.name))}</text>')
        if share is None:
            out.append(f'<text x="{label_w + 6}" y="{y + row_h / 2 + 4:.1f}" font-size="13" font-style="italic" '
                       f'fill="#6e7781">{NO_DATA}</text>')
        else:
            bar = plot_w * min(share, 1.0)
            color = COLOR_MET if row.meets_goal else COLOR_BELOW
            out.append(f'<rect x="{label_w}" y="{y + 6}" width="{bar:.1f}" height="{row_h - 12}" fill="{color}" '
                       f'rx="2"/>')
            out.append(f'<text x="{label_w + plot_w + 8}" y="{y + row_h / 2 + 4:.1f}" font-size="13" '
                       f'fill="#1f2328">{fmt_pct(share)} ({fmt_int(row.cells_using)}/{fmt_int(row.cells)})</text>')
        out.append("</g>")
    gx = label_w + plot_w * goal
    out.append(f'<g class="goal"><title>Mục tiêu {pct_whole(goal)} (goal {pct_whole(goal)})</title>'
               f'<line x1="{gx:.1f}" y1="{top - 12}" x2="{gx:.1f}" y2="{bottom + 4}" stroke="#cf222e" '
               f'stroke-width="2" stroke-dasharray="6 4" class="goal-line"/>'
               f'<text x="{gx:.1f}" y="{top - 16}" font-size="12" text-anchor="middle" fill="#cf222e">'
               f'Mục tiêu (goal) {pct_whole(goal)}</text></g>')
    ly = bottom + 38
    out.append(f'<g class="legend" font-size="12"><rect x="{label_w}" y="{ly - 10}" width="12" height="12" '
               f'fill="{COLOR_MET}"/><text x="{label_w + 18}" y="{ly}">đạt mục tiêu (goal met)</text>'
               f'<rect x="{label_w + 190}" y="{ly - 10}" width="12" height="12" fill="{COLOR_BELOW}"/>'
               f'<text x="{label_w + 208}" y="{ly}">chưa đạt (below goal)</text>'
               f'<line x1="{label_w + 370}" y1="{ly - 4}" x2="{label_w + 400}" y2="{ly - 4}" stroke="#cf222e" '
               f'stroke-width="2" stroke-dasharray="6 4"/><text x="{label_w + 406}" y="{ly}">'
               f'mục tiêu (goal)</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def chart_install(report: Report, rows: list[Row]) -> str:
    """Grouped horizontal bars: installation rate against all members and against the target group."""
    label_w, plot_w, value_w, row_h, top = 200, 470, 200, 46, 54
    width = label_w + plot_w + value_w
    bottom = top + row_h * max(1, len(rows))
    height = bottom + 76
    values = [v for r in rows for v in (r.install_rate_all, r.install_rate_target) if v is not None]
    maximum = max([1.0, *values])
    maximum = math.ceil(maximum / 0.2 - 1e-9) * 0.2
    title = ("Tỷ lệ cài đặt Sổ tay, theo huyện: trên tổng số đảng viên và trên đối tượng có điện thoại thông minh "
             "(Installation rate by district: of all members and of the target group)")
    desc_rows = "; ".join(f"{_short(r.name)}: {fmt_pct(r.install_rate_all)} / {fmt_pct(r.install_rate_target)}"
                          for r in rows)
    desc = (f"Tổng số / đối tượng (all members / target group). {desc_rows}. "
            "Bảng số liệu bên dưới (data table below).")
    out = _chart_open("install", width, height, title, desc, "Tỷ lệ cài đặt", "installation rate")
    out += _axis(label_w, plot_w, top - 8, bottom, maximum, 0.2)
    x100 = label_w + plot_w / maximum
    out.append(f'<line x1="{x100:.1f}" y1="{top - 8}" x2="{x100:.1f}" y2="{bottom}" stroke="#57606a" '
               f'stroke-width="1.5"/>')
    bar_h = (row_h - 14) / 2
    for i, row in enumerate(rows):
        y = top + i * row_h
        out.append(f'<g class="bar" data-code="{_e(row.code)}">')
        out.append(f'<title>{_e(row.name)}: {fmt_pct(row.install_rate_all)} tổng số (all members), '
                   f'{fmt_pct(row.install_rate_target)} đối tượng (target group)</title>')
        out.append(f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" font-size="13" text-anchor="end" '
                   f'fill="#1f2328">{_e(_short(row.name))}</text>')
        for j, (value, color, numer, denom) in enumerate((
                (row.install_rate_all, COLOR_ALL, row.installed, row.members),
                (row.install_rate_target, COLOR_TARGET, row.installed, row.smartphone))):
            by = y + 6 + j * (bar_h + 2)
            if value is None:
                out.append(f'<text x="{label_w + 6}" y="{by + bar_h - 3:.1f}" font-size="12" font-style="italic" '
                           f'fill="#6e7781">{NO_DATA}</text>')
                continue
            out.append(f'<rect x="{label_w}" y="{by:.1f}" width="{plot_w * value / maximum:.1f}" '
                       f'height="{bar_h:.1f}" fill="{color}" rx="2"/>')
            out.append(f'<text x="{label_w + plot_w + 8}" y="{by + bar_h - 3:.1f}" font-size="12" fill="#1f2328">'
                       f'{fmt_pct(value)} ({fmt_int(numer)}/{fmt_int(denom)})</text>')
        out.append("</g>")
    ly = bottom + 38
    out.append(f'<g class="legend" font-size="12"><rect x="{label_w}" y="{ly - 10}" width="12" height="12" '
               f'fill="{COLOR_ALL}"/><text x="{label_w + 18}" y="{ly}">trên tổng số đảng viên (of all members)</text>'
               f'<rect x="{label_w}" y="{ly + 8}" width="12" height="12" fill="{COLOR_TARGET}"/>'
               f'<text x="{label_w + 18}" y="{ly + 18}">trên đối tượng có điện thoại thông minh (of the target group)'
               f'</text></g>')
    out.append("</svg>")
    return "\n".join(out)


# -- tables ----------------------------------------------------------------------------

HEADERS = [("Đơn vị", "Unit"), ("Đảng viên", "Members"), ("Có điện thoại thông minh", "Smartphone owners"),
           ("Đã cài đặt", "Installed"), ("Đã đăng ký", "Registered"), ("Cài đặt / tổng số", "Install rate, all"),
           ("Cài đặt / đối tượng", "Install rate, target"), ("Chi bộ", "Cells"), ("Chi bộ sử dụng", "Cells using"),
           ("Tỷ lệ sử dụng", "Share using"), ("Mục tiêu 80%", "Goal 80%"), ("Buổi sinh hoạt", "Meetings held"),
           ("Tỷ lệ dự họp", "Attendance rate"), ("Biên bản", "Minutes"), ("Góp ý", "Feedback"),
           ("Hoạt động trong tháng", "Active this month"), ("Lượt đọc", "Reads"), ("Chi bộ cần hỗ trợ", "Cells to help")]


def _header(goal: float) -> str:
    cells = []
    for vi, en in HEADERS:
        if vi.startswith("Mục tiêu"):
            vi, en = f"Mục tiêu {pct_whole(goal)}", f"Goal {pct_whole(goal)}"
        cells.append(f'<th scope="col">{_e(vi)} <span class="en">({_e(en)})</span></th>')
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


def _row_html(row: Row, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (f'<tr{cls} data-code="{_e(row.code)}"><th scope="row">{_e(row.name)}</th>'
            f'<td class="n">{fmt_int(row.members)}</td><td class="n">{fmt_int(row.smartphone)}</td>'
            f'<td class="n">{fmt_int(row.installed)}</td><td class="n">{fmt_int(row.registered)}</td>'
            f'{_rate_cell(row.install_rate_all)}{_rate_cell(row.install_rate_target)}'
            f'<td class="n">{fmt_int(row.cells)}</td><td class="n">{fmt_int(row.cells_using)}</td>'
            f'{_rate_cell(row.share_using)}<td class="goal">{_goal_text(row)}</td>'
            f'<td class="n">{fmt_int(row.meetings_held)}</td>{_rate_cell(row.attendance_rate)}'
            f'<td class="n">{fmt_int(row.minutes_recorded)}</td><td class="n">{fmt_int(row.feedback_received)}</td>'
            f'<td class="n">{fmt_int(row.active)}</td><td class="n">{fmt_int(row.reads)}</td>'
            f'<td class="n">{fmt_int(row.cells_to_help)}</td></tr>')


def _table(caption: str, rows: list[Row], total: Row | None, goal: float, table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    body = "".join(_row_html(r) for r in rows)
    foot = f"<tfoot>{_row_html(total, 'total')}</tfoot>" if total is not None else ""
    return (f'<div class="scroll"><table{ident}><caption>{_e(caption)}</caption>{_header(goal)}'
            f"<tbody>{body}</tbody>{foot}</table></div>")


def _cards(report: Report) -> str:
    p = report.province
    share = p.share_using
    share_cls = "nodata" if share is None else ("met" if p.meets_goal else "below")
    cards = [
        ("Cài đặt / tổng số đảng viên", "installed / all members", pct_whole(p.install_rate_all),
         f"{fmt_int(p.installed)} / {fmt_int(p.members)} đảng viên (members)", ""),
        ("Cài đặt / đối tượng có điện thoại thông minh", "installed / target group", pct_whole(p.install_rate_target),
         f"{fmt_int(p.installed)} / {fmt_int(p.smartphone)} (smartphone owners)", ""),
        ("Chi bộ sử dụng trong sinh hoạt", "cells using the handbook", pct_whole(share),
         f"{fmt_int(p.cells_using)} / {fmt_int(p.cells)} chi bộ (cells); mục tiêu (goal) trên "
         f"{pct_whole(report.goal)}: ", share_cls),
        ("Tỷ lệ dự họp", "attendance rate", pct_whole(p.attendance_rate),
         f"{fmt_int(p.attendance_present)} / {fmt_int(p.attendance_records)} lượt có mặt (present); "
         f"{fmt_int(p.meetings_held)} buổi sinh hoạt (meetings held)", ""),
        ("Biên bản và góp ý", "minutes and feedback", fmt_int(p.minutes_recorded),
         f"biên bản (minutes recorded); {fmt_int(p.feedback_received)} góp ý (feedback received)", ""),
        ("Đảng viên sử dụng trong tháng", "members active this month", fmt_int(p.active),
         f"trên {fmt_int(p.installed)} đã cài đặt, {fmt_int(p.registered)} đã đăng ký "
         f"(of {fmt_int(p.installed)} installed, {fmt_int(p.registered)} registered); "
         f"{fmt_int(p.reads)} lượt đọc (reads)", ""),
        ("Chi bộ cần hỗ trợ", "cells to help", fmt_int(p.cells_to_help),
         f"trên {fmt_int(p.cells)} chi bộ (of {fmt_int(p.cells)} cells): danh sách bên dưới (list below)", ""),
    ]
    out = ['<section class="cards" aria-label="Số liệu chính (key figures)">']
    for i, (vi, en, value, detail, cls) in enumerate(cards):
        value_cls = "value nodata" if value == NO_DATA else f"value {cls}".strip()
        extra = _goal_text(p) if i == 2 else ""
        out.append(f'<div class="card"><div class="label">{_e(vi)} <span class="en">({_e(en)})</span></div>'
                   f'<div class="{value_cls}">{_e(value)}</div><div class="detail">{_e(detail)}{extra}</div></div>')
    out.append("</section>")
    return "\n".join(out)


def _definitions(goal: float) -> str:
    items = [
        ("Đảng viên (members)", "đảng viên đang sinh hoạt (status active); active members."),
        ("Đối tượng (target group)", "đảng viên có điện thoại thông minh; active members who own a smartphone."),
        ("Cài đặt / đối tượng (install rate, target group)",
         "có thể vượt 100% vì đảng viên ngoài đối tượng cũng cài đặt; can exceed 100%: members outside the "
         "target group installed the app too."),
        ("Đã cài đặt, đã đăng ký, hoạt động (installed, registered, active)",
         "theo việc đảng viên đã làm, không theo ô đánh dấu: cài đặt = có điện thoại đã ghép với nhà văn hoá và "
         "chưa bị thu hồi vào cuối tháng; đăng ký = đã đăng nhập ít nhất một lần; hoạt động = đã dùng Sổ tay trong "
         "tháng. From what members did, not from flags: installed = a phone paired with the kiosk and not revoked "
         "by the end of the month; registered = signed in at least once; active = used the handbook in the month."),
        ("Chi bộ sử dụng (cells using the handbook in activities)",
         "chi bộ có buổi sinh hoạt trong tháng đã tổ chức, tại đó đảng viên điểm danh bằng ứng dụng, hoặc chương "
         "trình hay biên bản dẫn bài viết của Sổ tay; a cell with a meeting in the month that was held, where "
         "members checked in through the app, or whose agenda or minutes link a handbook article. "
         f"Mục tiêu (goal): trên {pct_whole(goal)} (above {pct_whole(goal)})."),
        ("Chi bộ cần hỗ trợ (cells to help)",
         "chi bộ có đảng viên mà: chưa ai cài đặt, hoặc dưới một nửa số đã cài đặt có hoạt động, hoặc không ghi "
         "buổi sinh hoạt nào, hoặc sinh hoạt không dùng Sổ tay; a cell with members where nobody installed the "
         "app, or fewer than half of those who did used it, or no meeting was recorded, or its meetings did not "
         "use the handbook."),
        ("Lượt đọc (reads)", "số lần mở bài viết, nhà văn hoá đếm theo chi bộ và ngày, không ghi ai đọc; article "
         "openings counted by the kiosk per cell and day, never who read."),
        ("Tỷ lệ dự họp (attendance rate)", "số lượt có mặt trên tổng số lượt điểm danh của các buổi đã tổ chức; "
         "present records over all attendance records of the month's held meetings."),
        (NO_DATA, "đơn vị chưa có số liệu trong tháng (không ghi 0%); the unit recorded nothing to compute the "
         "rate from this month (never shown as 0%)."),
    ]
    body = "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in items)
    return f'<h2 id="definitions">Cách tính <span class="en">(Definitions)</span></h2><dl>{body}</dl>'


def _missing(report: Report) -> str:
    """A warning when some cells could not be pulled: their numbers are last night's or absent."""
    missing = getattr(report, "missing_cells", [])
    if not missing:
        return ""
    return (f'<p class="sub" role="alert"><strong>Thiếu dữ liệu của {fmt_int(len(missing))} chi bộ '
            f"(data of {len(missing)} cells could not be pulled tonight): {_e(', '.join(missing[:20]))}"
            f"{' …' if len(missing) > 20 else ''}</strong></p>")


BAND_LABELS = {"under_35": "Dưới 35 tuổi (under 35)", "35_49": "35–49 tuổi", "50_64": "50–64 tuổi",
               "65_plus": "Từ 65 tuổi (65 and over)", "unknown": "Chưa rõ năm sinh (birth year unknown)"}
HELP_LABELS = {"no_app": "chưa ai cài đặt (nobody installed)",
               "inactive": "đã cài đặt nhưng ít hoạt động (installed but inactive)",
               "no_meeting": "không ghi buổi sinh hoạt (no meeting recorded)",
               "not_using": "sinh hoạt không dùng Sổ tay (meetings without the handbook)"}


def _th(vi: str, en: str) -> str:
    return f'<th scope="col">{_e(vi)} <span class="en">({_e(en)})</span></th>'


def _trend(report: Report) -> str:
    """The trend: the province month by month, and each district's share of cells using the handbook."""
    months = report.months
    head = "".join(_th(vi, en) for vi, en in (
        ("Tháng", "Month"), ("Đảng viên", "Members"), ("Có điện thoại thông minh", "Smartphone owners"),
        ("Đã cài đặt", "Installed"), ("Đã đăng ký", "Registered"), ("Hoạt động", "Active"),
        ("Cài đặt / đối tượng", "Install rate, target"), ("Chi bộ sử dụng", "Cells using"),
        ("Tỷ lệ sử dụng", "Share using"), (f"Mục tiêu {pct_whole(report.goal)}", f"Goal {pct_whole(report.goal)}"),
        ("Chi bộ cần hỗ trợ", "Cells to help"), ("Lượt đọc", "Reads")))
    body = []
    for month in months:
        r = report.row(report.province.code, month)
        body.append(f'<tr data-month="{month}"><th scope="row">{_e(_month_label(month))}</th>'
                    f'<td class="n">{fmt_int(r.members)}</td><td class="n">{fmt_int(r.smartphone)}</td>'
                    f'<td class="n">{fmt_int(r.installed)}</td><td class="n">{fmt_int(r.registered)}</td>'
                    f'<td class="n">{fmt_int(r.active)}</td>{_rate_cell(r.install_rate_target)}'
                    f'<td class="n">{fmt_int(r.cells_using)}</td>{_rate_cell(r.share_using)}'
                    f'<td class="goal">{_goal_text(r)}</td><td class="n">{fmt_int(r.cells_to_help)}</td>'
                    f'<td class="n">{fmt_int(r.reads)}</td></tr>')
    province = (f'<div class="scroll"><table id="trend-table"><caption>{_e(report.province.name)}: '
                f"theo tháng (month by month)</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
                "</tbody></table></div>")
    head = _th("Đơn vị", "Unit") + "".join(f'<th scope="col">{_e(m[5:])}/{_e(m[:4])}</th>' for m in months)
    rows = []
    for unit in [*report.level("district"), report.province]:
        cells = "".join(_rate_cell(report.row(unit.code, m).share_using) for m in months)
        rows.append(f'<tr data-code="{_e(unit.code)}"><th scope="row">{_e(unit.name)}</th>{cells}</tr>')
    districts = (f'<div class="scroll"><table id="trend-share"><caption>Tỷ lệ chi bộ sử dụng Sổ tay theo tháng '
                 f"(share of cells using the handbook, by month)</caption><thead><tr>{head}</tr></thead>"
                 f"<tbody>{''.join(rows)}</tbody></table></div>")
    return ('<h2 id="trend">Xu hướng <span class="en">(Trend)</span></h2>'
            "<p>Cùng cách tính cho từng tháng (the same counting for each month); đảng viên là danh sách hiện "
            "tại (members are today's list).</p>" + province + districts)


def _bands_table(caption: str, row: Row, table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(_th(vi, en) for vi, en in (
        ("Độ tuổi", "Age"), ("Đảng viên", "Members"), ("Đã cài đặt", "Installed"), ("Đã đăng ký", "Registered"),
        ("Hoạt động", "Active"), ("Cài đặt / tổng số", "Install rate"), ("Hoạt động / đã cài đặt", "Active / installed")))
    body = []
    for band, label in BAND_LABELS.items():
        members, installed, registered, active = row.bands[band]
        if band == "unknown" and not members:
            continue
        body.append(f'<tr data-band="{band}"><th scope="row">{_e(label)}</th><td class="n">{fmt_int(members)}</td>'
                    f'<td class="n">{fmt_int(installed)}</td><td class="n">{fmt_int(registered)}</td>'
                    f'<td class="n">{fmt_int(active)}</td>'
                    f"{_rate_cell(installed / members if members else None)}"
                    f"{_rate_cell(active / installed if installed else None)}</tr>")
    return (f'<div class="scroll"><table{ident}><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _band_cell(row: Row, band: str) -> str:
    members, installed, registered, active = row.bands[band]
    if not members:
        return '<td class="n">–</td>'
    return (f'<td class="n" title="{members} đảng viên, {installed} cài đặt, {registered} đăng ký, {active} hoạt động">'
            f"{fmt_int(members)} / {fmt_int(installed)} / {fmt_int(registered)} / {fmt_int(active)}</td>")


def _help(report: Report) -> str:
    """The cells to help, per district, with why and their members by age band."""
    cells = report.to_help()
    bands = [b for b in BAND_LABELS if b != "unknown" or report.province.bands[b][0]]
    head = "".join(_th(vi, en) for vi, en in (
        ("Chi bộ", "Cell"), ("Xã", "Commune"), ("Lý do", "Why"), ("Đảng viên", "Members"),
        ("Đã cài đặt", "Installed"), ("Hoạt động", "Active"), ("Buổi sinh hoạt", "Meetings held"))) + "".join(
        _th(BAND_LABELS[b].split(" (")[0], "members / installed / registered / active") for b in bands)
    names = {r.code: r.name for r in report.level("commune")}
    parts = ['<h2 id="help">Chi bộ cần hỗ trợ <span class="en">(Cells to help)</span></h2>',
             f"<p>{fmt_int(len(cells))} / {fmt_int(report.province.cells)} chi bộ (cells). Theo độ tuổi: đảng viên / "
             "đã cài đặt / đã đăng ký / hoạt động (by age: members / installed / registered / active). Cũng trong "
             "<code>help.csv</code>.</p>",
             _bands_table(f"{report.province.name}: theo độ tuổi (by age band)", report.province, "bands-table")]
    for district in report.level("district"):
        mine = [c for c in cells if c.district == district.code]
        if not mine:
            continue
        rows = "".join(
            f'<tr data-code="{_e(c.code)}"><th scope="row">{_e(c.name)}</th><td>{_e(names.get(c.commune or "", ""))}'
            f"</td><td>{_e('; '.join(HELP_LABELS[h] for h in c.help))}</td><td class=\"n\">{fmt_int(c.members)}</td>"
            f'<td class="n">{fmt_int(c.installed)}</td><td class="n">{fmt_int(c.active)}</td>'
            f'<td class="n">{fmt_int(c.meetings_held)}</td>' + "".join(_band_cell(c, b) for b in bands) + "</tr>"
            for c in mine)
        parts.append(f'<details class="help"><summary>{_e(district.name)}: {fmt_int(len(mine))} chi bộ cần hỗ trợ '
                     f'(cells to help)</summary><div class="scroll"><table><caption>{_e(district.name)}</caption>'
                     f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></details>")
    return "\n".join(parts)


def _reading(report: Report) -> str:
    """The month's most read articles, in the province and each district."""
    top = report.top_articles(report.province.code)
    parts = ['<h2 id="reading">Đọc Sổ tay <span class="en">(Reading)</span></h2>']
    if not top:
        return parts[0] + f'<p class="nodata">{NO_DATA}</p>'
    rows = "".join(f'<tr><th scope="row">{_e(report.title(a))}</th><td><code>{_e(a)}</code></td>'
                   f'<td class="n">{fmt_int(n)}</td></tr>' for a, n in top)
    parts.append(f'<div class="scroll"><table id="top-articles"><caption>Bài viết được đọc nhiều nhất '
                 f"(most read articles), {fmt_int(report.province.reads)} lượt đọc (reads)</caption><thead><tr>"
                 f"{_th('Bài viết', 'Article')}{_th('Mã', 'Id')}{_th('Lượt đọc', 'Reads')}</tr></thead>"
                 f"<tbody>{rows}</tbody></table></div>")
    rows = "".join(f'<tr data-code="{_e(d.code)}"><th scope="row">{_e(d.name)}</th><td class="n">{fmt_int(d.reads)}'
                   f"</td><td>{_e(', '.join(report.title(a) for a, _ in report.top_articles(d.code, 3)))}</td></tr>"
                   for d in report.level("district"))
    parts.append(f'<div class="scroll"><table><caption>Theo huyện (by district)</caption><thead><tr>'
                 f"{_th('Huyện', 'District')}{_th('Lượt đọc', 'Reads')}{_th('Đọc nhiều nhất', 'Most read')}</tr>"
                 f"</thead><tbody>{rows}</tbody></table></div>")
    return "\n".join(parts)


def render(report: Report) -> str:
    """The whole report page as one HTML string."""
    p = report.province
    districts = report.level("district")
    month = _month_label(report.month)
    title = f"Báo cáo Sổ tay đảng viên điện tử – {p.name} – {month}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="vi"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: no scripts at all, styles and images only from this file.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">",
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        '<h1>Báo cáo sử dụng Sổ tay đảng viên điện tử <span class="en">(Party-member handbook report)</span></h1>',
        f'<p class="sub">{_e(p.name)} · {_e(month)} · lập lúc (generated) {_e(report.generated_at)}</p>',
        _missing(report),
        _cards(report),
        '<h2 id="using">Sử dụng trong sinh hoạt chi bộ <span class="en">(Use in cell activities)</span></h2>',
        f'<figure aria-describedby="district-table">{chart_share_using(report, districts)}'
        f"<figcaption>Đường nét đứt: mục tiêu {pct_whole(report.goal)} chi bộ sử dụng Sổ tay "
        f"(dashed line: the goal of {pct_whole(report.goal)} of cells). Số liệu: bảng theo huyện bên dưới "
        "(numbers: the district table below).</figcaption></figure>",
        '<h2 id="install">Cài đặt ứng dụng <span class="en">(Installation)</span></h2>',
        f'<figure aria-describedby="district-table">{chart_install(report, districts)}'
        "<figcaption>Đường dọc đậm: 100% (solid line: 100%). Tỷ lệ trên đối tượng có thể vượt 100% "
        "(the rate against the target group can exceed 100%).</figcaption></figure>",
        '<h2 id="districts">Theo huyện, thành phố <span class="en">(By district)</span></h2>',
        _table(f"Số liệu theo huyện, {month} (Figures by district)", districts, p, report.goal, "district-table"),
        _trend(report),
        _help(report),
        _reading(report),
        '<h2 id="communes">Theo xã, phường, thị trấn <span class="en">(By commune)</span></h2>',
    ]
    for district in districts:
        communes = report.children(district.code)
        parts.append(_table(f"{district.name}: các xã, phường, thị trấn (communes)", communes, district,
                            report.goal))
    parts.append('<h2 id="cells">Theo chi bộ <span class="en">(By cell)</span></h2>')
    for district in districts:
        parts.append(f"<details><summary>{_e(district.name)}: {fmt_int(district.cells)} chi bộ (cells), "
                     f"{fmt_int(district.cells_using)} sử dụng (using)</summary>")
        for commune in report.children(district.code):
            parts.append(_table(commune.name, report.children(commune.code), commune, report.goal))
        parts.append("</details>")
    parts.append(_definitions(report.goal))
    unattributed = sum(report.unattributed.values())
    parts.append(f"<footer><p>Nguồn (source): cơ sở dữ liệu tổng hợp (merged database) "
                 f"<code>{_e(report.database)}</code>, {fmt_int(report.docs_scanned)} tài liệu (documents) đã đọc"
                 + (f"; {fmt_int(unattributed)} tài liệu của chi bộ không có trong danh mục (documents of cells "
                    "not in the hierarchy) không được tính (not counted)" if unattributed else "")
                 + ". Số viết theo kiểu Việt Nam: 57.597 = 57,597; 84,4% = 84.4% (Vietnamese number format).</p>"
                 "</footer></main></body></html>")
    return "\n".join(parts) + "\n"
