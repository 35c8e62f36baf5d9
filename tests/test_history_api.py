"""History routes (days, heatmap) through the real app under uvicorn, and the traffic report read from
rollups compared with the same report counted from raw events only (random data, random ranges)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec
import pytest
import pytest_asyncio

from metrica.actors.live import LiveHub, business_day
from metrica.api import create_app
from metrica.api.services import Services
from metrica.api.traffic import traffic_report
from metrica.config import Settings
from metrica.jobs.rollups import rollup_pass
from tests.api_helpers import ADMIN, VIEWER, RecordingActors, Server, make_pool, temp_database
from tests.test_rollups import Ev, Site, insert, load_site, local_start, random_events, reference_day

pytestmark = pytest.mark.asyncio(loop_scope="module")

V = {"Authorization": f"Bearer {VIEWER}"}
H = timedelta(hours=1)


def an_hour_ago() -> datetime:
    """An insert time older than the rollup pass's overlap: what a history looks like to the next pass."""
    return datetime.now(UTC) - H


async def roll_up(env: Env, now: datetime, *, full: bool = False) -> None:
    """A pass, then the live stream goes on (one fresh crossing in another store) and the next pass moves
    the watermark past the overlap: the history is then read from the rollups."""
    await rollup_pass(env.pool, now=now, full=full)
    tunis = env.site.stores["Tunis"]
    cam, lid, name, _ = env.site.lines["Tunis"][0]
    await insert(env.pool, [Ev(datetime.now(UTC), tunis.id, cam, lid, name, "in", True)])
    await rollup_pass(env.pool, now=now)


@dataclass
class Env:
    pool: asyncpg.Pool
    site: Site
    client: httpx.AsyncClient


@pytest_asyncio.fixture(loop_scope="module")
async def env() -> AsyncIterator[Env]:
    async with temp_database("metrica_test_history") as dsn:
        pool = await make_pool(dsn)
        try:
            st = await load_site(pool)
            services = Services(
                settings=Settings(admin_token=ADMIN, viewer_token=VIEWER),
                pool=pool,
                actors=RecordingActors(),
                hub=LiveHub(),
            )
            async with (
                Server(create_app(services)) as server,
                httpx.AsyncClient(base_url=server.url, timeout=30) as client,
            ):
                yield Env(pool, st, client)
        finally:
            await pool.close()


# -- days --------------------------------------------------------------------------------------------


async def test_days_from_rollups_and_live_for_today_and_late_events(env: Env) -> None:
    store = env.site.stores["Paris"]
    tz = ZoneInfo(store.timezone)
    now = datetime.now(UTC)
    today = business_day(store, now)[0]
    first = today - timedelta(days=6)
    rng = random.Random(1)
    events: list[Ev] = []
    for i in range(7):
        d = first + timedelta(days=i)
        start = local_start(store, d)
        events += random_events(rng, env.site, "Paris", start, min(start + 24 * H, now), 150)
    await insert(env.pool, events, inserted_at=an_hour_ago())  # history, not a fresh batch
    door, _back = env.site.cameras["Paris"]
    await env.pool.execute(
        "INSERT INTO camera_status (ts, camera_id, state) VALUES ($1, $2, 'running')",
        local_start(store, first) - 2 * H,
        door,
    )
    await roll_up(env, now)
    # A late batch for three days ago: not rolled up yet, so that day is computed from raw events.
    late_day = today - timedelta(days=3)
    cam, lid, name, _ = env.site.lines["Paris"][0]
    late = [
        Ev(local_start(store, late_day) + timedelta(hours=9, minutes=m), store.id, cam, lid, name, "in", True)
        for m in range(0, 60, 6)
    ]
    await insert(env.pool, late)
    events += late

    r = await env.client.get(
        f"/api/stores/{store.id}/days",
        params={"from": first.isoformat(), "to": (today + timedelta(days=5)).isoformat()},
        headers=V,
    )
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [x["date"] for x in rows] == [
        (first + timedelta(days=i)).isoformat() for i in range(7)
    ]  # no future
    answered_at = datetime.now(UTC)
    for x in rows:
        d = date.fromisoformat(x["date"])
        ref = reference_day(store, d, events, now=now)
        assert (x["in_count"], x["out_count"], x["peak_occupancy"]) == (ref.ins, ref.outs, ref.peak), d
        assert datetime.fromisoformat(x["day_start"]) == ref.start and x["day_start"].endswith(
            ref.start.astimezone(tz).isoformat()[19:]
        )
        assert datetime.fromisoformat(x["day_end"]) == ref.end
        assert (datetime.fromisoformat(x["peak_at"]) if x["peak_at"] else None) == ref.peak_at
        if d != today:  # today's integral runs to the moment of the answer
            assert x["avg_dwell_seconds"] == pytest.approx(ref.occ_seconds / ref.ins if ref.ins else None)
        else:
            assert (
                ref.occ_seconds
                <= x["avg_dwell_seconds"] * ref.ins
                <= (reference_day(store, d, events, now=answered_at).occ_seconds + 1e-6)
            )
        # One of the two cameras ran the whole time.
        assert x["camera_uptime"] == pytest.approx(0.5)
        assert x["live"] == (d in (today, late_day))
    assert any(x["in_count"] for x in rows)

    # Defaults: the 30 days ending today.
    r = await env.client.get(f"/api/stores/{store.id}/days", headers=V)
    assert r.status_code == 200
    dates = [x["date"] for x in r.json()]
    assert len(dates) == 30 and dates[-1] == today.isoformat()
    empty = next(x for x in r.json() if x["date"] == (first - timedelta(days=3)).isoformat())
    assert (empty["in_count"], empty["peak_at"], empty["avg_dwell_seconds"]) == (0, None, None)


