"""History routes: one row per business day, and the weekday × hour heatmap, from the rollups.

Days the rollups may not reflect yet — the current day, and a day with crossings inserted after the rollup
watermark (a late batch the worker has not reached, or a lagging worker) — are computed on the fly from the
raw tables with the rollups' own code (`metrica.jobs.rollups.compute_days`, read-only), so every answer is
exact. Dates are business dates: a day starts at the store's ``day_start_hour`` in its time zone.
"""

from __future__ import annotations

import contextlib
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import asyncpg
import msgspec
import structlog
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from metrica.actors.live import business_day
from metrica.api.auth import viewer_guard
from metrica.api.errors import ApiError
from metrica.api.services import Services
from metrica.db import queries, site
from metrica.jobs.rollups import OVERLAP, DayRollup, HourRollup, compute_days, day_hours
from metrica.site import Store

__all__ = ["ROUTERS", "DayRow", "Heatmap", "history_router", "store_days"]

log = structlog.get_logger(__name__)

Id = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
Deps = NamedDependency[Services]
MAX_DAYS = 3700  # ~ten years, as the traffic report's day buckets
MAX_WEEKS = 53
_LIVE_CHUNK = 366  # days computed from raw events per query batch


class DayRow(msgspec.Struct, kw_only=True):
    """One business day of a store (GET /api/stores/{id}/days)."""

    date: date  # the business date
    day_start: datetime  # in the store's time zone
    day_end: datetime
    in_count: int  # entrance INs (visits)
    out_count: int
    peak_occupancy: int  # highest "inside" during the day
    peak_at: datetime | None  # when it was first reached (store time); None when nobody was inside
    avg_dwell_seconds: float | None  # ∫ occupancy dt ÷ visits; None with no visits
    camera_uptime: float | None  # share of the day (so far) the store's cameras were running, 0..1
    live: bool  # computed from raw events now (today, or late events not rolled up yet)


class Heatmap(msgspec.Struct, kw_only=True):
    """Average entrance INs per business day, by weekday (Monday first) and local clock hour."""

    store_id: int
    timezone: str
    weeks: int
    from_: date = msgspec.field(name="from")  # first business date averaged (a Monday)
    to: date  # last one (a Sunday)
    days: int  # business days averaged (7 × weeks)
    hours: list[int]  # column labels: local clock hours 0..23
    weekdays: list[list[float]]  # 7 rows (Monday first) × 24 hours


class _Day(msgspec.Struct, kw_only=True):
    rollup: DayRollup
    uptime: float | None
    live: bool


def _parse_date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    parsed: date | None = None
    with contextlib.suppress(ValueError):
        parsed = date.fromisoformat(value.strip()) if len(value.strip()) == 10 else None
    if parsed is None:
        raise ApiError(400, f"{name}: expected a date as YYYY-MM-DD, got {value!r}")
    if not 2000 <= parsed.year <= 2100:
        raise ApiError(400, f"{name}: {value!r} is outside the years 2000–2100")
    return parsed


def _uptime(cameras: dict[int, tuple[float, float]]) -> float | None:
    running = sum(r for r, _ in cameras.values())
    observed = sum(o for _, o in cameras.values())
    return min(1.0, running / observed) if observed > 0 else None


async def store_days(
    pool: asyncpg.Pool,
    store: Store,
    first: date,
    last: date,
    *,
    now: datetime,
    hours: bool = False,
) -> list[_Day]:
    """Every business day in [first, last] (none after today): rollup rows where they are complete, the
    raw events otherwise. ``hours`` also fills each day's hourly rows (INs only for rolled-up ones)."""
    today = business_day(store, now)[0]
    last = min(last, today)
    if first > last:
        return []
    daily, cams, hourly = await queries.rolled_days(pool, store.id, first, last, hours=hours)
    today_start = business_day(store, now)[1]
    # Days holding crossings the rollups may not reflect yet (a late batch, a lagging worker).
    late = await queries.late_hours(pool, store.id, day_hours(store, first)[0][0], today_start, OVERLAP)
    stale = {
        business_day(store, h + e)[0]
        for h in late
        for e in (timedelta(0), timedelta(hours=1, microseconds=-1))
    }
    cam_by_day: dict[date, dict[int, tuple[float, float]]] = {}
    for r in cams:
        cam_by_day.setdefault(r["business_date"], {})[r["camera_id"]] = (
            float(r["running_seconds"]),
            float(r["observed_seconds"]),
        )
    hours_by_day: dict[date, list[HourRollup]] = {}
    for r in hourly:
        hours_by_day.setdefault(r["business_date"], []).append(
            HourRollup(
                hour_start=r["hour_start"],
                hour_end=r["hour_start"] + timedelta(hours=1),  # not read here
                ins=int(r["ins"]),
                outs=int(r["outs"]),
                peak_occupancy=int(r["peak_occupancy"]),
                occupancy_seconds=float(r["occupancy_seconds"]),
            )
        )
    out: dict[date, _Day] = {}
    for r in daily:
        if r["business_date"] in stale or r["day_end"] > now or r["computed_at"] < r["day_end"]:
            continue  # late events, the current day, or a day last rolled up while open: computed below
        d = r["business_date"]
        out[d] = _Day(
            rollup=DayRollup(
                store_id=store.id,
                business_date=d,
                day_start=r["day_start"],
                day_end=r["day_end"],
                hours=hours_by_day.get(d, []),
                ins=int(r["ins"]),
                outs=int(r["outs"]),
                peak_occupancy=int(r["peak_occupancy"]),
                peak_at=r["peak_at"],
                occupancy_seconds=float(r["occupancy_seconds"]),
            ),
            uptime=_uptime(cam_by_day.get(d, {})),
            live=False,
        )
    missing = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    missing = [d for d in missing if d not in out]
    for i in range(0, len(missing), _LIVE_CHUNK):
        for day in await compute_days(pool, store, missing[i : i + _LIVE_CHUNK], now=now):
            out[day.business_date] = _Day(rollup=day, uptime=_uptime(day.cameras), live=True)
    if missing:
        log.debug("history.live_days", store_id=store.id, days=len(missing))
    return [out[d] for d in sorted(out)]


