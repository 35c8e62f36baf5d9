"""Rollups: hourly and daily visitors, peak occupancy, dwell and camera uptime per store, line and camera.

A business day is recomputed as a whole from the raw ``crossings`` (and ``camera_status``) and its rows
replaced in one transaction, so recomputing is idempotent and a late batch (an outbox replayed after an
outage) only needs its days recomputed. Hours step from the day's start (``day_start_hour`` in the store's
zone), so a DST day has 23 or 25 hourly rows.

Occupancy is the entrance IN − OUT since the day began, never below zero — with S the running sum of ±1 by
ts, occupancy = S − min(0, min prefix of S), as in the live hub. ``occupancy_seconds`` is ∫ occupancy dt
(a step function) and average dwell is ∫ occupancy dt ÷ visits (DESIGN.md).

`rollup_pass` runs every minute under `metrica worker`: it recomputes the store-days touched by crossings
inserted since the last pass (``rollup_state.rolled_inserted_at``, minus an overlap since ``inserted_at`` is
a transaction's start time), plus every day that was open since the last pass, then advances the watermark.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import structlog
from arq.cron import CronJob, cron

from metrica.actors.live import business_day, local_day_start
from metrica.db import site
from metrica.site import Store

__all__ = [
    "CRON_JOBS",
    "FUNCTIONS",
    "OVERLAP",
    "DayRollup",
    "HourRollup",
    "RollupPassResult",
    "compute_days",
    "day_hours",
    "rollup_full_job",
    "rollup_pass",
    "rollup_pass_job",
    "rollup_store_day",
    "rollup_store_days",
]

log = structlog.get_logger(__name__)

# Re-read crossings inserted this long before the watermark: inserted_at is a transaction's start time, so
# a transaction that started earlier may commit after a pass has read past it.
OVERLAP = timedelta(minutes=5)
_HOUR = timedelta(hours=1)
_CHUNK_DAYS = 31  # days of one store recomputed per transaction in a pass
# Advisory lock keys: one pass at a time; one recomputation of a store at a time.
_PASS_LOCK = 0x6D657472  # "metr"
_STORE_LOCK_NS = 0x726F6C6C  # "roll" (two-key form: namespace, store id)


class HourRollup(msgspec.Struct, kw_only=True):
    hour_start: datetime  # UTC
    hour_end: datetime
    ins: int = 0
    outs: int = 0
    peak_occupancy: int = 0
    peak_at: datetime | None = None  # first instant the hour's peak was reached; None when it is 0
    occupancy_seconds: float = 0.0


class LineRollup(msgspec.Struct, kw_only=True):
    camera_id: int
    line_id: int
    line: str  # the name of the latest crossing counted in the period
    footfall: bool
    hour_start: datetime | None  # None: the whole day
    ins: int
    outs: int


class DayRollup(msgspec.Struct, kw_only=True):
    """One business day of one store, as `compute_days` derives it from raw events."""

    store_id: int
    business_date: date
    day_start: datetime  # UTC
    day_end: datetime
    hours: list[HourRollup]
    ins: int = 0
    outs: int = 0
    peak_occupancy: int = 0
    peak_at: datetime | None = None
    occupancy_seconds: float = 0.0
    lines: list[LineRollup] = msgspec.field(default_factory=list)  # hourly rows, non-empty only
    cameras: dict[int, tuple[float, float]] = msgspec.field(default_factory=dict)  # id → (running, observed)

    @property
    def avg_dwell_seconds(self) -> float | None:
        return self.occupancy_seconds / self.ins if self.ins else None


class RollupPassResult(msgspec.Struct, kw_only=True):
    full: bool
    skipped: bool = False  # another pass held the lock (an incremental pass does not wait)
    stores: int = 0
    days: int = 0  # store-days recomputed
    expired_days: int = 0  # store-days older than the retention cutoff, left as they are
    watermark: datetime | None = None  # rollup_state.rolled_inserted_at after the pass
    seconds: float = 0.0


def day_hours(store: Store, business_date: date) -> list[tuple[datetime, datetime]]:
    """The hourly buckets of a business day, UTC: whole hours from its start, the last one cut at its end."""
    start = local_day_start(store, business_date)
    end = local_day_start(store, business_date + timedelta(days=1))
    out = []
    cur = start
    while cur < end:
        nxt = min(cur + _HOUR, end)
        out.append((cur, nxt))
        cur = nxt
    return out


# One row per hour of the days asked for. Edge rows (delta 0) at each hour start split the occupancy step
# function at the hour boundaries and carry the occupancy into the hour; at equal instants an edge comes
# first and an IN before an OUT (a person enters before leaving), then by id, so the result is
# deterministic. A peak is a level reached by a crossing or held for some time ("held"): an edge followed by
# a crossing at the same instant does not count.
_HOURLY_SQL = """
WITH hours AS (
    SELECT h.hour_start, h.hour_end, h.bdate
    FROM unnest($2::timestamptz[], $3::timestamptz[], $4::date[]) AS h(hour_start, hour_end, bdate)
), days AS (
    SELECT bdate, min(hour_start) AS day_start, max(hour_end) AS day_end FROM hours GROUP BY bdate
), ev AS (
    SELECT d.bdate, d.day_end, c.ts, CASE c.direction WHEN 'in' THEN 1 ELSE -1 END AS delta,
           NULL::timestamptz AS edge, c.id
    FROM days d
    JOIN crossings c ON c.store_id = $1 AND c.footfall AND c.ts >= d.day_start AND c.ts < d.day_end
                    AND c.ts >= $6 AND c.ts < $7  -- constant bounds: an index range scan, not the store's history
    UNION ALL
    SELECT h.bdate, d.day_end, h.hour_start, 0, h.hour_start, NULL::uuid
    FROM hours h JOIN days d USING (bdate)
), run AS (
    SELECT bdate, ts, delta,
           sum(delta) OVER w AS s,
           max(edge) OVER w AS hour_start,
           lead(ts, 1, day_end) OVER w AS next_ts,
           row_number() OVER w AS ord
    FROM ev
    WINDOW w AS (PARTITION BY bdate ORDER BY ts, edge IS NULL, delta DESC, id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), occ AS (
    SELECT bdate, hour_start, ts, delta,
           s - least(0, min(s) OVER (PARTITION BY bdate ORDER BY ord)) AS occ,
           greatest(0, extract(epoch FROM least(next_ts, $5::timestamptz) - ts)) AS seconds
    FROM run
), held AS (
    SELECT *, delta <> 0 OR seconds > 0 AS held FROM occ
), peaks AS (
    SELECT *, max(occ) FILTER (WHERE held) OVER (PARTITION BY bdate, hour_start) AS hour_peak FROM held
)
SELECT bdate, hour_start,
       count(*) FILTER (WHERE delta = 1) AS ins,
       count(*) FILTER (WHERE delta = -1) AS outs,
       coalesce(max(occ) FILTER (WHERE held), 0) AS peak,
       min(ts) FILTER (WHERE held AND occ = hour_peak AND occ > 0) AS peak_at,
       sum(occ * seconds)::float8 AS occupancy_seconds
FROM peaks
GROUP BY bdate, hour_start
"""

# Per line and hour, non-empty hours only; a line's name is the one its latest crossing carried. The crossings
# of the whole span are read by one index range scan and put in their hour by width_bucket over the sorted hour
# starts (a join on ts ranges let the planner scan the store's whole history for one day).
_LINES_SQL = """
WITH c AS (
    SELECT c.ts, c.camera_id, c.line_id, c.line, c.footfall, c.direction, width_bucket(c.ts, $2::timestamptz[]) AS i
    FROM crossings c WHERE c.store_id = $1 AND c.ts >= $5 AND c.ts < $6
)
SELECT ($4::date[])[i] AS bdate, ($2::timestamptz[])[i] AS hour_start, line_id,
       (array_agg(camera_id ORDER BY ts DESC))[1] AS camera_id,
       (array_agg(line ORDER BY ts DESC))[1] AS line,
       bool_or(footfall) AS footfall,
       count(*) FILTER (WHERE direction = 'in') AS ins,
       count(*) FILTER (WHERE direction = 'out') AS outs
FROM c
WHERE i > 0 AND ts < ($3::timestamptz[])[i]  -- inside its hour (the dates asked for need not be consecutive)
GROUP BY i, line_id
"""

# Every camera of the store with its state changes in [$2, $3) and the last one before $2.
_STATUS_SQL = """
SELECT c.id AS camera_id, s.ts, s.state
FROM cameras c
LEFT JOIN LATERAL (
    (SELECT ts, state FROM camera_status WHERE camera_id = c.id AND ts < $2 ORDER BY ts DESC LIMIT 1)
    UNION ALL
    SELECT ts, state FROM camera_status WHERE camera_id = c.id AND ts >= $2 AND ts < $3
) s ON true
WHERE c.store_id = $1
ORDER BY c.id, s.ts
"""


def _uptime(changes: Sequence[tuple[datetime, str]], start: datetime, end: datetime) -> float:
    """Seconds in state 'running' within [start, end) given the state changes sorted by ts."""
    total = 0.0
    for i, (ts, state) in enumerate(changes):
        if state != "running":
            continue
        until = changes[i + 1][0] if i + 1 < len(changes) else end
        a, b = max(ts, start), min(until, end)
        if b > a:
            total += (b - a).total_seconds()
    return total


async def compute_days(
    conn: asyncpg.Connection | asyncpg.Pool,
    store: Store,
    dates: Iterable[date],
    *,
    now: datetime | None = None,
) -> list[DayRollup]:
    """The rollups of ``dates`` (business days of ``store``) from the raw tables; writes nothing.

    Occupancy seconds and camera observed time run up to ``now`` (default: the wall clock) for a day not
    yet over. Read-only: the API uses it for days the rollups may not reflect yet.
    """
    now = now or datetime.now(UTC)
    dates = sorted(set(dates))
    if not dates:
        return []
    days: dict[date, DayRollup] = {}
    starts: list[datetime] = []
    ends: list[datetime] = []
    bdates: list[date] = []
    for d in dates:
        hours = day_hours(store, d)
        days[d] = DayRollup(
            store_id=store.id,
            business_date=d,
            day_start=hours[0][0],
            day_end=hours[-1][1],
            hours=[HourRollup(hour_start=a, hour_end=b) for a, b in hours],
        )
        starts += [a for a, _ in hours]
        ends += [b for _, b in hours]
        bdates += [d] * len(hours)
    args = (store.id, starts, ends, bdates)
    by_hour = {(d, h.hour_start): h for d, day in days.items() for h in day.hours}
    span = (starts[0], ends[-1])
    for r in await conn.fetch(_HOURLY_SQL, *args, now, *span):
        h = by_hour[(r["bdate"], r["hour_start"])]
        h.ins, h.outs = int(r["ins"]), int(r["outs"])
        h.peak_occupancy, h.peak_at = int(r["peak"]), r["peak_at"]
        h.occupancy_seconds = float(r["occupancy_seconds"])
    for r in await conn.fetch(_LINES_SQL, *args, *span):
        days[r["bdate"]].lines.append(
            LineRollup(
                camera_id=r["camera_id"],
                line_id=r["line_id"],
                line=r["line"],
                footfall=r["footfall"],
                hour_start=r["hour_start"],
                ins=int(r["ins"]),
                outs=int(r["outs"]),
            )
        )
    changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for r in await conn.fetch(_STATUS_SQL, store.id, days[dates[0]].day_start, days[dates[-1]].day_end):
        changes[r["camera_id"]]  # every camera gets a row, with or without status
        if r["ts"] is not None:
            changes[r["camera_id"]].append((r["ts"], r["state"]))
    for day in days.values():
        day.ins = sum(h.ins for h in day.hours)
        day.outs = sum(h.outs for h in day.hours)
        day.peak_occupancy = max(h.peak_occupancy for h in day.hours)
        day.occupancy_seconds = math.fsum(h.occupancy_seconds for h in day.hours)
        if day.peak_occupancy > 0:
            day.peak_at = min(
                h.peak_at for h in day.hours if h.peak_occupancy == day.peak_occupancy and h.peak_at
            )
        day.lines.sort(key=lambda x: (x.line_id, x.hour_start or day.day_start))
        observed_end = max(day.day_start, min(now, day.day_end))
        observed = (observed_end - day.day_start).total_seconds()
        for camera_id, ch in changes.items():
            day.cameras[camera_id] = (_uptime(ch, day.day_start, observed_end), observed)
    return [days[d] for d in dates]


def line_days(day: DayRollup) -> list[LineRollup]:
    """A day's per-line totals from its hourly rows (name and camera from the latest hour)."""
    out: dict[int, LineRollup] = {}
    for h in day.lines:  # sorted by line, then hour
        cur = out.get(h.line_id)
        if cur is None:
            out[h.line_id] = msgspec.structs.replace(h, hour_start=None)
        else:
            cur.ins += h.ins
            cur.outs += h.outs
            cur.footfall = cur.footfall or h.footfall
            cur.line, cur.camera_id = h.line, h.camera_id
    return list(out.values())


async def _write(conn: asyncpg.Connection, store: Store, days: Sequence[DayRollup]) -> None:
    """Replace the rows of ``days`` (in the caller's transaction)."""
    dates = [d.business_date for d in days]
    sid = store.id
    for table in ("store_hourly", "store_daily", "line_hourly", "line_daily", "camera_daily"):
        await conn.execute(f"DELETE FROM {table} WHERE store_id = $1 AND business_date = ANY($2)", sid, dates)
    hours = [(d.business_date, h) for d in days for h in d.hours]
    # ON CONFLICT: an hour may still belong to another date's rows if the store's day_start_hour changed.
    await conn.execute(
        """INSERT INTO store_hourly (store_id, hour_start, business_date, ins, outs, peak_occupancy,
                                     occupancy_seconds, computed_at)
           SELECT $1, * , now() FROM unnest($2::timestamptz[], $3::date[], $4::int[], $5::int[], $6::int[],
                                             $7::float8[])
           ON CONFLICT (store_id, hour_start) DO UPDATE SET
               business_date = EXCLUDED.business_date, ins = EXCLUDED.ins, outs = EXCLUDED.outs,
               peak_occupancy = EXCLUDED.peak_occupancy, occupancy_seconds = EXCLUDED.occupancy_seconds,
               computed_at = EXCLUDED.computed_at""",
        sid,
        [h.hour_start for _, h in hours],
        [d for d, _ in hours],
        [h.ins for _, h in hours],
        [h.outs for _, h in hours],
        [h.peak_occupancy for _, h in hours],
        [h.occupancy_seconds for _, h in hours],
    )
    await conn.execute(
        """INSERT INTO store_daily (store_id, business_date, day_start, day_end, ins, outs, peak_occupancy,
                                    peak_at, occupancy_seconds, avg_dwell_seconds, computed_at)
           SELECT $1, *, now() FROM unnest($2::date[], $3::timestamptz[], $4::timestamptz[], $5::int[],
                                            $6::int[], $7::int[], $8::timestamptz[], $9::float8[],
                                            $10::float8[])
           ON CONFLICT (store_id, business_date) DO UPDATE SET
               day_start = EXCLUDED.day_start, day_end = EXCLUDED.day_end, ins = EXCLUDED.ins,
               outs = EXCLUDED.outs, peak_occupancy = EXCLUDED.peak_occupancy, peak_at = EXCLUDED.peak_at,
               occupancy_seconds = EXCLUDED.occupancy_seconds, avg_dwell_seconds = EXCLUDED.avg_dwell_seconds,
               computed_at = EXCLUDED.computed_at""",
        sid,
        dates,
        [d.day_start for d in days],
        [d.day_end for d in days],
        [d.ins for d in days],
        [d.outs for d in days],
        [d.peak_occupancy for d in days],
        [d.peak_at for d in days],
        [d.occupancy_seconds for d in days],
        [d.avg_dwell_seconds for d in days],
    )
    lh = [(d.business_date, x) for d in days for x in d.lines]
    if lh:
        await conn.execute(
            """INSERT INTO line_hourly (store_id, camera_id, line_id, line, footfall, hour_start, business_date,
                                        ins, outs, computed_at)
               SELECT $1, *, now() FROM unnest($2::int[], $3::int[], $4::text[], $5::bool[],
                                                $6::timestamptz[], $7::date[], $8::int[], $9::int[])
               ON CONFLICT (line_id, hour_start) DO UPDATE SET
                   store_id = EXCLUDED.store_id, camera_id = EXCLUDED.camera_id, line = EXCLUDED.line,
                   footfall = EXCLUDED.footfall, business_date = EXCLUDED.business_date, ins = EXCLUDED.ins,
                   outs = EXCLUDED.outs, computed_at = EXCLUDED.computed_at""",
            sid,
            [x.camera_id for _, x in lh],
            [x.line_id for _, x in lh],
            [x.line for _, x in lh],
            [x.footfall for _, x in lh],
            [x.hour_start for _, x in lh],
            [d for d, _ in lh],
            [x.ins for _, x in lh],
            [x.outs for _, x in lh],
        )
        ld = [(d.business_date, x) for d in days for x in line_days(d)]
        await conn.execute(
            """INSERT INTO line_daily (store_id, camera_id, line_id, line, footfall, business_date, ins, outs,
                                       computed_at)
               SELECT $1, *, now() FROM unnest($2::int[], $3::int[], $4::text[], $5::bool[], $6::date[],
                                                $7::int[], $8::int[])
               ON CONFLICT (line_id, business_date) DO UPDATE SET
                   store_id = EXCLUDED.store_id, camera_id = EXCLUDED.camera_id, line = EXCLUDED.line,
                   footfall = EXCLUDED.footfall, ins = EXCLUDED.ins, outs = EXCLUDED.outs,
                   computed_at = EXCLUDED.computed_at""",
            sid,
            [x.camera_id for _, x in ld],
            [x.line_id for _, x in ld],
            [x.line for _, x in ld],
            [x.footfall for _, x in ld],
            [d for d, _ in ld],
            [x.ins for _, x in ld],
            [x.outs for _, x in ld],
        )
    cams = [(d.business_date, cid, up) for d in days for cid, up in d.cameras.items()]
    if cams:
        await conn.execute(
            """INSERT INTO camera_daily (store_id, camera_id, business_date, running_seconds, observed_seconds,
                                         computed_at)
               SELECT $1, *, now() FROM unnest($2::int[], $3::date[], $4::float8[], $5::float8[])
               ON CONFLICT (camera_id, business_date) DO UPDATE SET
                   store_id = EXCLUDED.store_id, running_seconds = EXCLUDED.running_seconds,
                   observed_seconds = EXCLUDED.observed_seconds, computed_at = EXCLUDED.computed_at""",
            sid,
            [c for _, c, _ in cams],
            [d for d, _, _ in cams],
            [u[0] for _, _, u in cams],
            [u[1] for _, _, u in cams],
        )


async def _rollup_on(
    conn: asyncpg.Connection, store: Store, dates: Sequence[date], now: datetime | None
) -> list[DayRollup]:
    async with conn.transaction():
        # Two recomputations of one store (the cron pass, a report job) take turns instead of interleaving.
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _STORE_LOCK_NS, store.id)
        days = await compute_days(conn, store, dates, now=now)
        await _write(conn, store, days)
    return days


