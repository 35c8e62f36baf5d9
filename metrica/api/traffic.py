"""Traffic reports: the ``from``/``to``/``bucket`` of a request → bucket boundaries in the store's time zone.

Days start at the store's ``day_start_hour`` in its IANA zone, so a DST day has 23 or 25 hourly buckets.
``from`` and ``to`` are ISO dates (a date names the business day that starts on it) or date-times (naive
ones are read in the store's zone); the range is half-open, ``[from, to)``, and widened to whole buckets:
the report names the range it covers. Hourly buckets step whole hours from each day's start.

Buckets that end before a *horizon* are read from the rollups (``store_hourly``/``store_daily``, per line
``line_hourly``/``line_daily``), the rest from raw ``crossings``. The horizon is the start of the current
hour, or earlier when a crossing in the range was inserted after the rollup watermark (a late batch or a
lagging worker): the answer equals a raw-only count either way.
"""

from __future__ import annotations

import contextlib
import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import asyncpg
import msgspec

from metrica.actors.live import business_day, local_day_start
from metrica.db import queries
from metrica.jobs.rollups import OVERLAP
from metrica.site import Store

__all__ = [
    "MAX_DAYS",
    "Bucket",
    "RangeError",
    "TrafficBucket",
    "TrafficReport",
    "TrafficSeries",
    "boundaries",
    "parse_bound",
    "traffic_report",
]

Bucket = Literal["hour", "day"]
By = Literal["store", "camera", "line"]
MAX_DAYS: dict[str, int] = {"hour": 93, "day": 3700}  # ~a quarter of hours, ~ten years of days
_MIN_YEAR, _MAX_YEAR = 2000, 2100
_HOUR = timedelta(hours=1)
# A "+" in a query string arrives as a space: "2026-03-29T08:00:00 01:00" means "+01:00".
_SPACE_OFFSET = re.compile(r"^(.*T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class RangeError(ValueError):
    """A ``from``/``to``/``bucket`` the report cannot be built from; the message says why (→ 400)."""


class TrafficBucket(msgspec.Struct, kw_only=True):
    start: datetime  # in the store's time zone
    end: datetime
    in_count: int
    out_count: int
    # From the rollups (buckets before the current hour): highest "inside" and ∫occupancy dt ÷ visits.
    # None where the bucket is read from raw events (the current hour, a late batch not rolled up yet).
    peak_occupancy: int | None = None
    avg_dwell_seconds: float | None = None


class TrafficSeries(msgspec.Struct, kw_only=True):
    """One camera's or line's counts, aligned with the report's buckets."""

    camera_id: int
    line_id: int | None = None
    line: str | None = None
    footfall: bool | None = None
    in_count: int
    out_count: int
    in_counts: list[int]
    out_counts: list[int]


class TrafficReport(msgspec.Struct, kw_only=True):
    store_id: int
    timezone: str
    day_start_hour: int
    bucket: Bucket
    from_: datetime = msgspec.field(name="from")
    to: datetime
    in_count: int  # entrance INs over the range (store visits)
    out_count: int
    buckets: list[TrafficBucket]
    series: list[TrafficSeries] | None = None  # with ?by=camera or ?by=line


def parse_bound(name: str, value: str, store: Store) -> datetime:
    """An aware instant from an ISO date (its business day start) or date-time; RangeError names the input."""
    text = value.strip()
    m = _SPACE_OFFSET.match(text)
    if m:
        text = f"{m.group(1)}+{m.group(2)}"
    when: datetime | date | None = None
    with contextlib.suppress(ValueError):
        when = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    if when is None:
        raise RangeError(
            f"{name}: expected an ISO date (2026-03-29) or date-time (2026-03-29T08:00:00+01:00), got {value!r}"
        )
    _check_year(name, value, when.year)
    if not isinstance(when, datetime):
        return local_day_start(store, when)
    if when.tzinfo is None:  # wall-clock time in the store's zone
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(store.timezone))
    return when.astimezone(UTC)


def _check_year(name: str, value: str, year: int) -> None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise RangeError(f"{name}: {value!r} is outside the years {_MIN_YEAR}–{_MAX_YEAR}")


