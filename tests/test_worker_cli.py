"""`metrica worker` as an operator runs it: a process that does jobs and stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import arq
import pytest

from metrica.jobs.worker import QUEUE, STOP_GRACE_SECONDS
from tests.api_helpers import temp_database

REDIS_URL = "redis://127.0.0.1:6379/6"
METRICA = Path(sys.executable).parent / "metrica"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_worker_runs_jobs_and_stops_on_a_signal(sig: signal.Signals, tmp_path: Path) -> None:
    async with temp_database("metrica_test_worker_cli") as dsn:
        stderr = (tmp_path / "worker.log").open("w+")
        env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": dsn, "REDIS_URL": REDIS_URL, "HOME": str(tmp_path)}
        proc = subprocess.Popen([str(METRICA), "worker"], stderr=stderr, env=env)
        redis = await arq.create_pool(arq.connections.RedisSettings.from_dsn(REDIS_URL))
        try:
            job = await redis.enqueue_job("ping", _queue_name=QUEUE)
            assert job is not None
            assert await job.result(timeout=60) == "pong"  # migrated its database and took the job

            proc.send_signal(sig)
            t0 = time.monotonic()
            rc = await asyncio.to_thread(proc.wait, STOP_GRACE_SECONDS + 10)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
            await redis.aclose()
        stderr.seek(0)
        lines = [json.loads(x) for x in stderr.read().splitlines()]
    assert rc == 0, lines
    assert took < STOP_GRACE_SECONDS + 5
    events = [x["event"] for x in lines]
    assert "worker.started" in events and events[-1] == "worker.stopped", events
