"""Rollups at a year's scale: a full pass, an incremental pass and the traffic API over a generated history.

``metrica bench-rollups [--database-url URL] [--stores 100] [--days 365] [--visits-per-day 200] [--json]``

Works in its own database on the server of the URL (default ``postgresql://postgres@127.0.0.1:5432/
metrica_bench``): the URL's database if its name starts with ``metrica_bench``, else ``metrica_bench``
beside it; dropped and recreated at the start, migrated, filled, and dropped at the end unless ``keep``.
``--set NAME=VALUE`` gives its connections PostgreSQL settings; ``--full-pass-stores N`` times the full
pass on N stores and extrapolates (see `_full_pass_sample`). The history is generated inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``):

* stores in five zones (Paris and London with DST, Tunis, New York, Kolkata at +05:30), business days
  starting at 0–6 h, opening hours 9/10 h to 19–22 h, all of them open between 14:00 and 15:00 UTC;
* one camera and entrance line per store, plus a side entrance (a third of the stores) or a non-entrance
  "stairs" line that a quarter of the visitors cross up and down (another third);
* per store-day a number of visits around ``visits_per_day`` × a store scale (0.6–1.4) × weekday and month
  factors × ±20 % noise; each visit arrives in an hour drawn from a daily profile (lunch and evening
  peaks) and leaves after a log-normal dwell (median 15 min), an IN then an OUT;
* camera status: running since the start, and an outage of 1–40 min on about one day in 25 per camera.

The history runs up to ``T``, the last 14:00 UTC at least an hour ago (``days`` whole local days before
it); every crossing is stamped ``inserted_at = ts + 2 s``, as if streamed live. Then:

1. a full pass over everything (``rollup_pass(full=True, now=T)``);
2. the hour [T, T + 1 h) of all stores inserted, then an incremental pass (``now=T + 1 h``) and a pass
   with nothing new (what the worker runs every minute in between);
3. the traffic API under uvicorn, one request at a time: a 1-year daily and a 1-week hourly report of
   random stores; and for comparison a 1-year daily report counted from raw crossings only;
4. a check on a few stores: daily and hourly rollups against counts recomputed from raw crossings, and
   the API's 1-year totals against a raw count over the same range.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import numpy as np
import uvicorn
from litestar import Litestar

from metrica.actors.live import LiveHub, business_day
from metrica.api import create_app
from metrica.api.services import Services
from metrica.api.traffic import traffic_report
from metrica.config import Settings
from metrica.db import site
from metrica.db.migrate import migrate, timescale_installed
from metrica.db.pool import connect, create_pool
from metrica.events import ActorInfo
from metrica.jobs.rollups import _CHUNK_DAYS, rollup_pass, rollup_store_days
from metrica.site import Camera, Store

__all__ = ["DEFAULT_URL", "FAST_SETTINGS", "bench_rollups", "bench_url", "format_report", "parse_setting"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/metrica_bench"
_PREFIX = "metrica_bench"
_SETTING = re.compile(r"^[a-z_][a-z0-9_.]*$")
_H = timedelta(hours=1)

# (zone, opening hour, closing hour), cycled over the stores: 4 Paris, 3 Tunis, 1 each of the others.
_ZONES = (
    ("Europe/Paris", 9, 20),
    ("Africa/Tunis", 9, 21),
    ("Asia/Kolkata", 10, 22),
    ("America/New_York", 9, 21),
    ("Europe/Paris", 10, 19),
    ("Africa/Tunis", 9, 21),
    ("Europe/London", 9, 20),
    ("Europe/Paris", 9, 20),
    ("Africa/Tunis", 10, 21),
    ("Europe/Paris", 9, 19),
)
_DAY_START_HOURS = (0, 4, 6, 5, 2, 0, 3)  # cycled on a different period, so zones and starts mix
_WEEKDAY = (0.85, 0.9, 1.0, 0.95, 1.15, 1.4, 0.6)  # Monday .. Sunday
_MONTH = (0.95, 0.85, 0.95, 1.0, 1.0, 1.0, 0.95, 0.85, 1.0, 1.0, 1.05, 1.3)  # sales in January, December rush
_SIDE_DOOR_SHARE = 0.3
_UPSTAIRS_SHARE = 0.25

_VISITS_SQL = """
INSERT INTO bench_visits (store_id, day, visit, arrival, dwell, door_in, door_out, upstairs)
SELECT p.store_id, d.day, v.visit,
       ((d.day + make_interval(hours => p.open_h + width_bucket(random(), p.hours_cum) - 1))
            AT TIME ZONE p.tz) + random() * interval '1 hour',
       -- log-normal dwell, median 15 min (Box-Muller), kept within 1–90 min
       make_interval(secs => least(5400, greatest(60,
           exp(ln(900) + 0.6 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))))),
       width_bucket(random(), p.door_cum),
       width_bucket(random(), p.door_cum),
       p.stairs_line IS NOT NULL AND random() < $5
