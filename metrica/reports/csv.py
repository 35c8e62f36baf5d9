"""A report's hours as CSV: one header row, then one row per hour of the business day (23, 24 or 25).

Columns sum to the day's totals (in_count, out_count), so a spreadsheet can check the report. Times are ISO
8601 with the store's UTC offset, so the two runs of a fall-back hour stay distinct.
"""

from __future__ import annotations

import csv
import io

from metrica.reports.figures import ReportFigures

__all__ = ["COLUMNS", "render_csv"]

COLUMNS = (
    "business_date",
    "hour_start",
    "hour_end",
    "hour",
    "in_count",
    "out_count",
    "peak_occupancy",
    "avg_occupancy",
)


def render_csv(f: ReportFigures) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180
    w.writerow(COLUMNS)
    for h in f.hours:
        w.writerow(
            [
                f.business_date.isoformat(),
                h.start.isoformat(),
                h.end.isoformat(),
                h.label,
                h.in_count,
                h.out_count,
                h.peak_occupancy,
                f"{h.avg_occupancy:.3f}",
            ]
        )
    return buf.getvalue()