async def rollup_store_days(
    pool: asyncpg.Pool | asyncpg.Connection,
    store: Store,
    dates: Iterable[date],
    *,
    now: datetime | None = None,
) -> list[DayRollup]:
    """Recompute ``dates`` of ``store`` from the raw tables and replace their rows, in one transaction."""
    dates = sorted(set(dates))
    if not dates:
        return []
    if isinstance(pool, asyncpg.Connection):
        return await _rollup_on(pool, store, dates, now)
    async with pool.acquire() as conn:
        return await _rollup_on(conn, store, dates, now)


async def rollup_store_day(
    pool: asyncpg.Pool, store: Store, business_date: date, *, now: datetime | None = None
) -> None:
    """Recompute one business day of one store (every hour, zeros included) in one transaction. Idempotent."""
    await rollup_store_days(pool, store, [business_date], now=now)


def _days_of_hours(store: Store, hours: Iterable[datetime]) -> set[date]:
    """Business dates that the UTC hours [h, h + 1h) touch (a day may start mid-hour in a :30 zone)."""
    out: set[date] = set()
    for h in hours:
        out.add(business_day(store, h)[0])
        out.add(business_day(store, h + _HOUR - timedelta(microseconds=1))[0])
    return out


def _days_between(store: Store, a: datetime, b: datetime) -> set[date]:
    """Business dates of every day open at some instant in [a, b]."""
    first, last = business_day(store, a)[0], business_day(store, b)[0]
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