async def test_heatmap_averages_by_business_weekday_and_local_hour(env: Env) -> None:
    store = env.site.stores["Tunis6"]  # days start at 06:00: 02:00 belongs to the previous business day
    tz = ZoneInfo(store.timezone)
    now = datetime.now(UTC)
    yesterday = business_day(store, now)[0] - timedelta(days=1)
    last = yesterday - timedelta(days=(yesterday.weekday() - 6) % 7)
    first = last - timedelta(days=13)
    assert first.weekday() == 0 and last.weekday() == 6
    rng = random.Random(2)
    span_start = local_start(store, first - timedelta(days=2))
    events = random_events(rng, env.site, "Tunis6", span_start, now, 1500)
    await insert(env.pool, events, inserted_at=an_hour_ago())  # history, not a fresh batch
    await roll_up(env, now)
    # A late batch in the second week: from there on the days are computed live, the first week is read
    # from store_hourly.
    late = random_events(rng, env.site, "Tunis6", local_start(store, first + timedelta(days=9)), now, 100)
    await insert(env.pool, late)
    events += late

    r = await env.client.get(f"/api/stores/{store.id}/heatmap", params={"weeks": 2}, headers=V)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"], body["days"], body["weeks"]) == (
        first.isoformat(),
        last.isoformat(),
        14,
        2,
    )
    assert body["hours"] == list(range(24)) and len(body["weekdays"]) == 7
    grid = [[0.0] * 24 for _ in range(7)]
    for e in events:
        local = e.ts.astimezone(tz)
        bdate = (local - timedelta(hours=store.day_start_hour)).date()
        if e.footfall and e.direction == "in" and first <= bdate <= last:
            grid[bdate.weekday()][local.hour] += 1
    expected = [[v / 2 for v in row] for row in grid]
    assert body["weekdays"] == [pytest.approx(row) for row in expected]
    assert sum(map(sum, expected)) > 0

    # An earlier `to` (a Wednesday) ends the window on the Sunday before it.
    wednesday = last - timedelta(days=4)
    r = await env.client.get(
        f"/api/stores/{store.id}/heatmap", params={"weeks": 1, "to": wednesday.isoformat()}, headers=V
    )
    assert r.json()["to"] == (last - timedelta(days=7)).isoformat()


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("days", {"from": "2026-13-01"}, 400, "from: expected a date"),
        ("days", {"to": "yesterday"}, 400, "to: expected a date"),
        ("days", {"from": "2026-11-10", "to": "2026-11-01"}, 400, "must not be after"),
        ("days", {"from": "2000-01-01", "to": "2026-11-01"}, 400, "at most 3700"),
        ("days", {"from": "1999-12-31"}, 400, "outside the years"),
        ("heatmap", {"weeks": "0"}, 400, "weeks"),
        ("heatmap", {"weeks": "many"}, 400, "weeks"),
        ("heatmap", {"weeks": "54"}, 400, "weeks"),
        ("heatmap", {"to": "2026-02-30"}, 400, "to: expected a date"),
    ],
)
async def test_bad_parameters_are_a_clear_400(
    env: Env, path: str, params: dict[str, str], status: int, words: str
) -> None:
    store = env.site.stores["Tunis"]
    r = await env.client.get(f"/api/stores/{store.id}/{path}", params=params, headers=V)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


async def test_unknown_store_is_404_and_a_token_is_needed(env: Env) -> None:
    for path in ("days", "heatmap"):
        r = await env.client.get(f"/api/stores/999/{path}", headers=V)
        assert r.status_code == 404 and "store 999" in r.json()["detail"]
        r = await env.client.get(f"/api/stores/1/{path}")
        assert r.status_code == 401