FROM bench_params p
CROSS JOIN LATERAL (
    SELECT g::date AS day,
           round(p.mean_visits * ($3::float8[])[extract(isodow FROM g)::int]
                 * ($4::float8[])[extract(month FROM g)::int] * (0.8 + 0.4 * random()))::int AS n
    FROM generate_series($1::date, $2::date, interval '1 day') g
) d
CROSS JOIN LATERAL generate_series(1, d.n) v(visit)
"""

# Each visit: IN through one entrance, OUT through one (maybe the other), and for some a non-entrance
# line crossed up and down during the visit. Only crossings stamped in [$1, $2) are inserted ({table}:
# crossings, or bench_extra where the extra hour waits, so that inserting it later takes no scan).
_CROSSINGS_SQL = """
INSERT INTO {table} (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session,
                       frame, inserted_at)
SELECT md5(v.store_id || '/' || v.day || '/' || v.visit || '/' || x.k)::uuid,
       x.ts, v.store_id, x.cam, x.line_id, x.line, x.dir, x.footfall, v.visit,
       'bench-' || x.cam || '-' || v.day,
       ((extract(epoch FROM x.ts)::bigint * 5) % 2000000000)::int,
       x.ts + interval '2 seconds'
FROM bench_visits v
JOIN bench_params p USING (store_id)
CROSS JOIN LATERAL (VALUES
    (1, v.arrival, p.door_cams[v.door_in], p.door_lines[v.door_in], p.door_names[v.door_in], 'in', true),
    (2, v.arrival + v.dwell, p.door_cams[v.door_out], p.door_lines[v.door_out], p.door_names[v.door_out],
     'out', true),
    (3, CASE WHEN v.upstairs THEN v.arrival + v.dwell * 0.3 END, p.stairs_cam, p.stairs_line, 'stairs',
     'in', false),
    (4, CASE WHEN v.upstairs THEN v.arrival + v.dwell * 0.7 END, p.stairs_cam, p.stairs_line, 'stairs',
     'out', false)
) x(k, ts, cam, line_id, line, dir, footfall)
WHERE x.ts >= $1 AND x.ts < $2
"""

# Running from the start; on about one day in 25 per camera an outage of 1–40 min.
_STATUS_SQL = """
INSERT INTO camera_status (ts, camera_id, state)
SELECT $1::timestamptz - interval '1 minute', id, 'starting' FROM cameras
UNION ALL
SELECT $1::timestamptz, id, 'running' FROM cameras
UNION ALL
SELECT o.at + s.after, o.camera_id, s.state
FROM (SELECT c.id AS camera_id, g + random() * interval '23 hours' AS at, 60 + random() * 2340 AS secs
      FROM cameras c, generate_series($1::timestamptz, $2::timestamptz - interval '1 day', interval '1 day') g
      WHERE random() < 0.04) o
CROSS JOIN LATERAL (VALUES (interval '0', 'reconnecting'), (make_interval(secs => o.secs), 'running'))
    s(after, state)
ON CONFLICT DO NOTHING
"""

# Per business day of one store: entrance INs/OUTs recomputed from raw crossings against store_daily.
_CHECK_DAYS_SQL = """
WITH raw AS (
    SELECT ((c.ts AT TIME ZONE s.timezone) - make_interval(hours => s.day_start_hour))::date AS bdate,
           count(*) FILTER (WHERE c.direction = 'in') AS ins,
           count(*) FILTER (WHERE c.direction = 'out') AS outs
    FROM crossings c JOIN stores s ON s.id = c.store_id
    WHERE c.store_id = $1 AND c.footfall
    GROUP BY 1
), rolled AS (
    SELECT business_date AS bdate, ins, outs FROM store_daily WHERE store_id = $1
)
SELECT count(*) AS days,
       count(*) FILTER (WHERE coalesce(r.ins, 0) <> coalesce(d.ins, 0)
                           OR coalesce(r.outs, 0) <> coalesce(d.outs, 0)) AS mismatched,
       coalesce(sum(r.ins), 0) AS raw_ins, coalesce(sum(d.ins), 0) AS rolled_ins
