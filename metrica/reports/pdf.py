"""A report as a one- or two-page A4 PDF (fpdf2, pure Python): key figures, the hourly bar chart drawn with
rectangles, the comparisons, camera uptime and the hour-by-hour table.

Text uses DejaVu Sans when the system has it (any store name prints); otherwise the PDF core font, with
the characters it cannot show replaced.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from metrica.reports.figures import UPTIME_WARNING, ReportFigures, format_delta, format_duration, long_date

__all__ = ["render_pdf"]

# fpdf2 subsets embedded fonts with fontTools, which logs every table it touches at INFO.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_ACCENT = (37, 99, 235)
_BUSY = (245, 158, 11)
_QUIET = (148, 163, 184)
_OCC = (220, 38, 38)
_MUTED = (93, 102, 117)
_GRID = (227, 230, 235)
_WARN = (154, 74, 0)
_OK = (21, 128, 61)
_LOW = (217, 119, 6)
_ASCII = str.maketrans({"–": "-", "−": "-", "—": "-", "“": '"', "”": '"', "⚠": "!", "→": "->", "·": "-"})


class _Doc(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4", unit="mm")
        self.family = "helvetica"
        self.unicode = False
        for d in _FONT_DIRS:
            regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
            if regular.is_file() and bold.is_file():
                self.add_font("dejavu", "", str(regular))
                self.add_font("dejavu", "B", str(bold))
                self.family, self.unicode = "dejavu", True
                break
        self.set_auto_page_break(auto=True, margin=14)
        self.set_margins(14, 14, 14)

    def t(self, text: str) -> str:
        if self.unicode:
            return text
        return text.translate(_ASCII).encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False, color: tuple[int, int, int] = (28, 34, 48)) -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.set_text_color(*color)

    def line_text(self, text: str, h: float = 6.0) -> None:
        self.cell(0, h, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str) -> None:
        self.ln(3)
        self.font(12, bold=True)
        self.line_text(text, 8)


def _bar_chart(pdf: _Doc, f: ReportFigures) -> None:
    x0, width, height = pdf.l_margin + 10, pdf.epw - 10, 55.0
    if pdf.get_y() + height + 15 > pdf.page_break_trigger:  # drawn at fixed positions: keep it on one page
        pdf.add_page()
    y0 = pdf.get_y() + 4
    n = max(1, len(f.hours))
    top = max([1, *(h.in_count for h in f.hours), *(h.peak_occupancy for h in f.hours)])
    slot = width / n
    pdf.set_draw_color(*_GRID)
    pdf.font(7, color=_MUTED)
    for v in (0, top / 2, top):
        yy = y0 + height - height * v / top
        pdf.line(x0, yy, x0 + width, yy)
        pdf.set_xy(x0 - 11, yy - 2)
        pdf.cell(10, 4, f"{v:g}", align="R")
    busiest = f.busiest_hour.index if f.busiest_hour else -1
    quietest = f.quietest_hour.index if f.quietest_hour else -1
    for i, h in enumerate(f.hours):
        color = _BUSY if i == busiest else _QUIET if i == quietest else _ACCENT
        pdf.set_fill_color(*color)
        bh = height * h.in_count / top
        if bh > 0:
            pdf.rect(x0 + i * slot + slot * 0.14, y0 + height - bh, slot * 0.72, bh, style="F")
        if i % 2 == 0:
            pdf.set_xy(x0 + i * slot, y0 + height + 0.5)
            pdf.cell(slot, 4, h.label[:2], align="C")
    # Peak occupancy per hour, a line over the bars.
    pdf.set_draw_color(*_OCC)
    pdf.set_line_width(0.5)
    pts = [
        (x0 + (i + 0.5) * slot, y0 + height - height * h.peak_occupancy / top) for i, h in enumerate(f.hours)
    ]
    if any(h.peak_occupancy for h in f.hours):
        for a, b in itertools.pairwise(pts):
            pdf.line(a[0], a[1], b[0], b[1])
    if f.peak_hour is not None:
        cx, cy = pts[f.peak_hour.index]
        pdf.set_fill_color(*_OCC)
        pdf.ellipse(cx - 1.2, cy - 1.2, 2.4, 2.4, style="F")
    pdf.set_line_width(0.2)
    pdf.set_y(y0 + height + 6)
    pdf.font(8, color=_MUTED)
    pdf.line_text(
        f"Bars: visitors in per hour (orange: busiest, grey: quietest). Red line: most people inside. "
        f"Hours in {f.timezone}.",
        4.5,
    )


def _uptime_rows(pdf: _Doc, f: ReportFigures) -> None:
    if not f.cameras:
        pdf.font(10, color=_MUTED)
        pdf.line_text("No camera is configured for this store.")
        return
    x0, label_w, bar_w = pdf.l_margin, 45.0, 100.0
    for c in f.cameras:
        if pdf.get_y() + 7 > pdf.page_break_trigger:
            pdf.add_page()
        y = pdf.get_y()
        pdf.font(10)
        pdf.set_xy(x0, y)
        pdf.cell(label_w, 6, pdf.t(c.name[:28]))
        pdf.set_fill_color(238, 240, 243)
        pdf.rect(x0 + label_w, y + 1, bar_w, 4, style="F")
        pdf.set_fill_color(*(_LOW if c.warning else _OK))
        if c.uptime:
            pdf.rect(x0 + label_w, y + 1, bar_w * c.uptime, 4, style="F")
        pdf.set_xy(x0 + label_w + bar_w + 3, y)
        text = f"{c.uptime * 100:.0f}%" if c.uptime is not None else "-"
        pdf.cell(30, 6, text + (f"  (below {UPTIME_WARNING * 100:.0f}%)" if c.warning else ""))
        pdf.set_xy(x0, y + 7)


def _hour_table(pdf: _Doc, f: ReportFigures) -> None:
    widths = (40.0, 30.0, 30.0, 35.0)
    pdf.font(9, bold=True)
    for w, head in zip(widths, ("Hour", "In", "Out", "Peak inside"), strict=True):
        pdf.cell(w, 6, head, border="B", align="L" if head == "Hour" else "R")
    pdf.ln(6)
    pdf.font(9)
    for i, h in enumerate(f.hours):
        busy = f.busiest_hour is not None and i == f.busiest_hour.index
        pdf.set_fill_color(255, 244, 220)
        cells = (pdf.t(h.label), str(h.in_count), str(h.out_count), str(h.peak_occupancy))
        for w, text, align in zip(widths, cells, "LRRR", strict=True):
            pdf.cell(w, 5, text, align=align, fill=busy)
        pdf.ln(5)
    pdf.font(9, bold=True)
    for w, text, align in zip(widths, ("Total", str(f.in_count), str(f.out_count), ""), "LRRR", strict=True):
        pdf.cell(w, 6, text, border="T", align=align)
    pdf.ln(6)


def render_pdf(f: ReportFigures) -> bytes:
    pdf = _Doc()
    pdf.set_title(pdf.t(f"{f.store_name} - daily report {f.business_date.isoformat()}"))
    pdf.set_creator("Metrica")
    pdf.add_page()
    pdf.font(18, bold=True)
    pdf.line_text(f.store_name, 9)
    pdf.font(11, color=_MUTED)
    pdf.line_text(f"Daily report - {long_date(f.business_date)}")
    pdf.line_text(
        f"{f.day_start.strftime('%Y-%m-%d %H:%M')} to {f.day_end.strftime('%Y-%m-%d %H:%M')} "
        f"({len(f.hours)} hours, {f.timezone})"
    )
    if f.camera_warning:
        pdf.ln(2)
        pdf.font(10, bold=True, color=_WARN)
        pdf.multi_cell(0, 5, pdf.t("Warning: " + f.camera_warning), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.heading("Key figures")
    pdf.font(11)
    peak = f"{f.peak_occupancy}" + (f" at {f.peak_at.strftime('%H:%M')}" if f.peak_at else "")
    busiest = f"{f.busiest_hour.label} ({f.busiest_hour.in_count} visitors)" if f.busiest_hour else "-"
    quietest = f"{f.quietest_hour.label} ({f.quietest_hour.in_count} visitors)" if f.quietest_hour else "-"
    for key, value in (
        ("Visitors in", str(f.in_count)),
        ("Visitors out", str(f.out_count)),
        ("Peak inside", peak),
        ("Average visit", format_duration(f.avg_dwell_seconds)),
        ("Busiest hour", busiest),
        ("Quietest hour", quietest),
        (f.last_week.label, format_delta(f.last_week)),
        (f"4-week average ({len(f.four_weeks.dates)} days)", format_delta(f.four_weeks)),
    ):
        pdf.font(10, color=_MUTED)
        pdf.cell(70, 6, pdf.t(key))
        pdf.font(11, bold=True)
        pdf.cell(0, 6, pdf.t(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(8, color=_MUTED)
    pdf.line_text(f"Quietest hour: {f.quietest_rule}.", 4.5)
    pdf.heading("Visitors per hour")
    _bar_chart(pdf, f)
    pdf.heading("Camera uptime")
    _uptime_rows(pdf, f)
    pdf.heading("Hour by hour")
    _hour_table(pdf, f)
    pdf.ln(3)
    pdf.font(8, color=_MUTED)
    pdf.line_text(
        f"Metrica - computed {f.computed_at.strftime('%Y-%m-%d %H:%M')} UTC - anonymous counts", 4.5
    )
    return bytes(pdf.output())