async def test_openapi_documents_both_shapes(env: Env) -> None:
    doc = (await env.client.get("/docs/openapi.json")).json()
    days = doc["paths"]["/api/stores/{store_id}/days"]["get"]
    heat = doc["paths"]["/api/stores/{store_id}/heatmap"]["get"]
    for word in ("in_count", "peak_at", "avg_dwell_seconds", "camera_uptime", "day_start"):
        assert word in days["description"]
    for word in ("weekdays", "Monday first", "days"):
        assert word in heat["description"]


# -- traffic: rollups + raw == raw -------------------------------------------------------------------


def _counts(report: Any) -> dict[str, Any]:
    data = msgspec.to_builtins(report)
    for b in data["buckets"]:
        b.pop("peak_occupancy")
        b.pop("avg_dwell_seconds")
    return data


async def test_traffic_from_rollups_equals_raw_counts_for_random_ranges(env: Env) -> None:
    rng = random.Random(42)
    now = datetime(2026, 10, 27, 13, 30, tzinfo=UTC)
    span = (datetime(2026, 10, 18, tzinfo=UTC), now)
    events: list[Ev] = []
    for name in ("Paris", "Tunis6"):
        events += random_events(rng, env.site, name, *span, 4000)
    # The entrance line was renamed at noon on the 22nd: a series shows the name it was last counted under.
    renamed = datetime(2026, 10, 22, 12, 17, tzinfo=UTC)
    events = [
        dataclasses.replace(e, line="door-in") if e.line == "entrance" and e.ts < renamed else e
        for e in events
    ]
    await insert(env.pool, events, inserted_at=an_hour_ago())  # history, not a fresh batch
    await roll_up(env, now, full=True)
    # Then a late batch (yesterday in Paris, and the DST day) and fresh events this hour: not rolled up.
    late = random_events(rng, env.site, "Paris", datetime(2026, 10, 24, 20, tzinfo=UTC), now - H, 60)
    late += random_events(rng, env.site, "Tunis6", now - timedelta(minutes=25), now, 20)
    await insert(env.pool, late)

    used_rollups = 0
    for i in range(60):
        name = rng.choice(["Paris", "Tunis6"])
        store = env.site.stores[name]
        tz = ZoneInfo(store.timezone)
        bucket = rng.choice(["hour", "day"])
        by = rng.choice(["store", "camera", "line"])
        if i < 6:  # the 25-hour day, every way
            from_, to = "2026-10-25", "2026-10-26"
            bucket, by, store = "hour", ["store", "camera", "line"][i % 3], env.site.stores["Paris"]
        elif i < 8:  # ending on the rename (day, then hour buckets): the later name wins
            from_, to = ("2026-10-20", "2026-10-23") if i == 6 else ("2026-10-22T10:00", "2026-10-22T15:00")
            bucket, by, store = ("day", "hour")[i - 6], "line", env.site.stores["Paris"]
        else:
            a = span[0] + timedelta(seconds=rng.uniform(0, 9.5 * 86400))
            b = a + timedelta(seconds=rng.uniform(3600, (4 if bucket == "hour" else 9) * 86400))
            from_ = (
                business_day(store, a)[0].isoformat() if rng.random() < 0.5 else a.astimezone(tz).isoformat()
            )
            to = b.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")
        kwargs: dict[str, Any] = {"from_": from_, "to": to, "bucket": bucket, "by": by, "now": now}
        with_rollups = await traffic_report(env.pool, store, **kwargs)
        raw = await traffic_report(env.pool, store, use_rollups=False, **kwargs)
        assert _counts(with_rollups) == _counts(raw), (name, from_, to, bucket, by)
        if 6 <= i < 8:
            assert {x.line for x in with_rollups.series or []} >= {"entrance", "aisle"}
        rolled = [b for b in with_rollups.buckets if b.peak_occupancy is not None]
        used_rollups += len(rolled)
        assert all(b.end <= now for b in rolled)  # never past the current hour
        assert all(b.peak_occupancy is None for b in raw.buckets)
    assert used_rollups > 200

    # Through HTTP: past days carry the peak and the dwell from the rollups.
    paris = env.site.stores["Paris"]
    r = await env.client.get(
        f"/api/stores/{paris.id}/traffic",
        params={"from": "2026-10-19", "to": "2026-10-24", "bucket": "day"},
        headers=V,
    )
    assert r.status_code == 200, r.text
    buckets = r.json()["buckets"]
    assert len(buckets) == 5 and all(b["peak_occupancy"] is not None for b in buckets)
    for b in buckets:
        ref = reference_day(paris, date.fromisoformat(b["start"][:10]), events + late)
        assert (b["in_count"], b["peak_occupancy"]) == (ref.ins, ref.peak)
        assert b["avg_dwell_seconds"] == pytest.approx(ref.occ_seconds / ref.ins if ref.ins else None)