FROM raw r FULL JOIN rolled d USING (bdate)
"""

# Every hourly row of one store against a raw count over its hour (the last one cut at the day's end),
# and the hours per day (23/25 on DST days).
_CHECK_HOURS_SQL = """
SELECT count(*) AS hours,
       count(*) FILTER (WHERE h.ins <> r.ins OR h.outs <> r.outs) AS mismatched,
       count(DISTINCT h.business_date) FILTER (WHERE n.hours <> 24) AS dst_days
FROM store_hourly h
JOIN store_daily d USING (store_id, business_date)
JOIN (SELECT business_date, count(*) AS hours FROM store_hourly WHERE store_id = $1 GROUP BY 1) n
    USING (business_date)
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE c.direction = 'in') AS ins, count(*) FILTER (WHERE c.direction = 'out') AS outs
    FROM crossings c
    WHERE c.store_id = h.store_id AND c.footfall
      AND c.ts >= h.hour_start AND c.ts < least(h.hour_start + interval '1 hour', d.day_end)
) r
WHERE h.store_id = $1
"""


def _log(verbose: bool, t0: float, message: str) -> None:
    if verbose:
        print(f"[{time.perf_counter() - t0:7.1f} s] {message}", file=sys.stderr, flush=True)


def database_url(dsn: str, name: str) -> str:
    """``dsn`` with its database replaced by ``name`` (query string kept)."""
    head, _, query = dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def bench_url(dsn: str) -> str:
    """The benchmark's database on the server of ``dsn``: its own database when the name starts with
    ``metrica_bench``, else ``metrica_bench`` beside it (never the database ``dsn`` names: it is dropped)."""
    name = dsn.partition("?")[0].rsplit("/", 1)[-1]
    return dsn if name.startswith(_PREFIX) else database_url(dsn, _PREFIX)


def database_name(dsn: str) -> str:
    name = dsn.partition("?")[0].rsplit("/", 1)[-1]
    if not name.startswith(_PREFIX):
        # The benchmark drops its database: never one it did not make (the test database, real data).
        raise ValueError(
            f"the benchmark database's name must start with {_PREFIX!r} (it is dropped), got {name!r}"
        )
    return name


def parse_setting(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` → (name, value); the name is a PostgreSQL setting name."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _SETTING.match(name):
        raise ValueError(f"expected NAME=VALUE with a PostgreSQL setting name, got {text!r}")
    return name, value.strip()


async def _recreate(
    dsn: str, name: str, *, drop_only: bool = False, settings: dict[str, str] | None = None
) -> None:
    """Drop the database (and create it again, with ``settings`` for every connection to it)."""
    admin = await connect(database_url(dsn, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await admin.execute(f'CREATE DATABASE "{name}"')
            for key, value in (settings or {}).items():
                literal = "'" + value.replace("'", "''") + "'"
                await admin.execute(f'ALTER DATABASE "{name}" SET {key} = {literal}')
    finally:
        await admin.close()


def history_end(now: datetime) -> datetime:
    """T: the last 14:00 UTC with [T, T + 1 h) in the past (every generated store is open then)."""
    t = now.astimezone(UTC).replace(hour=14, minute=0, second=0, microsecond=0)
    return t if t + _H <= now else t - timedelta(days=1)


def _hour_profile(open_h: int, close_h: int) -> list[float]:
    """Cumulative shares of the visits per opening hour, from 0 to 1 (width_bucket thresholds)."""
    weights = []
    for h in range(open_h, close_h):
        w = 1.0
        if h in (12, 13):
            w = 1.6  # lunch
        elif h in (14, 15):
            w = 0.9
        elif h in (17, 18):
            w = 1.8  # after work
        if h == open_h:
            w = 0.5
        elif h == close_h - 1:
            w = 0.6
        weights.append(w)
    total, cum, out = sum(weights), 0.0, [0.0]
    for w in weights:
        cum += w
        out.append(cum / total)
    out[-1] = 1.0
    return out


async def _create_site(
    conn: asyncpg.Connection, stores: int, visits_per_day: int, seed: int
) -> dict[str, int]:
    """Stores, cameras and lines, and ``bench_params`` (one row per store) that drives the generation."""
    rng = random.Random(seed)
    norm = (sum(_WEEKDAY) / 7) * (sum(_MONTH) / 12)
    await conn.execute(
        """CREATE UNLOGGED TABLE bench_params (
               store_id int PRIMARY KEY, tz text, open_h int, hours_cum float8[], mean_visits float8,
               door_cum float8[], door_cams int[], door_lines int[], door_names text[],
               stairs_cam int, stairs_line int)"""
    )
    counts = {"cameras": 0, "lines": 0}
    for i in range(stores):
        tz, open_h, close_h = _ZONES[i % len(_ZONES)]
        store_id = await conn.fetchval(
            "INSERT INTO stores (name, timezone, day_start_hour) VALUES ($1, $2, $3) RETURNING id",
            f"Bench {i + 1:03d} {tz.rsplit('/', 1)[-1].replace('_', ' ')}",
            tz,
            _DAY_START_HOURS[i % len(_DAY_START_HOURS)],
        )

        async def camera(name: str, line: str, footfall: bool, sid: int = store_id) -> tuple[int, int]:
            cam = await conn.fetchval(
                "INSERT INTO cameras (store_id, name, source) VALUES ($1, $2, $3) RETURNING id",
                sid,
                name,
                f"rtsp://bench.invalid/{sid}/{name}",
            )
            lid = await conn.fetchval(
                """INSERT INTO lines (camera_id, name, x1, y1, x2, y2, footfall)
                   VALUES ($1, $2, 100, 400, 600, 400, $3) RETURNING id""",
                cam,
                line,
                footfall,
            )
            counts["cameras"] += 1
            counts["lines"] += 1
            return cam, lid

        door_cam, door_line = await camera("entrance", "door", True)
        doors = [(door_cam, door_line, "door")]
        door_cum = [0.0, 1.0]
        stairs: tuple[int | None, int | None] = (None, None)
        if i % 3 == 1:  # a side entrance
            side_cam, side_line = await camera("side", "side door", True)
            doors.append((side_cam, side_line, "side door"))
            door_cum = [0.0, 1 - _SIDE_DOOR_SHARE, 1.0]
        elif i % 3 == 2:  # a line inside the store that is no entrance
            stairs = await camera("floor", "stairs", False)
        await conn.execute(
            "INSERT INTO bench_params VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            store_id,
            tz,
            open_h,
            _hour_profile(open_h, close_h),
            visits_per_day * (0.6 + 0.8 * rng.random()) / norm,
            door_cum,
            [d[0] for d in doors],
            [d[1] for d in doors],
            [d[2] for d in doors],
            *stairs,
        )
    return counts


async def _bulk_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the crossings indexes and keys for a bulk load; returns the statements that restore them."""
    restore = []
    for r in await conn.fetch(
        """SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
           WHERE conrelid = 'crossings'::regclass AND contype IN ('p', 'u')"""
    ):
        restore.append(f'ALTER TABLE crossings ADD CONSTRAINT "{r["conname"]}" {r["def"]}')
        await conn.execute(f'ALTER TABLE crossings DROP CONSTRAINT "{r["conname"]}"')
    for r in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'crossings'"):
        restore.append(r["indexdef"])
        await conn.execute(f'DROP INDEX "{r["indexname"]}"')
    return restore


