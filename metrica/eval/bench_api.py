"""API latency under load: N concurrent clients issuing GETs against a running service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx
import msgspec

from metrica.vision.pipeline import percentile

__all__ = ["ApiLatency", "bench_api"]


class ApiLatency(msgspec.Struct, kw_only=True):
    path: str
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float


async def _one_path(client: httpx.AsyncClient, path: str, concurrency: int, requests: int) -> ApiLatency:
    times: list[float] = []
    errors = 0
    todo = iter(range(requests))

    async def worker() -> None:
        nonlocal errors
        for _ in todo:
            t0 = time.perf_counter()
            try:
                response = await client.get(path)
                errors += response.status_code >= 400
            except httpx.HTTPError:
                errors += 1
            times.append((time.perf_counter() - t0) * 1e3)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return ApiLatency(
        path=path,
        requests=len(times),
        errors=errors,
        p50_ms=round(percentile(times, 50), 2),
        p95_ms=round(percentile(times, 95), 2),
        p99_ms=round(percentile(times, 99), 2),
        rps=round(len(times) / wall, 1),
    )


async def bench_api(
    url: str, token: str, paths: Sequence[str], *, concurrency: int = 20, requests: int = 500
) -> list[ApiLatency]:
    limits = httpx.Limits(max_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        await client.get(paths[0])  # warm the connection pool and the server's caches
        return [await _one_path(client, path, concurrency, requests) for path in paths]
