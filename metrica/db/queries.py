"""Read-only queries for the API and the live hub.

Traffic buckets are computed from bucket boundaries the caller computes in the store's time zone (see
`metrica.api.traffic`): ``width_bucket(ts, boundaries)`` puts each crossing in its bucket with one index
range scan. Boundaries as instants, rather than ``date_trunc(... AT TIME ZONE ...)`` on local wall-clock
times, keep the repeated hour of a fall-back day as two buckets (a 25-hour day has 25 hourly buckets) and
let days start at the store's ``day_start_hour``; the SQL is plain PostgreSQL, TimescaleDB or not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import asyncpg
import msgspec

from metrica.events import CameraStatus

__all__ = [
    "BucketRow",
    "StoreBucketRow",
    "camera_status_latest",
    "footfall_since",
    "footfall_totals",
    "inflow_since",
    "late_hours",
    "ping",
    "rolled_days",
    "rollup_buckets",
    "rollup_horizon",
    "traffic_buckets",
]

_BEFORE_ANY_INSERT = datetime(1970, 1, 1, tzinfo=UTC)  # every stored crossing was inserted after it
QUERY_TIMEOUT = 10.0  # seconds: a read the API waits on longer than this is answered 503


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> bool:
    """True when the database answers ``SELECT 1`` within ``timeout`` seconds."""
    try:
        async with pool.acquire(timeout=timeout) as conn:
            return bool(await conn.fetchval("SELECT 1", timeout=timeout) == 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def footfall_since(
    pool: asyncpg.Pool, store_id: int, since: datetime
) -> list[tuple[uuid.UUID, datetime, Literal["in", "out"]]]:
    """(id, ts, direction) of the store's entrance crossings stamped at or after ``since``, by ts."""
    rows = await pool.fetch(
        "SELECT id, ts, direction FROM crossings WHERE store_id = $1 AND footfall AND ts >= $2 ORDER BY ts",
        store_id,
        since,
        timeout=QUERY_TIMEOUT,
    )
    return [(r["id"], r["ts"], r["direction"]) for r in rows]


async def footfall_totals(
    pool: asyncpg.Pool | asyncpg.Connection, store_id: int, since: datetime
) -> tuple[int, int]:
    """(INs, OUTs) on the store's entrance lines stamped at or after ``since``."""
    row = await pool.fetchrow(
        """SELECT count(*) FILTER (WHERE direction = 'in') AS ins,
                  count(*) FILTER (WHERE direction = 'out') AS outs
           FROM crossings WHERE store_id = $1 AND footfall AND ts >= $2""",
        store_id,
        since,
        timeout=QUERY_TIMEOUT,
    )
    assert row is not None
    return int(row["ins"]), int(row["outs"])


async def inflow_since(pool: asyncpg.Pool, store_id: int, since: datetime) -> list[datetime]:
    """Timestamps of the store's entrance INs at or after ``since`` (the live inflow window), by ts."""
    rows = await pool.fetch(
        "SELECT ts FROM crossings WHERE store_id = $1 AND footfall AND direction = 'in' AND ts >= $2 ORDER BY ts",
        store_id,
        since,
        timeout=QUERY_TIMEOUT,
    )
    return [r["ts"] for r in rows]


class BucketRow(msgspec.Struct, frozen=True):
    """Counts of one bucket (0-based index into the boundaries) for one series key."""

    bucket: int
    camera_id: int | None
    line_id: int | None
    line: str | None
    footfall: bool | None
    ins: int
    outs: int


async def traffic_buckets(
    pool: asyncpg.Pool,
    store_id: int,
    boundaries: Sequence[datetime],
    *,
    by: Literal["store", "camera", "line"] = "store",
) -> list[BucketRow]:
    """Crossing counts per bucket ``[boundaries[i], boundaries[i+1])``; only non-empty buckets are returned.

    ``by="store"`` and ``by="camera"`` count entrance (footfall) lines only: store visits. ``by="line"``
    counts every line, each row naming its line (the latest name it was counted under) and footfall flag.
    """
    if len(boundaries) < 2:
        return []
    keys = {"store": "", "camera": ", camera_id", "line": ", camera_id, line_id"}[by]
    footfall = "" if by == "line" else "AND footfall"
    # The name of the bucket's latest crossing: rollups keep the same one (the name it was last counted under).
    extra = (
        ", (array_agg(line ORDER BY ts DESC))[1] AS line, bool_or(footfall) AS footfall"
        if by == "line"
        else ""
    )
    sql = f"""
        SELECT width_bucket(ts, $2::timestamptz[]) - 1 AS bucket{keys},
               count(*) FILTER (WHERE direction = 'in') AS ins,
               count(*) FILTER (WHERE direction = 'out') AS outs{extra}
        FROM crossings
        WHERE store_id = $1 AND ts >= $3 AND ts < $4 {footfall}
        GROUP BY 1{keys}
        ORDER BY 1{keys}"""
    rows = await pool.fetch(
        sql, store_id, list(boundaries), boundaries[0], boundaries[-1], timeout=QUERY_TIMEOUT
    )
    return [
        BucketRow(
            bucket=int(r["bucket"]),
            camera_id=r["camera_id"] if by != "store" else None,
            line_id=r["line_id"] if by == "line" else None,
            line=r["line"] if by == "line" else None,
            footfall=r["footfall"] if by == "line" else None,
            ins=int(r["ins"]),
            outs=int(r["outs"]),
        )
        for r in rows
    ]