async def rollup_pass(
    pool: asyncpg.Pool,
    *,
    full: bool = False,
    now: datetime | None = None,
    retention_days: int | None = None,
) -> RollupPassResult:
    """One rollup pass (see the module doc). ``full``: every store-day that has a crossing.

    Days that began before ``now - retention_days`` are not recomputed (their raw events are partly gone):
    a late event for one is logged and left out. An incremental pass skips when another pass is running;
    a full pass waits for it.
    """
    t0 = time.perf_counter()
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days) if retention_days else None
    result = RollupPassResult(full=full)
    async with pool.acquire() as conn:
        if full:
            await conn.execute("SELECT pg_advisory_lock($1)", _PASS_LOCK)
        elif not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _PASS_LOCK):
            log.info("rollup.pass_skipped", reason="another pass is running")
            result.skipped = True
            return result
        try:
            await _pass(conn, result, full=full, now=now, cutoff=cutoff)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _PASS_LOCK)
    result.seconds = time.perf_counter() - t0
    log.info(
        "rollup.pass_done",
        full=full,
        stores=result.stores,
        days=result.days,
        expired_days=result.expired_days,
        seconds=round(result.seconds, 3),
    )
    return result


async def _pass(
    conn: asyncpg.Connection, result: RollupPassResult, *, full: bool, now: datetime, cutoff: datetime | None
) -> None:
    state = await conn.fetchrow("SELECT updated_at FROM rollup_state")
    last_pass = state["updated_at"] if state else now
    where = "" if full else "WHERE inserted_at > (SELECT rolled_inserted_at FROM rollup_state) - $1::interval"
    rows = await conn.fetch(
        f"""SELECT store_id, date_bin('1 hour', ts, TIMESTAMPTZ 'epoch') AS hour, max(inserted_at) AS newest
            FROM crossings {where} GROUP BY 1, 2""",
        *(() if full else (OVERLAP,)),
    )
    hours: dict[int, list[datetime]] = defaultdict(list)
    newest: datetime | None = None
    for r in rows:
        hours[r["store_id"]].append(r["hour"])
        newest = r["newest"] if newest is None else max(newest, r["newest"])
    stores = {s.id: s for s in await site.list_stores(conn)}
    unknown = sorted(set(hours) - set(stores))
    if unknown:
        log.warning("rollup.unknown_stores", store_ids=unknown)
    since = min(last_pass, now) - OVERLAP
    for store in stores.values():
        # Days touched by new crossings, plus every day open since the last pass (today, a just-closed one)
        # so that their empty hours, occupancy up to now and camera uptime are written too.
        dates = _days_of_hours(store, hours.get(store.id, ())) | _days_between(store, since, now)
        today = business_day(store, now)[0]
        dates = {d for d in dates if d <= today}
        if cutoff is not None:
            expired = sorted(d for d in dates if local_day_start(store, d) < cutoff)
            if expired:
                log.warning(
                    "rollup.day_expired",
                    store_id=store.id,
                    dates=[d.isoformat() for d in expired[:10]],
                    count=len(expired),
                    reason="raw events older than the retention period are partly deleted",
                )
                result.expired_days += len(expired)
                dates -= set(expired)
        if not dates:
            continue
        ordered = sorted(dates)
        for i in range(0, len(ordered), _CHUNK_DAYS):
            await _rollup_on(conn, store, ordered[i : i + _CHUNK_DAYS], now)
        result.stores += 1
        result.days += len(ordered)
    result.watermark = await conn.fetchval(
        """UPDATE rollup_state SET rolled_inserted_at = greatest(rolled_inserted_at, coalesce($1::timestamptz, '-infinity')),
                                   updated_at = $2
           RETURNING CASE WHEN rolled_inserted_at = '-infinity' THEN NULL ELSE rolled_inserted_at END""",
        newest,
        now,
    )


# -- arq ---------------------------------------------------------------------------------------------


async def rollup_pass_job(ctx: dict[str, Any], full: bool = False) -> dict[str, Any]:
    """arq: one rollup pass over ``ctx["pool"]`` (incremental unless ``full``)."""
    settings = ctx.get("settings")
    result = await rollup_pass(
        ctx["pool"], full=full, retention_days=getattr(settings, "retention_days", None)
    )
    return dict(msgspec.to_builtins(result))


async def rollup_full_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """arq: a full pass (every store-day with a crossing); an operator enqueues it after a bulk import."""
    return await rollup_pass_job(ctx, full=True)


FUNCTIONS: list[Any] = [rollup_pass_job, rollup_full_job]
# Every minute; unique=True gives each tick one job id, so several workers run a tick once.
CRON_JOBS: list[CronJob] = [
    cron(rollup_pass_job, name="cron:rollup_pass", second=0, unique=True, timeout=1800, max_tries=1)
]