async def _generate(
    conn: asyncpg.Connection, *, stores: int, days: int, visits_per_day: int, end: datetime, seed: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    await conn.execute("SELECT setseed($1)", (seed % 1000) / 1000)
    site_counts = await _create_site(conn, stores, visits_per_day, seed)
    first_day = (end - timedelta(days=days)).date()
    await conn.execute(
        """CREATE UNLOGGED TABLE bench_visits (store_id int, day date, visit int, arrival timestamptz,
               dwell interval, door_in int, door_out int, upstairs bool)"""
    )
    await conn.execute(_VISITS_SQL, first_day, end.date(), list(_WEEKDAY), list(_MONTH), _UPSTAIRS_SHARE)
    visits = await conn.fetchval("SELECT count(*) FROM bench_visits WHERE arrival < $1", end)
    # A bulk import: load without indexes, build them once (as an operator restoring a dump would).
    await conn.execute("SET maintenance_work_mem = '512MB'")
    restore = await _bulk_indexes(conn)
    start = datetime.combine(first_day, datetime.min.time(), UTC) - timedelta(days=1)
    await conn.execute(_CROSSINGS_SQL.format(table="crossings"), start, end)
    await conn.execute("CREATE UNLOGGED TABLE bench_extra (LIKE crossings)")
    await conn.execute(_CROSSINGS_SQL.format(table="bench_extra"), end, end + _H)
    await conn.execute("DROP TABLE bench_visits, bench_params")  # scaffolding: not part of the sizes
    for statement in restore:
        await conn.execute(statement)
    await conn.execute(_STATUS_SQL, start, end)
    await conn.execute("RESET maintenance_work_mem")
    await conn.execute("VACUUM (ANALYZE) crossings")
    await conn.execute("VACUUM (ANALYZE) camera_status")
    crossings = await conn.fetchval("SELECT count(*) FROM crossings")
    return {
        "stores": stores,
        **site_counts,
        "days": days,
        "first_day": first_day.isoformat(),
        "history_end": end.isoformat(),
        "visits_per_day": visits_per_day,
        "visits": int(visits),
        "crossings": int(crossings),
        "crossings_per_store_day": round(crossings / (stores * (days + 1)), 1),
        "camera_status_rows": int(await conn.fetchval("SELECT count(*) FROM camera_status")),
        "generate_seconds": round(time.perf_counter() - t0, 1),
    }


def _pass_dict(result: Any, wall: float) -> dict[str, Any]:
    return {
        "seconds": round(wall, 2),
        "extrapolated": False,
        "stores": result.stores,
        "store_days": result.days,
        "ms_per_store_day": round(wall * 1e3 / result.days, 2) if result.days else None,
    }


# What makes the rollup queries fast when PostgreSQL's defaults do not (see _full_pass_sample).
FAST_SETTINGS = {"jit": "off", "plan_cache_mode": "force_custom_plan"}


async def _store_dates(conn: asyncpg.Connection, store: Store) -> list[date]:
    """The business dates a full pass recomputes for ``store``: those its crossings' hours touch."""
    dates: set[date] = set()
    for r in await conn.fetch(
        "SELECT DISTINCT date_bin('1 hour', ts, TIMESTAMPTZ 'epoch') AS h FROM crossings WHERE store_id = $1",
        store.id,
    ):
        dates.add(business_day(store, r["h"])[0])
        dates.add(business_day(store, r["h"] + _H - timedelta(microseconds=1))[0])
    return sorted(dates)


async def _full_pass_sample(
    pool: asyncpg.Pool, dsn: str, end: datetime, sample: int
) -> tuple[dict[str, Any], Any]:
    """The full pass timed on the first ``sample`` stores only, then extrapolated by store-days.

    For settings under which a full pass would take hours: the history is first rolled up by a real full pass
    on connections with `FAST_SETTINGS` (untimed, so that the later measurements see a rolled-up history),
    then the first stores' days are recomputed as `rollup_pass` does (31-day transactions, one connection,
    its statement cache warming up) under the settings being measured.
    """
    fast = await asyncpg.create_pool(
        dsn, min_size=1, max_size=2, command_timeout=None, server_settings=FAST_SETTINGS
    )
    try:
        t0 = time.perf_counter()
        full = await rollup_pass(fast, full=True, now=end)
        prepared = time.perf_counter() - t0
    finally:
        await fast.close()
    stores = sorted(await site.list_stores(pool), key=lambda s: s.id)[:sample]
    store_days = 0
    async with pool.acquire() as conn:
        plans = [(store, await _store_dates(conn, store)) for store in stores]
        t0 = time.perf_counter()
        for store, dates in plans:
            for i in range(0, len(dates), _CHUNK_DAYS):
                await rollup_store_days(conn, store, dates[i : i + _CHUNK_DAYS], now=end)
            store_days += len(dates)
        seconds = time.perf_counter() - t0
    per_day = seconds / store_days if store_days else 0.0
    return {
        "seconds": round(per_day * full.days, 1),
        "extrapolated": True,
        "sample_stores": len(stores),
        "sample_store_days": store_days,
        "sample_seconds": round(seconds, 2),
        "prepared_with_fast_settings_seconds": round(prepared, 1),  # the real full pass, FAST_SETTINGS
        "stores": full.stores,
        "store_days": full.days,
        "ms_per_store_day": round(per_day * 1e3, 2),
    }, full


async def _passes(
    pool: asyncpg.Pool, dsn: str, end: datetime, sample: int | None, say: Callable[[str], None]
) -> dict[str, Any]:
    n_stores = len(await site.list_stores(pool))
    if sample and sample < n_stores:
        out: dict[str, Any] = {"full_pass": (await _full_pass_sample(pool, dsn, end, sample))[0]}
    else:
        t0 = time.perf_counter()
        full = await rollup_pass(pool, full=True, now=end)
        out = {"full_pass": _pass_dict(full, time.perf_counter() - t0)}
    say(f"full pass: {out['full_pass']}")
    async with pool.acquire() as conn:
        status = await conn.execute("INSERT INTO crossings SELECT * FROM bench_extra")
        await conn.execute("DROP TABLE bench_extra")
    new = int(status.split()[-1])
    t0 = time.perf_counter()
    inc = await rollup_pass(pool, now=end + _H)
    out["incremental_pass"] = _pass_dict(inc, time.perf_counter() - t0) | {"new_crossings": new}
    say(f"incremental pass: {out['incremental_pass']}")
    t0 = time.perf_counter()
    idle = await rollup_pass(pool, now=end + _H + timedelta(minutes=1))
    out["idle_pass"] = _pass_dict(idle, time.perf_counter() - t0)
    say(f"pass with nothing new: {out['idle_pass']}")
    return out


class _NoActors:
    """The API's view of a supervisor with no cameras running (the benchmark only reads history)."""

    def status(self) -> list[ActorInfo]:
        return []

    async def restart(self, camera_id: int) -> None:
        raise KeyError(camera_id)

    async def apply(self, cameras: Sequence[Camera]) -> None:
        return None


@contextlib.asynccontextmanager
async def _serving(app: Litestar) -> AsyncIterator[str]:
    """The app under uvicorn on a free local port, in this event loop (where the pool lives)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


def _latency(times: list[float], errors: int, buckets: list[int]) -> dict[str, Any]:
    def percentile(q: float) -> float:
        return float(np.percentile(times, q)) if times else 0.0

    return {
        "requests": len(times),
        "errors": errors,
        "buckets": min(buckets) if buckets else 0,  # per response (a DST week has 167 or 169 hours)
        "p50_ms": round(percentile(50), 2),
        "p95_ms": round(percentile(95), 2),
        "p99_ms": round(percentile(99), 2),
        "max_ms": round(max(times), 2) if times else 0.0,
    }


def _query(store: Store, kind: str, now: datetime) -> dict[str, str]:
    today = business_day(store, now)[0]
    days, bucket = (365, "day") if kind == "year_daily" else (7, "hour")
    return {
        "from": (today - timedelta(days=days - 1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
        "bucket": bucket,
    }


async def _api(
    pool: asyncpg.Pool, stores: list[Store], requests: int, seed: int, say: Callable[[str], None]
) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    services = Services(
        settings=Settings(admin_token=secrets.token_urlsafe(24), viewer_token=token),
        pool=pool,
        actors=_NoActors(),
        hub=LiveHub(),
    )
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the app's logging config would print each request
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        _serving(create_app(services)) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client,
    ):
        for kind in ("year_daily", "week_hourly"):
            for store in rng.sample(stores, min(3, len(stores))):  # warm-up: connections, plans
                await client.get(
                    f"/api/stores/{store.id}/traffic", params=_query(store, kind, datetime.now(UTC))
                )
            times: list[float] = []
            buckets: list[int] = []
            errors = 0
            for _ in range(requests):
                store = rng.choice(stores)
                params = _query(store, kind, datetime.now(UTC))
                t0 = time.perf_counter()
                r = await client.get(f"/api/stores/{store.id}/traffic", params=params)
                times.append((time.perf_counter() - t0) * 1e3)
                if r.status_code == 200:
                    buckets.append(len(r.json()["buckets"]))
                else:
                    errors += 1
            out[kind] = _latency(times, errors, buckets)
            say(f"API {kind}: {out[kind]}")
        out["checked_totals"] = []
        for store in _check_stores(stores, seed):
            r = await client.get(
                f"/api/stores/{store.id}/traffic", params=_query(store, "year_daily", datetime.now(UTC))
            )
            body = r.json()
            raw = await pool.fetchval(
                """SELECT count(*) FROM crossings WHERE store_id = $1 AND footfall AND direction = 'in'
                   AND ts >= $2 AND ts < $3""",
                store.id,
                datetime.fromisoformat(body["from"]),
                datetime.fromisoformat(body["to"]),
            )
            out["checked_totals"].append(
                {"store_id": store.id, "api_in": body["in_count"], "raw_in": int(raw)}
            )
    # The same 1-year report counted from raw crossings only (no rollups), in-process, for comparison.
    times = []
    for _ in range(max(3, requests // 20)):
        store = rng.choice(stores)
        q = _query(store, "year_daily", datetime.now(UTC))
        t0 = time.perf_counter()
        await traffic_report(pool, store, from_=q["from"], to=q["to"], bucket="day", use_rollups=False)
        times.append((time.perf_counter() - t0) * 1e3)
    out["year_daily_raw_only"] = _latency(times, 0, [])
    say(f"1 year by day from raw crossings: {out['year_daily_raw_only']}")
    return out


def _check_stores(stores: list[Store], seed: int) -> list[Store]:
    """One store per zone (DST, +05:30, ...) and one more at random."""
    picked: dict[str, Store] = {}
    for s in stores:
        picked.setdefault(s.timezone, s)
    extra = [s for s in stores if s not in picked.values()]
    return sorted(picked.values(), key=lambda s: s.id) + (
        [random.Random(seed).choice(extra)] if extra else []
    )


async def _check(conn: asyncpg.Connection, stores: list[Store], seed: int) -> dict[str, Any]:
    per_store = []
    for store in _check_stores(stores, seed):
        d = await conn.fetchrow(_CHECK_DAYS_SQL, store.id)
        h = await conn.fetchrow(_CHECK_HOURS_SQL, store.id)
        per_store.append(
            {
                "store_id": store.id,
                "timezone": store.timezone,
                "day_start_hour": store.day_start_hour,
                "days": int(d["days"]),
                "mismatched_days": int(d["mismatched"]),
                "raw_ins": int(d["raw_ins"]),
                "rolled_ins": int(d["rolled_ins"]),
                "hours": int(h["hours"]),
                "mismatched_hours": int(h["mismatched"]),
                "dst_days": int(h["dst_days"]),
            }
        )
    return {
        "stores": per_store,
        "ok": all(s["mismatched_days"] == 0 and s["mismatched_hours"] == 0 for s in per_store)
        and all(s["raw_ins"] == s["rolled_ins"] for s in per_store),
    }


async def _sizes(conn: asyncpg.Connection, name: str) -> dict[str, int]:
    rollups = ("store_hourly", "store_daily", "line_hourly", "line_daily", "camera_daily")
    return {
        "database_bytes": int(await conn.fetchval("SELECT pg_database_size($1)", name)),
        "crossings_bytes": int(await conn.fetchval("SELECT pg_total_relation_size('crossings')")),
        "rollups_bytes": int(
            await conn.fetchval(
                "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest($1::text[]) t", list(rollups)
            )
        ),
        "store_hourly_rows": int(await conn.fetchval("SELECT count(*) FROM store_hourly")),
    }


async def bench_rollups(
    dsn: str = DEFAULT_URL,
    *,
    stores: int = 100,
    days: int = 365,
    visits_per_day: int = 200,
    requests: int = 200,
    seed: int = 4,
    settings: dict[str, str] | None = None,
    full_pass_stores: int | None = None,
    keep: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run the benchmark (module doc) in the database of ``dsn``, recreated first; dropped after unless ``keep``.

    ``settings``: PostgreSQL settings for every connection to the database (``ALTER DATABASE ... SET``),
    e.g. `FAST_SETTINGS`; the server's defaults otherwise. ``full_pass_stores``: time the full pass on that
    many stores and extrapolate (`_full_pass_sample`), for settings under which it would take hours.
    """
    name = database_name(dsn)
    t0 = time.perf_counter()

    def say(message: str) -> None:
        _log(verbose, t0, message)

    end = history_end(datetime.now(UTC))
    await _recreate(dsn, name, settings=settings)
    try:
        await migrate(dsn)
        result: dict[str, Any] = {"database": name, "settings": dict(settings or {})}
        conn = await connect(dsn, command_timeout=None)
        try:
            result["server"] = await conn.fetchval("SHOW server_version")
            result["timescaledb"] = await timescale_installed(conn)
            _log(verbose, t0, f"generating {stores} stores × {days} days × ~{visits_per_day} visits/day")
            result["volume"] = await _generate(
                conn, stores=stores, days=days, visits_per_day=visits_per_day, end=end, seed=seed
            )
            say(f"{result['volume']['crossings']:,} crossings: {result['volume']}; full rollup pass")
        finally:
            await conn.close()
        pool = await create_pool(dsn, min_size=1, max_size=10)
        try:
            result |= await _passes(pool, dsn, end, full_pass_stores, say)
            say("traffic API")
            all_stores = await site.list_stores(pool)
            result["api"] = await _api(pool, all_stores, requests, seed, say)
            say("checking rollups against raw counts")
            check_conn = await connect(dsn, command_timeout=None)
            try:
                result["check"] = await _check(check_conn, all_stores, seed)
            finally:
                await check_conn.close()
            checked = result["api"]["checked_totals"]
            result["check"]["api_totals_equal_raw"] = all(c["api_in"] == c["raw_in"] for c in checked)
            async with pool.acquire() as c:
                result["volume"] |= await _sizes(c, name)
        finally:
            await pool.close()
        result["kept"] = keep
        return result
    finally:
        if not keep:
            await _recreate(dsn, name, drop_only=True)
        say("done" + ("" if keep else f"; dropped {name}"))


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def format_report(r: dict[str, Any]) -> str:
    v = r["volume"]
    settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "server defaults"
    lines = [
        f"database {r['database']} (PostgreSQL {r['server']}, timescaledb {'yes' if r['timescaledb'] else 'no'})"
        + ("" if r["kept"] else ", dropped after")
        + f"; settings: {settings}",
        f"volume: {v['stores']} stores, {v['cameras']} cameras, {v['lines']} lines; {v['days']} days from"
        f" {v['first_day']} to {v['history_end']}; ~{v['visits_per_day']} visits/store/day",
        f"        {v['visits']:,} visits, {v['crossings']:,} crossings ({v['crossings_per_store_day']}/store-day),"
        f" {v['camera_status_rows']:,} camera status rows; generated in {v['generate_seconds']} s",
        f"        database {_mib(v['database_bytes'])} (crossings {_mib(v['crossings_bytes'])},"
        f" rollups {_mib(v['rollups_bytes'])}, {v['store_hourly_rows']:,} store_hourly rows)",
    ]
    for key, label in (
        ("full_pass", "full rollup pass"),
        ("incremental_pass", "incremental pass, one new hour"),
        ("idle_pass", "pass with nothing new"),
    ):
        p = r[key]
        extra = f", {p['new_crossings']:,} new crossings" if "new_crossings" in p else ""
        if p["extrapolated"]:
            extra += (
                f" — EXTRAPOLATED from {p['sample_store_days']} store-days of {p['sample_stores']} stores"
                f" timed at {p['sample_seconds']} s (the real full pass that rolled up the history first, with"
                f" {', '.join(f'{k}={v}' for k, v in FAST_SETTINGS.items())}: {p['prepared_with_fast_settings_seconds']} s)"
            )
        lines.append(
            f"{label:<32} {p['seconds']:>9.2f} s  {p['store_days']:>6} store-days"
            f" ({p['ms_per_store_day']} ms each){extra}"
        )
    for key, label in (
        ("year_daily", "API 1 year by day"),
        ("week_hourly", "API 1 week by hour"),
        ("year_daily_raw_only", "1 year by day, raw only (no HTTP)"),
    ):
        a = r["api"][key]
        lines.append(
            f"{label:<34} p50 {a['p50_ms']:8.1f} ms  p95 {a['p95_ms']:8.1f} ms  p99 {a['p99_ms']:8.1f} ms"
            f"  max {a['max_ms']:8.1f} ms  ({a['requests']} requests, {a['errors']} errors)"
        )
    c = r["check"]
    for s in c["stores"]:
        lines.append(
            f"check store {s['store_id']:>3} {s['timezone']:<17} day starts {s['day_start_hour']} h:"
            f" {s['days']} days / {s['hours']} hours ({s['dst_days']} DST days),"
            f" mismatches {s['mismatched_days']} days / {s['mismatched_hours']} hours,"
            f" INs raw {s['raw_ins']:,} = rollups {s['rolled_ins']:,}"
        )
    totals = ", ".join(
        f"{t['store_id']}: {t['api_in']:,}/{t['raw_in']:,}" for t in r["api"]["checked_totals"]
    )
    lines.append(f"API 1-year INs vs raw count (store: api/raw): {totals}")
    ok = c["ok"] and c["api_totals_equal_raw"]
    lines.append("rollups equal raw counts" if ok else "MISMATCH between rollups and raw counts")
    return "\n".join(lines)
