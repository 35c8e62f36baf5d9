"""Retention on plain PostgreSQL: only raw rows older than the retention period go, in batches; rollups stay.
The arq path runs on a real Redis (db 1)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import arq
import asyncpg
import pytest
import pytest_asyncio

from metrica.config import Settings
from metrica.db.migrate import timescale_installed
from metrica.jobs.retention import run_retention
from metrica.jobs.rollups import rollup_pass
from metrica.jobs.worker import QUEUE, create_worker, redis_settings
from tests.api_helpers import make_pool, temp_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDIS_DB1 = "redis://127.0.0.1:6379/1"
NOW = datetime.now(UTC)
AGES = [1, 10, 29.9, 30.1, 60, 89, 91, 200, 500]  # days before NOW


@pytest_asyncio.fixture(loop_scope="module")
async def db() -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with temp_database("metrica_test_retention") as dsn:
        pool = await make_pool(dsn)
        try:
            if await timescale_installed(pool):
                pytest.skip("this test is for plain PostgreSQL (TimescaleDB drops chunks by policy)")
            await pool.execute("INSERT INTO stores (id, name, timezone) VALUES (1, 'S', 'Africa/Tunis')")
            await seed(pool)
            yield dsn, pool
        finally:
            await pool.close()


async def seed(pool: asyncpg.Pool) -> None:
    """Three rows per age in each raw table (27 per table)."""
    crossings, samples, status = [], [], []
    for i, age in enumerate(AGES):
        for k in range(3):
            ts = NOW - timedelta(days=age, seconds=k)
            crossings.append((uuid.uuid4(), ts, i * 3 + k))
            samples.append((ts, k + 1))
            status.append((ts, 7, "running"))
    await pool.executemany(
        """INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session,
                                  frame)
           VALUES ($1, $2, 1, 7, 1, 'door', 'in', true, $3, 's', 1)""",
        crossings,
    )
    await pool.executemany("INSERT INTO occupancy_samples (ts, store_id, inside) VALUES ($1, 1, $2)", samples)
    await pool.executemany("INSERT INTO camera_status (ts, camera_id, state) VALUES ($1, $2, $3)", status)


async def ages(pool: asyncpg.Pool, table: str) -> list[float]:
    rows = await pool.fetch(f"SELECT ts FROM {table} ORDER BY ts DESC")
    return [round((NOW - r["ts"]).total_seconds() / 86400, 1) for r in rows]


async def rollup_rows(pool: asyncpg.Pool) -> dict[str, int]:
    return {
        t: int(await pool.fetchval(f"SELECT count(*) FROM {t}"))
        for t in ("store_hourly", "store_daily", "line_hourly", "line_daily", "camera_daily")
    }


async def test_deletes_only_old_raw_rows_in_batches_and_keeps_rollups(db: tuple[str, asyncpg.Pool]) -> None:
    _, pool = db
    await rollup_pass(pool, full=True, now=NOW)
    kept_rollups = await rollup_rows(pool)
    assert kept_rollups["store_daily"] >= 9  # one day per age, at least
    old_day = await pool.fetchrow("SELECT * FROM store_daily ORDER BY business_date LIMIT 1")

    result = await run_retention(pool, 30, now=NOW, batch=4)
    assert result.mode == "delete"
    # crossings and samples: older than 30 days go; camera status keeps 90 days.
    young = [a for a in AGES if a < 30 for _ in range(3)]
    assert sorted(await ages(pool, "crossings")) == pytest.approx(sorted(young), abs=0.1)
    assert sorted(await ages(pool, "occupancy_samples")) == pytest.approx(sorted(young), abs=0.1)
    status_young = [a for a in AGES if a < 90 for _ in range(3)]
    assert sorted(await ages(pool, "camera_status")) == pytest.approx(sorted(status_young), abs=0.1)
    assert result.deleted == {
        "crossings": 27 - len(young),
        "occupancy_samples": 27 - len(young),
        "camera_status": 27 - len(status_young),
    }
    # 18 rows in batches of 4 take 5 DELETEs (the last finds fewer than 4); 9 status rows take 3.
    assert result.batches == 5 + 5 + 3
    # The history stays whole.
    assert await rollup_rows(pool) == kept_rollups
    assert (
        await pool.fetchrow("SELECT * FROM store_daily WHERE business_date = $1", old_day["business_date"])
        == old_day
    )

    again = await run_retention(pool, 30, now=NOW, batch=4)  # nothing left to do
    assert again.deleted == {"crossings": 0, "occupancy_samples": 0, "camera_status": 0}
    # The rollups of the deleted days are not recomputed from what is left of them.
    await rollup_pass(pool, now=NOW, retention_days=30)
    assert (
        await pool.fetchval("SELECT ins FROM store_daily WHERE business_date = $1", old_day["business_date"])
        == old_day["ins"]
    )


async def test_a_long_period_keeps_camera_status_longer_too(db: tuple[str, asyncpg.Pool]) -> None:
    _, pool = db
    result = await run_retention(pool, 300, now=NOW)
    assert result.deleted == {"crossings": 3, "occupancy_samples": 3, "camera_status": 3}  # the 500-day rows
    assert max(await ages(pool, "camera_status")) == pytest.approx(200, abs=0.1)
    with pytest.raises(ValueError, match="at least 1"):
        await run_retention(pool, 0)


async def test_the_worker_runs_the_retention_job(db: tuple[str, asyncpg.Pool]) -> None:
    dsn, pool = db
    settings = Settings.from_env({}, database_url=dsn, redis_url=REDIS_DB1, retention_days=45)
    redis = await arq.create_pool(redis_settings(settings), default_queue_name=QUEUE)
    await redis.flushdb()  # db 1 belongs to these tests
    worker = create_worker(settings, burst=True, handle_signals=False, cron=False, poll_delay=0.05)
    try:
        job = await redis.enqueue_job("retention_job")
        assert job is not None
        await worker.main()
        result = await job.result(timeout=10)
        assert result["mode"] == "delete" and result["deleted"]["crossings"] == 3 * sum(a > 45 for a in AGES)
        assert max(await ages(pool, "crossings")) < 45
        assert min(await ages(pool, "crossings")) == pytest.approx(1, abs=0.1)
    finally:
        await worker.close()
        await redis.flushdb()
        await redis.aclose()
