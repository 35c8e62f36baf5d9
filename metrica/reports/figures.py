"""The figures of one daily report, computed from a day's rollup (`metrica.jobs.rollups.DayRollup`).

Everything a rendering shows is here, already decided (labels, the busiest and quietest hours, warnings), so
the HTML, CSV and PDF cannot disagree. Times are in the store's zone; an hour is a step of the business day
(23, 24 or 25 of them on DST days), labelled with its local clock time.
"""

from __future__ import annotations

import zoneinfo
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import msgspec

from metrica.jobs.rollups import DayRollup
from metrica.site import Store

__all__ = [
    "QUIETEST_RULE",
    "UPTIME_WARNING",
    "CameraInfo",
    "CameraUptime",
    "Comparison",
    "HourFigure",
    "HourRef",
    "PreviousDay",
    "ReportFigures",
    "make_figures",
]

UPTIME_WARNING = 0.95  # a camera running less of the day than this is called out: its counts are low
QUIETEST_RULE = "the hour with the fewest visitors between the first and the last visitor of the day"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class HourFigure(msgspec.Struct, kw_only=True):
    start: datetime  # in the store's zone
    end: datetime
    label: str  # local clock time "14:00"; the second run of a fall-back hour carries its offset
    in_count: int
    out_count: int
    peak_occupancy: int  # most people inside during the hour
    avg_occupancy: float  # ∫ occupancy dt ÷ the hour's length


class HourRef(msgspec.Struct, kw_only=True):
    index: int  # into ReportFigures.hours
    label: str
    in_count: int


class Comparison(msgspec.Struct, kw_only=True):
    label: str
    dates: list[date]  # the days compared that have data
    in_count: float | None  # their visitors (the mean for several); None: none of them has data
    delta: float | None  # this day − in_count
    delta_pct: float | None  # delta ÷ in_count × 100; None when in_count is 0 or missing


class CameraUptime(msgspec.Struct, kw_only=True):
    camera_id: int
    name: str
    enabled: bool
    running_seconds: float
    observed_seconds: float
    uptime: float | None  # running ÷ observed, 0..1; None when nothing was observed
    warning: bool  # an enabled camera ran less than UPTIME_WARNING of the day


class ReportFigures(msgspec.Struct, kw_only=True):
    store_id: int
    store_name: str
    timezone: str
    business_date: date
    weekday: str
    day_start: datetime  # in the store's zone
    day_end: datetime
    in_count: int  # entrance INs: visitors
    out_count: int
    peak_occupancy: int
    peak_at: datetime | None  # first instant the peak was reached, store zone; None when nobody was inside
    peak_hour: HourRef | None  # the hour that holds peak_at
    avg_dwell_seconds: float | None  # ∫ occupancy dt ÷ visitors; None with no visitors
    busiest_hour: HourRef | None  # most visitors (the earliest on a tie); None with no visitors
    quietest_hour: HourRef | None  # see quietest_rule
    quietest_rule: str
    last_week: Comparison  # the same weekday a week before
    four_weeks: Comparison  # the mean of the 4 previous same weekdays that have data
    cameras: list[CameraUptime]
    camera_warning: str | None  # a sentence when a camera was down a significant part of the day
    hours: list[HourFigure]
    computed_at: datetime  # UTC


class CameraInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    enabled: bool = True


class PreviousDay(msgspec.Struct, frozen=True, kw_only=True):
    date: date
    in_count: int | None  # None: no data that day (no crossing and no camera running)


def _compare(label: str, value: int, days: Sequence[PreviousDay]) -> Comparison:
    known = [d for d in days if d.in_count is not None]
    if not known:
        return Comparison(label=label, dates=[], in_count=None, delta=None, delta_pct=None)
    base = sum(d.in_count or 0 for d in known) / len(known)
    delta = value - base
    return Comparison(
        label=label,
        dates=[d.date for d in known],
        in_count=round(base, 2),
        delta=round(delta, 2),
        delta_pct=round(delta / base * 100, 1) if base > 0 else None,
    )


def _labels(starts: Sequence[datetime]) -> list[str]:
    """Local clock times; a label seen twice (the repeated hour of a fall-back) gets its UTC offset."""
    plain = [s.strftime("%H:%M") for s in starts]
    seen = Counter(plain)
    return [
        f"{p} ({s.strftime('%z')[:3]}:{s.strftime('%z')[3:]})" if seen[p] > 1 else p
        for p, s in zip(plain, starts, strict=True)
    ]


