"""A report as one self-contained HTML page: inline SVG charts, inline CSS, no JavaScript, no external asset.

It opens from a link on a phone (narrow first, wider screens get more room), prints, and can be mailed as a
file. Chart elements carry classes a test or a stylesheet can find: ``svg.hourly rect.bar`` (one per hour;
``busiest``/``quietest`` mark those hours), ``polyline.occupancy`` and ``circle.peak`` (the peak occupancy),
``svg.compare rect.cmp``, ``svg.uptime rect.uptime`` (``low`` below the warning level).
"""

from __future__ import annotations

import math
from html import escape

from metrica.reports.figures import (
    UPTIME_WARNING,
    Comparison,
    ReportFigures,
    format_delta,
    format_duration,
    long_date,
)

__all__ = ["render_html"]

_CSS = """
:root{--ink:#1c2230;--muted:#5d6675;--line:#e3e6eb;--accent:#2563eb;--busy:#f59e0b;--quiet:#94a3b8;
--occ:#dc2626;--warn-bg:#fff7e6;--warn:#9a4a00;--ok:#15803d;--bg:#f3f4f6}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;-webkit-text-size-adjust:100%}
main{max-width:760px;margin:0 auto;padding:14px 12px 40px}
header h1{font-size:1.35rem;margin:4px 0 2px}
header p{margin:0;color:var(--muted);font-size:.92rem}
.card{background:#fff;border-radius:14px;padding:14px 14px 12px;margin:12px 0;box-shadow:0 1px 2px rgba(0,0,0,.07)}
.card h2{font-size:1.02rem;margin:0 0 8px}
.tiles{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:10px;margin:12px 0}
.tile{background:#fff;border-radius:14px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.07)}
.tile .k{color:var(--muted);font-size:.82rem}
.tile .v{font-size:1.6rem;font-weight:700;line-height:1.2;font-variant-numeric:tabular-nums}
.tile .s{color:var(--muted);font-size:.8rem}
.up{color:var(--ok)}.down{color:var(--occ)}
.warning{background:var(--warn-bg);color:var(--warn);border:1px solid #f3c98b;border-radius:12px;padding:10px 12px;
margin:12px 0;font-size:.93rem}
svg{display:block;width:100%;height:auto}
svg text{font-family:inherit;fill:var(--muted)}
.bar{fill:var(--accent)}.bar.busiest{fill:var(--busy)}.bar.quietest{fill:var(--quiet)}
.grid{stroke:var(--line);stroke-width:1}
.occupancy{fill:none;stroke:var(--occ);stroke-width:2;stroke-linejoin:round}
.peak{fill:var(--occ);stroke:#fff;stroke-width:1.5}
svg text.peak-label{fill:var(--occ);font-weight:600}
.cmp{fill:#cbd5e1}.cmp.today{fill:var(--accent)}
.track{fill:#eef0f3}.uptime{fill:var(--ok)}.uptime.low{fill:#d97706}
svg text.val{fill:var(--ink);font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:.8rem;color:var(--muted);margin-top:6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.note{color:var(--muted);font-size:.8rem;margin:6px 0 0}
dl.facts{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;margin:0;font-size:.93rem}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;font-variant-numeric:tabular-nums}
table{width:100%;border-collapse:collapse;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{padding:4px 6px;text-align:right;border-bottom:1px solid var(--line)}
th:first-child,td:first-child{text-align:left}
tr.busiest td{background:#fff4dc}
details summary{cursor:pointer;font-weight:600}
footer{color:var(--muted);font-size:.78rem;text-align:center;margin-top:18px}
@media (min-width:600px){.tiles{grid-template-columns:repeat(4,minmax(0,1fr))}}
@media print{body{background:#fff}.card,.tile{box-shadow:none;border:1px solid var(--line)}details{display:block}}
"""


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _nice_max(v: float) -> int:
    """A round axis top ≥ v (1, 2, 5 × 10^k)."""
    if v <= 1:
        return 1
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if m * exp >= v:
            return int(m * exp)
    return int(10 * exp)


