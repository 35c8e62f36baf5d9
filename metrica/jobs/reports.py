"""Daily reports: one per store and closed business day, rendered once (HTML, CSV, PDF) and stored.

`report_cron_job` runs every 10 minutes (one tick per cluster: ``unique``). For every store it looks at the
last `CATCH_UP_DAYS` business days that closed at least `GRACE` ago (late events of the evening have
arrived) and did not end before the store was created, and enqueues ``generate_report`` for each one without
a report, under the job id ``report:{store}:{date}`` — arq refuses a second job with an id it holds, so
several workers, ticks or catch-ups enqueue a day once.

`generate_report` recomputes the day's rollups (`metrica.jobs.rollups.rollup_store_days`), reads the four
previous same weekdays from ``store_daily`` (computing those that are missing), renders in a thread and
inserts under a per-report advisory lock: ``ON CONFLICT DO NOTHING``, or ``DO UPDATE`` with version + 1 for
a regeneration an admin asked for. Two workers given the same day therefore produce one report.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import structlog
from arq.connections import ArqRedis
from arq.cron import CronJob, cron

from metrica.actors.live import business_day, local_day_start
from metrica.db import site
from metrica.db.errors import NotFoundError
from metrica.jobs.rollups import DayRollup, rollup_store_days
from metrica.reports.csv import render_csv
from metrica.reports.figures import CameraInfo, PreviousDay, ReportFigures, make_figures
from metrica.reports.html import render_html
from metrica.reports.pdf import render_pdf
from metrica.site import Store

__all__ = [
    "CATCH_UP_DAYS",
    "CRON_JOBS",
    "FUNCTIONS",
    "GRACE",
    "Rendered",
    "build_figures",
    "day_closed",
    "due_reports",
    "enqueue_due_reports",
    "generate_report",
    "render_all",
    "report_cron_job",
    "report_job_id",
]

log = structlog.get_logger(__name__)

GRACE = timedelta(minutes=15)  # a day is reported this long after it closes: the last events have landed
CATCH_UP_DAYS = 7  # a worker down for longer does not flood the queue; an admin can regenerate older days
PREVIOUS_WEEKS = 4


class Rendered(msgspec.Struct, frozen=True):
    data: bytes  # the figures as JSON
    html: str
    csv: str
    pdf: bytes


def report_job_id(store_id: int, business_date: date) -> str:
    return f"report:{store_id}:{business_date.isoformat()}"


def day_closed(store: Store, business_date: date, now: datetime) -> bool:
    return now >= local_day_start(store, business_date + timedelta(days=1))


def render_all(figures: ReportFigures) -> Rendered:
    """Every rendering of a report; CPU-bound (call it in a thread)."""
    return Rendered(
        data=msgspec.json.encode(figures),
        html=render_html(figures),
        csv=render_csv(figures),
        pdf=render_pdf(figures),
    )


def _has_data(ins: int, outs: int, running_seconds: float) -> bool:
    """A day with no crossing and no camera running was not recorded (the store was not counting yet)."""
    return ins + outs > 0 or running_seconds > 0


async def _previous_days(
    pool: asyncpg.Pool, store: Store, business_date: date, *, now: datetime, retention_days: int | None
) -> list[PreviousDay]:
    dates = [business_date - timedelta(days=7 * k) for k in range(1, PREVIOUS_WEEKS + 1)]
    rows = await pool.fetch(
        """SELECT d.business_date, d.ins, d.outs,
                  coalesce((SELECT sum(c.running_seconds) FROM camera_daily c
                            WHERE c.store_id = d.store_id AND c.business_date = d.business_date), 0) AS running
           FROM store_daily d
           WHERE d.store_id = $1 AND d.business_date = ANY($2) AND d.computed_at >= d.day_end""",
        store.id,
        dates,
    )
    out = {
        r["business_date"]: PreviousDay(
            date=r["business_date"],
            in_count=int(r["ins"]) if _has_data(r["ins"], r["outs"], float(r["running"])) else None,
        )
        for r in rows
    }
    # Missing, or rolled up while still open: compute now, unless its raw events have expired (it would read
    # as an empty day).
    cutoff = now - timedelta(days=retention_days) if retention_days else None
    missing = [d for d in dates if d not in out and (cutoff is None or local_day_start(store, d) >= cutoff)]
    if missing:
        for day in await rollup_store_days(pool, store, missing, now=now):
            running = sum(r for r, _ in day.cameras.values())
            has = _has_data(day.ins, day.outs, running)
            out[day.business_date] = PreviousDay(date=day.business_date, in_count=day.ins if has else None)
    return [out.get(d, PreviousDay(date=d, in_count=None)) for d in dates]


async def build_figures(
    pool: asyncpg.Pool,
    store: Store,
    business_date: date,
    *,
    now: datetime | None = None,
    retention_days: int | None = None,
) -> ReportFigures:
    """Recompute the day's rollups, then the report's figures (the previous weeks from the rollups)."""
    now = now or datetime.now(UTC)
    days: list[DayRollup] = await rollup_store_days(pool, store, [business_date], now=now)
    previous = await _previous_days(pool, store, business_date, now=now, retention_days=retention_days)
    cameras = [
        CameraInfo(id=r["id"], name=r["name"], enabled=r["enabled"])
        for r in await pool.fetch("SELECT id, name, enabled FROM cameras WHERE store_id = $1", store.id)
    ]
    return make_figures(store, days[0], cameras, previous, computed_at=now)


_INSERT = """
INSERT INTO daily_reports AS r (store_id, business_date, version, generated_at, data, html, csv, pdf)
VALUES ($1, $2, 1, now(), $3::text::jsonb, $4, $5, $6)
ON CONFLICT (store_id, business_date) DO {action}
RETURNING version
"""
_INSERT_ONCE = _INSERT.format(action="NOTHING")
_INSERT_AGAIN = _INSERT.format(
    action="UPDATE SET version = r.version + 1, generated_at = now(), data = EXCLUDED.data, html = EXCLUDED.html,"
    " csv = EXCLUDED.csv, pdf = EXCLUDED.pdf"
)


async def generate_report(
    ctx: dict[str, Any], store_id: int, business_date_iso: str, regenerate: bool = False
) -> dict[str, Any]:
    """arq: the report of one closed business day. Returns ``{"status", "version"}``; status is
    ``generated``, ``exists`` (another worker made it; not with ``regenerate``), ``not_closed`` or
    ``unknown_store``."""
    pool: asyncpg.Pool = ctx["pool"]
    settings = ctx.get("settings")
    business_date = date.fromisoformat(business_date_iso)
    try:
        store = await site.get_store(pool, store_id)
    except NotFoundError:
        log.warning("report.unknown_store", store_id=store_id, date=business_date_iso)
        return {"status": "unknown_store", "version": None}
    now = datetime.now(UTC)
    if not day_closed(store, business_date, now):
        log.warning("report.day_not_closed", store_id=store_id, date=business_date_iso)
        return {"status": "not_closed", "version": None}
    t0 = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        # One report at a time per store-day: a second worker waits here, then finds the report made.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"metrica.report:{store_id}:{business_date}",
        )
        if not regenerate:
            version = await conn.fetchval(
                "SELECT version FROM daily_reports WHERE store_id = $1 AND business_date = $2",
                store_id,
                business_date,
            )
            if version is not None:
                log.info("report.exists", store_id=store_id, date=business_date_iso, version=version)
                return {"status": "exists", "version": version}
        figures = await build_figures(
            pool, store, business_date, now=now, retention_days=getattr(settings, "retention_days", None)
        )
        r = await asyncio.to_thread(render_all, figures)
        version = await conn.fetchval(
            _INSERT_AGAIN if regenerate else _INSERT_ONCE,
            store_id,
            business_date,
            r.data.decode(),
            r.html,
            r.csv,
            r.pdf,
        )
    if version is None:  # cannot happen under the lock; kept so a report is never counted twice
        return {"status": "exists", "version": None}
    log.info(
        "report.generated",
        store_id=store_id,
        date=business_date_iso,
        version=version,
        in_count=figures.in_count,
        ms=round((time.perf_counter() - t0) * 1000, 1),
    )
    return {"status": "generated", "version": version}


async def due_reports(pool: asyncpg.Pool, now: datetime) -> list[tuple[Store, date]]:
    """(store, business date) of the closed days (at most CATCH_UP_DAYS back) that have no report yet."""
    stores = await site.list_stores(pool)
    if not stores:
        return []
    created = {r["id"]: r["created_at"] for r in await pool.fetch("SELECT id, created_at FROM stores")}
    earliest = min(business_day(s, now - GRACE)[0] for s in stores) - timedelta(days=CATCH_UP_DAYS + 1)
    existing = {
        (r["store_id"], r["business_date"])
        for r in await pool.fetch(
            "SELECT store_id, business_date FROM daily_reports WHERE business_date >= $1", earliest
        )
    }
    out: list[tuple[Store, date]] = []
    for store in stores:
        last = business_day(store, now - GRACE)[0] - timedelta(days=1)
        for k in range(CATCH_UP_DAYS):
            d = last - timedelta(days=k)
            if local_day_start(store, d + timedelta(days=1)) <= created.get(store.id, now):
                break  # the day ended before the store was set up: nothing was counted
            if (store.id, d) not in existing:
                out.append((store, d))
    return out


async def enqueue_due_reports(redis: ArqRedis, pool: asyncpg.Pool, now: datetime | None = None) -> list[str]:
    """Enqueue ``generate_report`` for every due report; the ids of the jobs arq accepted (a job id it
    already holds — queued, running, or finished within keep_result — is refused)."""
    from metrica.jobs.worker import QUEUE  # the worker module imports this one

    now = now or datetime.now(UTC)
    accepted: list[str] = []
    for store, d in await due_reports(pool, now):
        job_id = report_job_id(store.id, d)
        job = await redis.enqueue_job(
            "generate_report", store.id, d.isoformat(), _job_id=job_id, _queue_name=QUEUE
        )
        if job is not None:
            accepted.append(job_id)
    if accepted:
        log.info("report.enqueued", jobs=len(accepted), first=accepted[0])
    return accepted


async def report_cron_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """arq cron: enqueue the reports of the days that closed (see the module doc)."""
    jobs = await enqueue_due_reports(ctx["redis"], ctx["pool"])
    return {"enqueued": jobs}


FUNCTIONS: list[Any] = [generate_report, report_cron_job]
CRON_JOBS: list[CronJob] = [
    cron(
        report_cron_job,
        name="cron:reports",
        minute=set(range(0, 60, 10)),
        second=30,
        unique=True,
        timeout=300,
        max_tries=1,
    )
]
