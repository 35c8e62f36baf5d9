"""Retention of raw events: crossings and occupancy samples older than ``settings.retention_days``, camera
status older than max(90, that) days. Rollups, reports and alerts are never touched: they are the history.

On TimescaleDB the hypertables' retention policies (set by sql/002_timescale.sql) drop whole chunks; the
daily job only aligns them with ``retention_days``. On plain PostgreSQL the job deletes in batches, each
its own short transaction, so it never holds a long lock or builds one huge WAL burst.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import structlog
from arq.cron import CronJob, cron

from metrica.db.migrate import timescale_installed

__all__ = [
    "CRON_JOBS",
    "FUNCTIONS",
    "RetentionResult",
    "retention_days_for",
    "retention_job",
    "run_retention",
]

log = structlog.get_logger(__name__)

BATCH = 5000  # rows per DELETE
CAMERA_STATUS_MIN_DAYS = 90  # uptime history and "camera offline" alerts need this much


class RetentionResult(msgspec.Struct, kw_only=True):
    mode: str  # "delete" (plain PostgreSQL) or "timescaledb" (policies)
    deleted: dict[str, int] = msgspec.field(default_factory=dict)  # table → rows deleted
    batches: int = 0
    policies: dict[str, int] = msgspec.field(default_factory=dict)  # table → days now kept (TimescaleDB)
    seconds: float = 0.0


def retention_days_for(retention_days: int) -> dict[str, int]:
    """Days kept per raw table."""
    return {
        "crossings": retention_days,
        "occupancy_samples": retention_days,
        "camera_status": max(CAMERA_STATUS_MIN_DAYS, retention_days),
    }


async def _delete_batches(
    pool: asyncpg.Pool, table: str, cutoff: datetime, batch: int, result: RetentionResult
) -> int:
    total = 0
    while True:
        # ctid batches: no single huge DELETE, and each batch commits on its own.
        n = await pool.execute(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE ts < $1 LIMIT $2))",
            cutoff,
            batch,
        )
        done = int(n.split()[-1])
        total += done
        result.batches += 1
        if done < batch:
            return total


async def _align_policies(pool: asyncpg.Pool, days: dict[str, int], result: RetentionResult) -> None:
    hypertables = {
        r["hypertable_name"]
        for r in await pool.fetch("SELECT hypertable_name FROM timescaledb_information.hypertables")
    }
    for table, keep in days.items():
        if table not in hypertables:
            continue
        current = await pool.fetchval(
            """SELECT config->>'drop_after' FROM timescaledb_information.jobs
               WHERE proc_name = 'policy_retention' AND hypertable_name = $1""",
            table,
        )
        wanted = timedelta(days=keep)
        same = (
            await pool.fetchval("SELECT $1::interval = $2::interval", current, wanted) if current else False
        )
        if not same:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT remove_retention_policy($1::regclass, if_exists => true)", table)
                await conn.execute("SELECT add_retention_policy($1::regclass, $2::interval)", table, wanted)
            log.info("retention.policy_set", table=table, days=keep, was=current)
        result.policies[table] = keep


async def run_retention(
    pool: asyncpg.Pool, retention_days: int, *, now: datetime | None = None, batch: int = BATCH
) -> RetentionResult:
    """Apply retention once (see the module doc); ``now`` is injectable for tests."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    t0 = time.perf_counter()
    now = now or datetime.now(UTC)
    days = retention_days_for(retention_days)
    if await timescale_installed(pool):
        result = RetentionResult(mode="timescaledb")
        await _align_policies(pool, days, result)
        # A table the migration left plain (none today) still gets the batched delete.
        plain = [t for t in days if t not in result.policies]
    else:
        result = RetentionResult(mode="delete")
        plain = list(days)
    for table in plain:
        result.deleted[table] = await _delete_batches(
            pool, table, now - timedelta(days=days[table]), batch, result
        )
    result.seconds = time.perf_counter() - t0
    log.info(
        "retention.done",
        mode=result.mode,
        deleted=result.deleted,
        policies=result.policies,
        batches=result.batches,
        seconds=round(result.seconds, 3),
    )
    return result


async def retention_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """arq: the daily retention run with the worker's ``settings.retention_days``."""
    result = await run_retention(ctx["pool"], ctx["settings"].retention_days)
    return dict(msgspec.to_builtins(result))


FUNCTIONS: list[Any] = [retention_job]
# Daily at 03:17 UTC (a quiet hour for most shops); unique: one run per day across workers.
CRON_JOBS: list[CronJob] = [
    cron(retention_job, name="cron:retention", hour=3, minute=17, second=0, unique=True, timeout=3600)
]