@get(
    "/api/stores/{store_id:int}/days",
    summary="One row per business day: visitors, peak occupancy, average dwell, camera uptime",
    description=(
        "`from`/`to`: business dates `YYYY-MM-DD`, both included (a business day starts at the store's"
        " day_start_hour in its time zone). Defaults: the 30 days ending today; days after today are left out;"
        " at most 3700 days. Answer: a JSON list, oldest first, of"
        " `{date, day_start, day_end, in_count, out_count, peak_occupancy, peak_at, avg_dwell_seconds,"
        " camera_uptime, live}`: `day_start`/`day_end`/`peak_at` are ISO date-times in the store's zone;"
        " `in_count`/`out_count` count entrance lines; `peak_occupancy` is the highest number inside (IN − OUT"
        " since the day's start, never below zero) and `peak_at` when it was first reached (null when nobody"
        " was inside); `avg_dwell_seconds` = ∫occupancy dt ÷ visits (null with no visits);"
        " `camera_uptime` = time the store's cameras were running ÷ time observed (0..1; null with no"
        " camera); `live` is true for a day computed from raw events now (today, or late events the worker"
        " has not rolled up yet) rather than read from the rollups."
    ),
    tags=["history"],
)
async def get_days(
    services: Deps,
    store_id: Id,
    from_: Annotated[str | None, QueryParameter(name="from", max_length=64)] = None,
    to: Annotated[str | None, QueryParameter(max_length=64)] = None,
) -> list[DayRow]:
    store = await site.get_store(services.pool, store_id)
    now = datetime.now(UTC)
    today = business_day(store, now)[0]
    last = _parse_date("to", to) or today
    first = _parse_date("from", from_) or (last - timedelta(days=29))
    if first > last:
        raise ApiError(400, f"from ({first.isoformat()}) must not be after to ({last.isoformat()})")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(400, f"the range spans {(last - first).days + 1} days: at most {MAX_DAYS}")
    tz = zoneinfo.ZoneInfo(store.timezone)
    days = await store_days(services.pool, store, first, last, now=now)
    return [
        DayRow(
            date=x.rollup.business_date,
            day_start=x.rollup.day_start.astimezone(tz),
            day_end=x.rollup.day_end.astimezone(tz),
            in_count=x.rollup.ins,
            out_count=x.rollup.outs,
            peak_occupancy=x.rollup.peak_occupancy,
            peak_at=x.rollup.peak_at.astimezone(tz) if x.rollup.peak_at else None,
            avg_dwell_seconds=x.rollup.avg_dwell_seconds,
            camera_uptime=x.uptime,
            live=x.live,
        )
        for x in days
    ]


@get(
    "/api/stores/{store_id:int}/heatmap",
    summary="Average visitors by weekday and hour over the last complete weeks",
    description=(
        "`weeks`: 1..53 (default 4) complete weeks, Monday to Sunday, ending on the last Sunday on or before"
        " `to` (a business date `YYYY-MM-DD`; default and latest: yesterday, the last complete business day)."
        " Answer: `{store_id, timezone, weeks, from, to, days, hours, weekdays}`: `weekdays` is 7 rows"
        " (Monday first; the weekday of the business date) × 24 columns (`hours`: the local clock hour 0..23"
        " in the store's zone) of entrance INs averaged over the `weeks` days of that weekday; `days` ="
        " business days averaged (7 × weeks); `from`/`to` the first and last of them. On a fall-back day both"
        " runs of the repeated hour add to its column; a spring-forward day adds nothing to the skipped one."
    ),
    tags=["history"],
)
async def get_heatmap(
    services: Deps,
    store_id: Id,
    weeks: Annotated[int, QueryParameter(ge=1, le=MAX_WEEKS)] = 4,
    to: Annotated[str | None, QueryParameter(max_length=64)] = None,
) -> Heatmap:
    store = await site.get_store(services.pool, store_id)
    now = datetime.now(UTC)
    yesterday = business_day(store, now)[0] - timedelta(days=1)
    last = min(_parse_date("to", to) or yesterday, yesterday)
    last -= timedelta(days=(last.weekday() - 6) % 7)  # back to a Sunday
    first = last - timedelta(days=7 * weeks - 1)
    tz = zoneinfo.ZoneInfo(store.timezone)
    grid = [[0.0] * 24 for _ in range(7)]
    for x in await store_days(services.pool, store, first, last, now=now, hours=True):
        row = grid[x.rollup.business_date.weekday()]
        for h in x.rollup.hours:
            row[h.hour_start.astimezone(tz).hour] += h.ins
    return Heatmap(
        store_id=store.id,
        timezone=store.timezone,
        weeks=weeks,
        from_=first,
        to=last,
        days=7 * weeks,
        hours=list(range(24)),
        weekdays=[[round(v / weeks, 3) for v in row] for row in grid],
    )


history_router = Router(
    path="/",
    guards=[viewer_guard],
    route_handlers=[get_days, get_heatmap],
    security=[{"BearerToken": []}],
)

ROUTERS: list[Router] = [history_router]