def _hourly_chart(f: ReportFigures) -> str:
    w, h = 360.0, 210.0
    left, right, top, bottom = 30.0, 6.0, 22.0, 26.0
    pw, ph = w - left - right, h - top - bottom
    n = max(1, len(f.hours))
    top_value = _nice_max(max([1, *(x.in_count for x in f.hours), *(x.peak_occupancy for x in f.hours)]))
    slot = pw / n
    bw = slot * 0.72

    def y(v: float) -> float:
        return top + ph - ph * v / top_value

    out = [
        f'<svg class="chart hourly" viewBox="0 0 {w:g} {h:g}" role="img" '
        f'aria-label="Visitors per hour on {escape(f.business_date.isoformat())}">'
    ]
    for v in (0, top_value / 2, top_value):
        yy = y(v)
        out.append(f'<line class="grid" x1="{left:g}" x2="{w - right:g}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        out.append(
            f'<text x="{left - 4:g}" y="{yy + 3.5:.1f}" font-size="10" text-anchor="end">{_n(v)}</text>'
        )
    busiest = f.busiest_hour.index if f.busiest_hour else -1
    quietest = f.quietest_hour.index if f.quietest_hour else -1
    points = []
    for i, hour in enumerate(f.hours):
        x = left + i * slot + (slot - bw) / 2
        cls = "bar" + (" busiest" if i == busiest else "") + (" quietest" if i == quietest else "")
        top_y = y(hour.in_count)
        out.append(
            f'<rect class="{cls}" x="{x:.2f}" y="{top_y:.2f}" width="{bw:.2f}" height="{y(0) - top_y:.2f}" rx="1.5"'
            f' data-hour="{escape(hour.label)}" data-in="{hour.in_count}">'
            f"<title>{escape(hour.label)}: {hour.in_count} in, {hour.out_count} out, "
            f"up to {hour.peak_occupancy} inside</title></rect>"
        )
        points.append(f"{left + (i + 0.5) * slot:.2f},{y(hour.peak_occupancy):.2f}")
        if i % 3 == 0:
            out.append(
                f'<text x="{left + (i + 0.5) * slot:.2f}" y="{h - bottom + 13:g}" font-size="11" '
                f'text-anchor="middle">{escape(hour.label[:2])}</text>'
            )
    if any(x.peak_occupancy for x in f.hours):
        out.append(f'<polyline class="occupancy" points="{" ".join(points)}"/>')
    if f.peak_hour is not None:
        i = f.peak_hour.index
        cx, cy = left + (i + 0.5) * slot, y(f.peak_occupancy)
        anchor = "start" if i < n / 2 else "end"
        dx = 6 if anchor == "start" else -6
        out.append(
            f'<circle class="peak" cx="{cx:.2f}" cy="{cy:.2f}" r="4" data-hour="{escape(f.peak_hour.label)}"/>'
        )
        # Above the plot, so it never sits on the bars.
        out.append(
            f'<line class="grid" x1="{cx:.2f}" x2="{cx:.2f}" y1="14" y2="{cy - 4:.2f}" stroke-dasharray="2 2"/>'
        )
        out.append(
            f'<text class="peak-label" x="{cx + dx * 0.3:.2f}" y="11" font-size="11" '
            f'text-anchor="{anchor}">peak: {f.peak_occupancy} inside at {escape(f.peak_hour.label[:5])}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2:g}" y="{h - 2:g}" font-size="10" text-anchor="middle">'
        f"hour of the day ({escape(f.timezone)})</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _compare_chart(f: ReportFigures) -> str:
    rows: list[tuple[str, float | None, str, str]] = [
        (f"This {f.weekday}", float(f.in_count), "cmp today", str(f.in_count)),
        (
            f.last_week.label,
            f.last_week.in_count,
            "cmp",
            _n(f.last_week.in_count) if f.last_week.in_count is not None else "no data",
        ),
        (
            f"4-week average ({len(f.four_weeks.dates)} d)",
            f.four_weeks.in_count,
            "cmp",
            _n(f.four_weeks.in_count) if f.four_weeks.in_count is not None else "no data",
        ),
    ]
    w, row_h = 360.0, 30.0
    label_w, value_w = 128.0, 52.0
    bar_max = w - label_w - value_w
    top_value = max([1.0, *(v for _, v, _, _ in rows if v is not None)])
    out = [
        f'<svg class="chart compare" viewBox="0 0 {w:g} {row_h * len(rows):g}" role="img" '
        'aria-label="Visitors compared with previous weeks">'
    ]
    for i, (label, value, cls, text) in enumerate(rows):
        yy = i * row_h
        out.append(f'<text x="0" y="{yy + 19:g}" font-size="11.5">{escape(label[:24])}</text>')
        bw = bar_max * (value or 0) / top_value
        out.append(
            f'<rect class="{cls}" x="{label_w:g}" y="{yy + 6:g}" width="{bw:.2f}" height="18" rx="3">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
        )
        out.append(
            f'<text class="val" x="{label_w + bw + 5:.2f}" y="{yy + 19:g}" font-size="12">{escape(text)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _uptime_chart(f: ReportFigures) -> str:
    w, row_h = 360.0, 28.0
    label_w, value_w = 110.0, 44.0
    bar_max = w - label_w - value_w
    out = [
        f'<svg class="chart uptime" viewBox="0 0 {w:g} {row_h * max(1, len(f.cameras)):g}" role="img" '
        'aria-label="Camera uptime">'
    ]
    for i, c in enumerate(f.cameras):
        yy = i * row_h
        up = c.uptime or 0.0
        text = f"{up * 100:.0f}%" if c.uptime is not None else "–"
        if not c.enabled and not c.warning and c.running_seconds == 0:
            text = "off"
        out.append(f'<text x="0" y="{yy + 18:g}" font-size="11.5">{escape(c.name[:18])}</text>')
        out.append(
            f'<rect class="track" x="{label_w:g}" y="{yy + 6:g}" width="{bar_max:g}" height="16" rx="3"/>'
        )
        out.append(
            f'<rect class="uptime{" low" if c.warning else ""}" x="{label_w:g}" y="{yy + 6:g}" '
            f'width="{bar_max * up:.2f}" height="16" rx="3" data-camera="{c.camera_id}">'
            f"<title>{escape(c.name)}: running {text} of the day</title></rect>"
        )
        out.append(f'<text class="val" x="{w - value_w + 6:g}" y="{yy + 18:g}" font-size="12">{text}</text>')
    out.append("</svg>")
    return "".join(out)


def _delta_html(c: Comparison) -> str:
    if c.delta is None:
        return '<span class="s">no data</span>'
    cls = "up" if c.delta >= 0 else "down"
    return f'<span class="{cls}">{escape(format_delta(c))}</span>'


def _delta_tile(c: Comparison) -> tuple[str, str]:
    """(big number, small line) for a comparison tile: "+51" over "+24.3% vs 210"."""
    if c.delta is None or c.in_count is None:
        return '<span class="s">no data</span>', ""
    cls = "up" if c.delta >= 0 else "down"
    sign = "+" if c.delta >= 0 else "−"
    pct = f"{sign}{abs(c.delta_pct):.1f}% " if c.delta_pct is not None else ""
    return f'<span class="{cls}">{sign}{_n(abs(c.delta))}</span>', escape(f"{pct}vs {_n(c.in_count)}")


def _tile(key: str, value: str, sub: str = "") -> str:
    sub_html = f'<div class="s">{sub}</div>' if sub else ""
    return f'<div class="tile"><div class="k">{escape(key)}</div><div class="v">{value}</div>{sub_html}</div>'


def render_html(f: ReportFigures) -> str:
    """The page of a report (UTF-8 text)."""
    title = f"{f.store_name} — {long_date(f.business_date)}"
    span = f"{f.day_start.strftime('%H:%M')} {f.day_start.strftime('%d %b')} → {f.day_end.strftime('%H:%M')} "
    span += f"{f.day_end.strftime('%d %b')} ({len(f.hours)} h, {f.timezone})"
    peak_sub = f"at {f.peak_at.strftime('%H:%M')}" if f.peak_at else "nobody inside"
    tiles = "".join(
        [
            _tile("Visitors", str(f.in_count), f"{f.out_count} out"),
            _tile("Vs last " + f.weekday, *_delta_tile(f.last_week)),
            _tile("Peak inside", str(f.peak_occupancy), escape(peak_sub)),
            _tile("Average visit", escape(format_duration(f.avg_dwell_seconds, compact=True))),
        ]
    )
    warning = (
        f'<div class="warning" role="alert">⚠ {escape(f.camera_warning)}</div>' if f.camera_warning else ""
    )
    busiest = (
        f"{escape(f.busiest_hour.label)} ({f.busiest_hour.in_count} visitors)" if f.busiest_hour else "–"
    )
    quietest = (
        f"{escape(f.quietest_hour.label)} ({f.quietest_hour.in_count} visitors)" if f.quietest_hour else "–"
    )
    peak_hour = f"{escape(f.peak_hour.label)}" if f.peak_hour else "–"
    facts = (
        '<dl class="facts">'
        f"<dt>Busiest hour</dt><dd>{busiest}</dd>"
        f"<dt>Quietest hour</dt><dd>{quietest}</dd>"
        f"<dt>Peak hour</dt><dd>{peak_hour}</dd>"
        f"<dt>{escape(f.last_week.label)}</dt><dd>{_delta_html(f.last_week)}</dd>"
        f"<dt>4-week average</dt><dd>{_delta_html(f.four_weeks)}</dd>"
        "</dl>"
        f'<p class="note">Quietest hour: {escape(f.quietest_rule)}. Peak hour: when the most people were'
        " inside.</p>"
    )
    rows = "".join(
        f"<tr{' class=busiest' if f.busiest_hour and i == f.busiest_hour.index else ''}>"
        f"<td>{escape(h.label)}</td><td>{h.in_count}</td><td>{h.out_count}</td><td>{h.peak_occupancy}</td></tr>"
        for i, h in enumerate(f.hours)
    )
    table = (
        "<details><summary>Hour by hour</summary><table><thead><tr><th>Hour</th><th>In</th><th>Out</th>"
        f"<th>Peak inside</th></tr></thead><tbody>{rows}</tbody>"
        f"<tfoot><tr><td>Total</td><td>{f.in_count}</td><td>{f.out_count}</td><td>{f.peak_occupancy}</td></tr>"
        "</tfoot></table></details>"
    )
    compared = ", ".join(d.isoformat() for d in f.four_weeks.dates) or "none with data"
    cams = (
        _uptime_chart(f) + f'<p class="note">Share of the business day each camera was running. Below '
        f"{UPTIME_WARNING * 100:.0f}% it is marked: counts are missing for the time it was down.</p>"
        if f.cameras
        else '<p class="note">No camera is configured for this store.</p>'
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{escape(f.store_name)}</h1><p>Daily report · {escape(long_date(f.business_date))}</p>"
        f"<p>{escape(span)}</p></header>"
        f"{warning}"
        f'<section class="tiles">{tiles}</section>'
        '<section class="card"><h2>Visitors per hour</h2>'
        f"{_hourly_chart(f)}"
        '<div class="legend"><span><i style="background:var(--accent)"></i>visitors in</span>'
        '<span><i style="background:var(--busy)"></i>busiest hour</span>'
        '<span><i style="background:var(--quiet)"></i>quietest hour</span>'
        '<span><i style="background:var(--occ)"></i>most people inside</span></div>'
        f"{facts}</section>"
        f'<section class="card"><h2>Compared with previous {escape(f.weekday)}s</h2>{_compare_chart(f)}'
        f'<p class="note">4-week average over: {escape(compared)}. A day with no count and no camera'
        " running is left out.</p></section>"
        f'<section class="card"><h2>Camera uptime</h2>{cams}</section>'
        f'<section class="card">{table}</section>'
        f"<footer>Metrica · computed {escape(f.computed_at.strftime('%Y-%m-%d %H:%M'))} UTC · anonymous counts,"
        " no images stored</footer>"
        "</main></body></html>\n"
    )