# -- rollups (written by metrica.jobs.rollups) -------------------------------------------------------


async def _late_since(pool: asyncpg.Pool, overlap: timedelta) -> datetime:
    """Crossings inserted after this instant may be missing from the rollups (the watermark less ``overlap``).

    Read first and passed as a value: against a sub-select the planner cannot see that few rows qualify,
    and walked the store's whole history by ts instead of the few recent rows by ``inserted_at``."""
    watermark = await pool.fetchval("SELECT rolled_inserted_at FROM rollup_state", timeout=QUERY_TIMEOUT)
    if watermark is None or watermark.tzinfo is None:  # '-infinity' (asyncpg: a naive datetime.min): none yet
        return _BEFORE_ANY_INSERT
    return watermark - overlap


async def rollup_horizon(
    pool: asyncpg.Pool, store_id: int, start: datetime, end: datetime, overlap: timedelta
) -> datetime:
    """The instant before which the rollups reflect every stored crossing of the store in [start, end).

    ``end`` (the start of the current hour) unless a crossing stamped in [start, end) was inserted after the
    rollup watermark (less ``overlap``): a late batch the worker has not rolled up yet, or a lagging worker.
    """
    value = await pool.fetchval(
        """SELECT min(ts) FROM crossings
           WHERE store_id = $1 AND ts >= $2 AND ts < $3 AND inserted_at > $4""",
        store_id,
        start,
        end,
        await _late_since(pool, overlap),
        timeout=QUERY_TIMEOUT,
    )
    return end if value is None else min(end, value)


async def late_hours(
    pool: asyncpg.Pool, store_id: int, start: datetime, end: datetime, overlap: timedelta
) -> list[datetime]:
    """UTC hours (on the hour) holding a crossing of the store stamped in [start, end) and inserted after
    the rollup watermark (less ``overlap``): where the rollups may not reflect every stored crossing yet."""
    rows = await pool.fetch(
        """SELECT DISTINCT date_bin('1 hour', ts, TIMESTAMPTZ 'epoch') AS hour FROM crossings
           WHERE store_id = $1 AND ts >= $2 AND ts < $3 AND inserted_at > $4""",
        store_id,
        start,
        end,
        await _late_since(pool, overlap),
        timeout=QUERY_TIMEOUT,
    )
    return [r["hour"] for r in rows]


class StoreBucketRow(msgspec.Struct, frozen=True):
    """A store's rolled-up bucket: counts, peak occupancy and ∫ occupancy dt (average dwell = that ÷ ins)."""

    bucket: int
    ins: int
    outs: int
    peak_occupancy: int
    occupancy_seconds: float