def _fmt_pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def make_figures(
    store: Store,
    day: DayRollup,
    cameras: Sequence[CameraInfo],
    previous: Sequence[PreviousDay],
    *,
    computed_at: datetime | None = None,
) -> ReportFigures:
    """The report of ``day`` (a closed business day of ``store``).

    ``previous``: the same weekday 1, 2, 3 and 4 weeks before, newest first. ``cameras``: the store's
    cameras (names for the ids of ``day.cameras``).
    """
    tz = zoneinfo.ZoneInfo(store.timezone)
    starts = [h.hour_start.astimezone(tz) for h in day.hours]
    labels = _labels(starts)
    hours = [
        HourFigure(
            start=s,
            end=h.hour_end.astimezone(tz),
            label=lab,
            in_count=h.ins,
            out_count=h.outs,
            peak_occupancy=h.peak_occupancy,
            avg_occupancy=round(
                h.occupancy_seconds / max(1.0, (h.hour_end - h.hour_start).total_seconds()), 3
            ),
        )
        for h, s, lab in zip(day.hours, starts, labels, strict=True)
    ]

    def ref(i: int) -> HourRef:
        return HourRef(index=i, label=hours[i].label, in_count=hours[i].in_count)

    busiest = quietest = None
    with_visitors = [i for i, h in enumerate(hours) if h.in_count > 0]
    if with_visitors:
        busiest = ref(min(with_visitors, key=lambda i: (-hours[i].in_count, i)))
        open_hours = range(with_visitors[0], with_visitors[-1] + 1)
        quietest = ref(min(open_hours, key=lambda i: (hours[i].in_count, i)))
    peak_hour = None
    if day.peak_at is not None:
        for i, h in enumerate(day.hours):
            if h.hour_start <= day.peak_at < h.hour_end:
                peak_hour = ref(i)
                break

    names = {c.id: c for c in cameras}
    uptimes: list[CameraUptime] = []
    for cid, (running, observed) in sorted(day.cameras.items()):
        info = names.get(cid, CameraInfo(id=cid, name=f"camera {cid}"))
        up = min(1.0, running / observed) if observed > 0 else None
        # A disabled camera that did not run is not expected to: listed, not called out.
        expected = info.enabled or running > 0
        uptimes.append(
            CameraUptime(
                camera_id=cid,
                name=info.name,
                enabled=info.enabled,
                running_seconds=round(running, 1),
                observed_seconds=round(observed, 1),
                uptime=round(up, 4) if up is not None else None,
                warning=expected and (up is None or up < UPTIME_WARNING),
            )
        )
    down = [c for c in uptimes if c.warning]
    warning = None
    if down:
        parts = [f"“{c.name}” ran {_fmt_pct(c.uptime or 0.0)} of the day" for c in down[:5]]
        if len(down) > 5:
            parts.append(f"{len(down) - 5} more below {_fmt_pct(UPTIME_WARNING)}")
        warning = (
            ("Camera " if len(down) == 1 else "Cameras: ")
            + "; ".join(parts)
            + ". Visitors were not counted while a camera was down, so the day's counts are lower than the"
            " real traffic."
        )

    weekday = WEEKDAYS[day.business_date.weekday()]
    week_ago = day.business_date - timedelta(days=7)
    four = [p for p in previous if 0 <= (week_ago - p.date).days <= 21 and (week_ago - p.date).days % 7 == 0]
    return ReportFigures(
        store_id=store.id,
        store_name=store.name,
        timezone=store.timezone,
        business_date=day.business_date,
        weekday=weekday,
        day_start=day.day_start.astimezone(tz),
        day_end=day.day_end.astimezone(tz),
        in_count=day.ins,
        out_count=day.outs,
        peak_occupancy=day.peak_occupancy,
        peak_at=day.peak_at.astimezone(tz) if day.peak_at else None,
        peak_hour=peak_hour,
        avg_dwell_seconds=round(day.avg_dwell_seconds, 1) if day.avg_dwell_seconds is not None else None,
        busiest_hour=busiest,
        quietest_hour=quietest,
        quietest_rule=QUIETEST_RULE,
        last_week=_compare(f"Last {weekday}", day.ins, [p for p in four if p.date == week_ago]),
        four_weeks=_compare(f"Average of the 4 previous {weekday}s", day.ins, four),
        cameras=uptimes,
        camera_warning=warning,
        hours=hours,
        computed_at=computed_at or datetime.now(UTC),
    )


def format_duration(seconds: float | None, *, compact: bool = False) -> str:
    """A dwell time a person reads at a glance: "45 s", "12 min 30 s", "1 h 05 min" ("12m 30s" compact);
    "–" for none."""
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s}s" if compact else f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if compact else f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if compact else f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_delta(c: Comparison) -> str:
    """ "+12 (+8.5%)", "−3 (−4.0%)", "no data"."""
    if c.delta is None:
        return "no data"
    sign = "+" if c.delta >= 0 else "−"
    num = f"{sign}{abs(c.delta):g}"
    if c.delta_pct is None:
        return num
    return f"{num} ({sign}{abs(c.delta_pct):.1f}%)"


def long_date(d: date) -> str:
    return f"{WEEKDAYS[d.weekday()]} {d.day} {d.strftime('%B %Y')}"
