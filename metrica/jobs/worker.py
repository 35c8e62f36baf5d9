"""`metrica worker`: the arq worker that runs every job module's functions and cron jobs.

Several workers may run against one Redis: arq gives each cron tick a job id, so a tick runs once, and
the jobs themselves are idempotent (see `metrica.jobs`). `metrica demo` runs one in-process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.worker import Function, Worker

from metrica.config import ConfigError, Settings
from metrica.jobs import alerts, reports, retention, rollups, webhooks

__all__ = ["QUEUE", "JobContext", "create_worker", "live_channel", "redis_settings", "run_worker"]

log = structlog.get_logger(__name__)

QUEUE = "metrica:jobs"  # one queue for every job; a deployment's own Redis (or db number) keeps it apart
JobContext = dict[str, Any]  # arq's ctx: "pool", "settings", "redis", "channel_prefix", plus arq's own keys
_MODULES = (rollups, reports, alerts, webhooks, retention)


def live_channel(ctx: JobContext, store_id: int) -> str:
    """The Redis pub/sub channel the API's WebSocket forwards for ``store_id`` (see `metrica.api.services`)."""
    return f"{ctx.get('channel_prefix', '')}store.{store_id}"


def redis_settings(settings: Settings) -> RedisSettings:
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL is not set: the worker needs Redis (`metrica demo` starts an embedded one)"
        )
    try:
        return RedisSettings.from_dsn(settings.redis_url)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"REDIS_URL: {exc} (expected redis://, rediss:// or unix://)") from None


async def ping(ctx: JobContext) -> str:
    """A job that only answers: `metrica worker` is up and reaches the database."""
    return str(await ctx["pool"].fetchval("SELECT 'pong'"))


def all_functions() -> list[Function | Any]:
    return [ping, *(f for m in _MODULES for f in m.FUNCTIONS)]


def all_cron_jobs() -> list[CronJob]:
    return [c for m in _MODULES for c in m.CRON_JOBS]


def create_worker(
    settings: Settings,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    channel_prefix: str = "",
    cron: bool = True,
    **overrides: Any,
) -> Worker:
    """An arq `Worker` over ``settings`` (DATABASE_URL, REDIS_URL); its startup opens the database pool.

    ``cron=False`` leaves the cron jobs out (tests enqueue what they need); ``overrides`` go to `Worker`.
    """
    if settings.database_url is None:
        raise ConfigError("DATABASE_URL is not set: the worker reads events and writes rollups there")
    dsn = settings.database_url

    async def on_startup(ctx: JobContext) -> None:
        from metrica.db.pool import create_pool

        ctx["settings"] = settings
        ctx["channel_prefix"] = channel_prefix
        ctx["pool"] = await create_pool(dsn)
        log.info(
            "worker.started", functions=len(all_functions()), cron_jobs=len(all_cron_jobs()) if cron else 0
        )

    async def on_shutdown(ctx: JobContext) -> None:
        pool = ctx.pop("pool", None)
        if pool is not None:
            await pool.close()
        log.info("worker.stopped")

    options: dict[str, Any] = {
        "queue_name": QUEUE,
        "cron_jobs": all_cron_jobs() if cron else [],
        "redis_settings": redis_settings(settings),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "burst": burst,
        "handle_signals": handle_signals,
        "max_jobs": 4,
        "job_timeout": 1800,  # a full rollup pass over a year of a large site
        "keep_result": 3600,
    }
    options.update(overrides)
    return Worker(all_functions(), **options)


# On SIGINT/SIGTERM: stop taking jobs and let running ones finish this long (under docker's 10 s).
STOP_GRACE_SECONDS = 8


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: arq stops taking jobs, waits up to STOP_GRACE_SECONDS for the running
    ones, then cancels what is left (every job is one transaction and idempotent: it runs again later)."""
    from metrica.db.migrate import migrate

    assert settings.database_url is not None
    await migrate(settings.database_url)  # a worker may start before the API on a fresh database
    worker = create_worker(settings, job_completion_wait=STOP_GRACE_SECONDS)
    try:
        # async_run, not main(): arq's signal handler stops the worker by cancelling the task async_run
        # records; with main() it has nothing to cancel and SIGTERM was ignored
        await worker.async_run()
    except asyncio.CancelledError:
        pass
    finally:
        await worker.close()
