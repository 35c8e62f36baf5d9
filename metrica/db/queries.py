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
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from metrica.events import CameraStatus

__all__ = [
    "BucketRow",
    "camera_status_latest",
    "footfall_since",
    "footfall_totals",
    "inflow_since",
    "ping",
    "traffic_buckets",
]

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


async def footfall_totals(pool: asyncpg.Pool, store_id: int, since: datetime) -> tuple[int, int]:
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
    extra = ", max(line) AS line, bool_or(footfall) AS footfall" if by == "line" else ""
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
