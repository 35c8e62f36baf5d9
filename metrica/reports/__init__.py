"""Daily reports: the figures of a store's closed business day (`figures`) and their renderings as a phone
page with inline SVG charts (`html`), a spreadsheet (`csv`) and a printable page (`pdf`).

The renderers are pure and synchronous (the job runs them in a thread); the job that computes, stores and
schedules reports is `metrica.jobs.reports`, the routes that serve them `metrica.api.reports`.
"""

from metrica.reports.figures import (
    UPTIME_WARNING,
    CameraUptime,
    Comparison,
    HourFigure,
    HourRef,
    PreviousDay,
    ReportFigures,
    make_figures,
)

__all__ = [
    "UPTIME_WARNING",
    "CameraUptime",
    "Comparison",
    "HourFigure",
    "HourRef",
    "PreviousDay",
    "ReportFigures",
    "make_figures",
]
