"""`metrica bench-rollups` on a tiny history (3 stores × 10 days): the report's shape, and the generated data
and rollups checked here again, independently of the benchmark's own check, before the database is dropped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from metrica.eval.bench_rollups import FAST_SETTINGS, bench_rollups, bench_url, database_name, format_report

SERVER = "postgresql://postgres@127.0.0.1:5432"
PASS_KEYS = {"seconds", "extrapolated", "stores", "store_days", "ms_per_store_day"}
LATENCY_KEYS = {"requests", "errors", "buckets", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


async def drop(name: str) -> None:
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_kept(**kwargs: Any) -> tuple[dict[str, Any], asyncpg.Connection, str]:
    name = f"metrica_bench_test_{uuid.uuid4().hex[:8]}"
    try:
        result = await bench_rollups(f"{SERVER}/{name}", requests=10, keep=True, **kwargs)
        return result, await asyncpg.connect(f"{SERVER}/{name}"), name
    except BaseException:
        await drop(name)
        raise


def test_only_its_own_database() -> None:
    assert bench_url(f"{SERVER}/test") == f"{SERVER}/metrica_bench"
    assert (
        bench_url(f"{SERVER}/metrica_bench_x?sslmode=disable") == f"{SERVER}/metrica_bench_x?sslmode=disable"
    )
    with pytest.raises(ValueError, match="metrica_bench"):
        database_name(f"{SERVER}/test")


@pytest.mark.asyncio
async def test_tiny_benchmark_report_and_rollups_equal_raw_counts() -> None:
    result, conn, name = await run_kept(stores=3, days=10, visits_per_day=60)
    try:
        volume = result["volume"]
        assert volume["stores"] == 3 and volume["days"] == 10
        assert volume["crossings"] > 3 * 10 * 60  # an IN and an OUT per visit
        for key in ("full_pass", "incremental_pass", "idle_pass"):
            assert result[key].keys() >= PASS_KEYS
            assert result[key]["extrapolated"] is False
        assert result["full_pass"]["store_days"] == 3 * 11  # 10 whole days and the one T falls in
        assert result["incremental_pass"]["new_crossings"] > 0
        api = result["api"]
        for key in ("year_daily", "week_hourly"):
            assert api[key].keys() >= LATENCY_KEYS
            assert api[key]["requests"] == 10 and api[key]["errors"] == 0
            assert 0 < api[key]["p50_ms"] <= api[key]["p95_ms"] <= api[key]["max_ms"]
        assert api["year_daily"]["buckets"] == 365
        assert api["week_hourly"]["buckets"] in (167, 168)  # a spring-forward week has 167 hours
        assert result["check"]["ok"] and result["check"]["api_totals_equal_raw"]
        assert {s["timezone"] for s in result["check"]["stores"]} == {
            "Europe/Paris",
            "Africa/Tunis",
            "Asia/Kolkata",
        }
        assert "rollups equal raw counts" in format_report(result)

        # Independently: every store's rolled-up INs/OUTs (daily and hourly) equal its raw entrance crossings.
        rows = await conn.fetch(
            """SELECT s.id,
                      (SELECT count(*) FROM crossings c WHERE c.store_id = s.id AND c.footfall AND c.direction = 'in') AS raw_in,
                      (SELECT count(*) FROM crossings c WHERE c.store_id = s.id AND c.footfall AND c.direction = 'out') AS raw_out,
                      (SELECT sum(ins) FROM store_daily d WHERE d.store_id = s.id) AS day_in,
                      (SELECT sum(outs) FROM store_daily d WHERE d.store_id = s.id) AS day_out,
                      (SELECT sum(ins) FROM store_hourly h WHERE h.store_id = s.id) AS hour_in
               FROM stores s ORDER BY s.id"""
        )
        assert len(rows) == 3
        for r in rows:
            assert r["raw_in"] > 0
            assert r["raw_in"] == r["day_in"] == r["hour_in"] and r["raw_out"] == r["day_out"]

        # The generated day looks like a shop's: visits in opening hours only, an OUT after each IN, every
        # store open in the extra hour [T, T + 1 h).
        end = datetime.fromisoformat(volume["history_end"])
        stores = {
            r["id"]: ZoneInfo(r["timezone"]) for r in await conn.fetch("SELECT id, timezone FROM stores")
        }
        hours: dict[int, set[int]] = {sid: set() for sid in stores}
        for r in await conn.fetch("SELECT store_id, ts FROM crossings WHERE direction = 'in' AND footfall"):
            hours[r["store_id"]].add(r["ts"].astimezone(stores[r["store_id"]]).hour)
        for sid, seen in hours.items():
            assert min(seen) >= 9 and max(seen) <= 21, (sid, sorted(seen))
        late = await conn.fetch(
            "SELECT DISTINCT store_id FROM crossings WHERE ts >= $1 AND ts < $2",
            end,
            end + timedelta(hours=1),
        )
        assert {r["store_id"] for r in late} == set(stores)
        # A visit is (store, track, day of its session): one IN, then at most one OUT (none if still inside).
        visits = await conn.fetchrow(
            """SELECT count(*) AS n, count(*) FILTER (WHERE i <> 1 OR o > 1 OR left_at <= came_at) AS bad
               FROM (SELECT store_id, track, right(session, 10) AS day,
                            count(*) FILTER (WHERE direction = 'in') AS i,
                            count(*) FILTER (WHERE direction = 'out') AS o,
                            min(ts) FILTER (WHERE direction = 'in') AS came_at,
                            max(ts) FILTER (WHERE direction = 'out') AS left_at
                     FROM crossings WHERE footfall AND ts < $1::timestamptz - interval '2 hours' GROUP BY 1, 2, 3) v""",
            end,
        )
        assert visits["n"] > 3 * 10 * 30 and visits["bad"] == 0
        assert await conn.fetchval("SELECT max(ts) FROM crossings") < datetime.now(UTC)
    finally:
        await conn.close()
        await drop(name)


@pytest.mark.asyncio
async def test_sampled_full_pass_is_labelled_and_settings_apply() -> None:
    result, conn, name = await run_kept(
        stores=2, days=5, visits_per_day=30, full_pass_stores=1, settings=FAST_SETTINGS
    )
    try:
        full = result["full_pass"]
        assert full["extrapolated"] is True
        assert full["sample_stores"] == 1 and full["store_days"] == 2 * 6
        assert full["sample_store_days"] == 6
        assert "EXTRAPOLATED" in format_report(result)
        assert result["settings"] == FAST_SETTINGS
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        assert result["check"]["ok"] and result["check"]["api_totals_equal_raw"]
    finally:
        await conn.close()
        await drop(name)