def _floor(store: Store, instant: datetime, bucket: Bucket) -> datetime:
    _, start, _ = business_day(store, instant)
    if bucket == "day":
        return start
    return start + _HOUR * ((instant - start) // _HOUR)


def _ceil(store: Store, instant: datetime, bucket: Bucket) -> datetime:
    floor = _floor(store, instant, bucket)
    if floor == instant:
        return instant
    if bucket == "day":
        return business_day(store, instant)[2]
    return min(floor + _HOUR, business_day(store, instant)[2])


def boundaries(store: Store, start: datetime, end: datetime, bucket: Bucket) -> list[datetime]:
    """Bucket edges from ``start`` to ``end`` (both on the grid): n buckets → n + 1 instants, UTC."""
    edges = [start]
    day_end = business_day(store, start)[2]
    while edges[-1] < end:
        cur = edges[-1]
        if cur >= day_end:
            day_end = business_day(store, cur)[2]
        nxt = day_end if bucket == "day" else min(cur + _HOUR, day_end)
        edges.append(min(nxt, end))
    return edges


def resolve_range(
    store: Store,
    from_: str | None,
    to: str | None,
    bucket: str,
    now: datetime,
) -> tuple[datetime, datetime, Bucket]:
    """Validate the query and widen it to whole buckets; defaults: today (hour) or the last 7 days (day)."""
    if bucket not in ("hour", "day"):
        raise RangeError(f"bucket: expected 'hour' or 'day', got {bucket!r}")
    kind: Bucket = "hour" if bucket == "hour" else "day"
    start = parse_bound("from", from_, store) if from_ else None
    end = parse_bound("to", to, store) if to else None
    if end is None:
        end = business_day(store, max(now, start) if start else now)[2]
    if start is None:
        _, day_start, _ = business_day(store, end - timedelta(microseconds=1))
        days = 1 if kind == "hour" else 7
        start = local_day_start(store, business_day(store, day_start)[0] - timedelta(days=days - 1))
    if start >= end:
        raise RangeError(f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    limit = MAX_DAYS[kind]
    if end - start > timedelta(days=limit):
        hint = "; use bucket=day" if kind == "hour" else ""
        raise RangeError(
            f"the range spans {(end - start).days} days: at most {limit} days with bucket={kind}{hint}"
        )
    return _floor(store, start, kind), _ceil(store, end, kind), kind


async def traffic_report(
    pool: asyncpg.Pool,
    store: Store,
    *,
    from_: str | None,
    to: str | None,
    bucket: str = "hour",
    by: By = "store",
    now: datetime | None = None,
    use_rollups: bool = True,
    retention_days: int | None = None,
) -> TrafficReport:
    """The report; ``use_rollups=False`` counts raw crossings only. Late crossings older than
    ``retention_days`` do not pull the horizon back (their days are no longer recomputed, see rollups)."""
    now = now or datetime.now(UTC)
    start, end, kind = resolve_range(store, from_, to, bucket, now)
    edges = boundaries(store, start, end, kind)
    n = len(edges) - 1
    tz = zoneinfo.ZoneInfo(store.timezone)
    ins, outs = [0] * n, [0] * n
    peaks: list[int | None] = [None] * n
    dwell: list[float | None] = [None] * n
    series: dict[tuple[int, int | None], TrafficSeries] = {}
    split = 0  # buckets [0, split) come from the rollups
    rows: list[queries.BucketRow] = []
    if use_rollups:
        horizon_from = edges[0]
        if retention_days is not None:
            horizon_from = max(horizon_from, now - timedelta(days=retention_days))
        hour = _floor(store, now, "hour")
        horizon = await queries.rollup_horizon(pool, store.id, horizon_from, hour, OVERLAP)
        while split < n and edges[split + 1] <= horizon:
            split += 1
    if split:
        store_rows, rows = await queries.rollup_buckets(pool, store.id, edges[: split + 1], kind, by=by)
        for sr in store_rows:
            if 0 <= sr.bucket < split:
                peaks[sr.bucket] = sr.peak_occupancy
                dwell[sr.bucket] = sr.occupancy_seconds / sr.ins if sr.ins else None
                if by == "store":
                    ins[sr.bucket] += sr.ins
                    outs[sr.bucket] += sr.outs
        for i in range(split):  # a rolled-up bucket with no row holds no crossing (and nobody inside)
            if peaks[i] is None:
                peaks[i] = 0
    if split < n:
        raw = await queries.traffic_buckets(pool, store.id, edges[split:], by=by)
        rows += [msgspec.structs.replace(r, bucket=r.bucket + split) for r in raw]
    for row in rows:
        if not 0 <= row.bucket < n:
            continue
        if (by == "store" and row.bucket >= split) or (by == "line" and row.footfall):
            ins[row.bucket] += row.ins
            outs[row.bucket] += row.outs
        if by != "store":
            assert row.camera_id is not None
            key = (row.camera_id, row.line_id)
            s = series.get(key)
            if s is None:
                s = series[key] = TrafficSeries(
                    camera_id=row.camera_id,
                    line_id=row.line_id,
                    line=row.line,
                    footfall=row.footfall,
                    in_count=0,
                    out_count=0,
                    in_counts=[0] * n,
                    out_counts=[0] * n,
                )
            else:  # rows come by bucket: a line shows the name and role it was last counted under
                s.line, s.footfall = row.line, row.footfall
            s.in_counts[row.bucket] += row.ins
            s.out_counts[row.bucket] += row.outs
            s.in_count += row.ins
            s.out_count += row.outs
    if by == "camera":  # camera rows are footfall only: they add up to the store totals
        for s in series.values():
            for i in range(n):
                ins[i] += s.in_counts[i]
                outs[i] += s.out_counts[i]
    return TrafficReport(
        store_id=store.id,
        timezone=store.timezone,
        day_start_hour=store.day_start_hour,
        bucket=kind,
        from_=start.astimezone(tz),
        to=end.astimezone(tz),
        in_count=sum(ins),
        out_count=sum(outs),
        buckets=[
            TrafficBucket(
                start=edges[i].astimezone(tz),
                end=edges[i + 1].astimezone(tz),
                in_count=ins[i],
                out_count=outs[i],
                peak_occupancy=peaks[i],
                avg_dwell_seconds=dwell[i],
            )
            for i in range(n)
        ],
        series=[series[k] for k in sorted(series, key=lambda k: (k[0], k[1] or 0))]
        if by != "store"
        else None,
    )