async def rollup_buckets(
    pool: asyncpg.Pool,
    store_id: int,
    boundaries: Sequence[datetime],
    bucket: Literal["hour", "day"],
    *,
    by: Literal["store", "camera", "line"] = "store",
) -> tuple[list[StoreBucketRow], list[BucketRow]]:
    """Rolled-up counts per bucket of ``boundaries`` (hour edges, or business-day edges, on the store grid).

    Returns the store rows (every ``by``: they carry the peak and dwell) and, for ``by`` camera/line, the
    per-camera (entrance lines) or per-line rows, shaped like `traffic_buckets`.
    """
    if len(boundaries) < 2:
        return [], []
    edges, lo, hi = list(boundaries), boundaries[0], boundaries[-1]
    table, col = ("store_hourly", "hour_start") if bucket == "hour" else ("store_daily", "day_start")
    rows = await pool.fetch(
        f"""SELECT width_bucket({col}, $2::timestamptz[]) - 1 AS bucket, sum(ins) AS ins, sum(outs) AS outs,
                   max(peak_occupancy) AS peak, sum(occupancy_seconds)::float8 AS occ
            FROM {table} WHERE store_id = $1 AND {col} >= $3 AND {col} < $4
            GROUP BY 1 ORDER BY 1""",
        store_id,
        edges,
        lo,
        hi,
        timeout=QUERY_TIMEOUT,
    )
    stores = [
        StoreBucketRow(
            bucket=int(r["bucket"]),
            ins=int(r["ins"]),
            outs=int(r["outs"]),
            peak_occupancy=int(r["peak"]),
            occupancy_seconds=float(r["occ"]),
        )
        for r in rows
    ]
    if by == "store":
        return stores, []
    ltable = "line_hourly" if bucket == "hour" else "line_daily"
    # line_daily rows carry a date, not an instant: their day's start comes from store_daily (a rolled-up day
    # always has its store row).
    if bucket == "hour":
        where, bcol = "l.hour_start >= $3 AND l.hour_start < $4", "l.hour_start"
        join = ""
    else:
        where, bcol = "d.day_start >= $3 AND d.day_start < $4", "d.day_start"
        join = "JOIN store_daily d ON d.store_id = l.store_id AND d.business_date = l.business_date"
    if by == "camera":
        sql = f"""SELECT width_bucket({bcol}, $2::timestamptz[]) - 1 AS bucket, l.camera_id,
                         sum(l.ins) AS ins, sum(l.outs) AS outs
                  FROM {ltable} l {join}
                  WHERE l.store_id = $1 AND l.footfall AND {where}
                  GROUP BY 1, 2 ORDER BY 1, 2"""
    else:
        sql = f"""SELECT width_bucket({bcol}, $2::timestamptz[]) - 1 AS bucket, l.camera_id, l.line_id,
                         l.line, l.footfall, l.ins, l.outs
                  FROM {ltable} l {join}
                  WHERE l.store_id = $1 AND {where}
                  ORDER BY 1, 2, 3"""
    lrows = await pool.fetch(sql, store_id, edges, lo, hi, timeout=QUERY_TIMEOUT)
    return stores, [
        BucketRow(
            bucket=int(r["bucket"]),
            camera_id=r["camera_id"],
            line_id=r["line_id"] if by == "line" else None,
            line=r["line"] if by == "line" else None,
            footfall=r["footfall"] if by == "line" else None,
            ins=int(r["ins"]),
            outs=int(r["outs"]),
        )
        for r in lrows
    ]


async def rolled_days(
    pool: asyncpg.Pool, store_id: int, first: date, last: date, *, hours: bool = False
) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    """The store's rolled-up days in [first, last]: store_daily rows, camera uptime per day (summed over
    cameras), and with ``hours`` its store_hourly rows (business_date, hour_start, ins)."""
    daily = await pool.fetch(
        """SELECT business_date, day_start, day_end, ins, outs, peak_occupancy, peak_at, occupancy_seconds,
                  computed_at
           FROM store_daily WHERE store_id = $1 AND business_date BETWEEN $2 AND $3 ORDER BY business_date""",
        store_id,
        first,
        last,
        timeout=QUERY_TIMEOUT,
    )
    cameras = await pool.fetch(
        """SELECT business_date, camera_id, running_seconds, observed_seconds
           FROM camera_daily WHERE store_id = $1 AND business_date BETWEEN $2 AND $3""",
        store_id,
        first,
        last,
        timeout=QUERY_TIMEOUT,
    )
    hourly = []
    if hours:
        hourly = await pool.fetch(
            """SELECT business_date, hour_start, ins, outs, peak_occupancy, occupancy_seconds FROM store_hourly
               WHERE store_id = $1 AND business_date BETWEEN $2 AND $3 ORDER BY hour_start""",
            store_id,
            first,
            last,
            timeout=QUERY_TIMEOUT,
        )
    return daily, cameras, hourly


async def camera_status_latest(
    pool: asyncpg.Pool, camera_ids: Sequence[int] | None = None
) -> dict[int, CameraStatus]:
    """The last recorded status of each camera (all cameras, or those in ``camera_ids``)."""
    rows = await pool.fetch(
        """SELECT DISTINCT ON (camera_id) camera_id, ts, state, fps, error, restarts
           FROM camera_status
           WHERE $1::integer[] IS NULL OR camera_id = ANY($1::integer[])
           ORDER BY camera_id, ts DESC""",
        list(camera_ids) if camera_ids is not None else None,
        timeout=QUERY_TIMEOUT,
    )
    return {
        r["camera_id"]: CameraStatus(
            ts=r["ts"],
            camera_id=r["camera_id"],
            state=r["state"],
            fps=float(r["fps"]),
            error=r["error"],
            restarts=int(r["restarts"]),
        )
        for r in rows
    }
