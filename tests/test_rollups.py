"""Rollups on a real PostgreSQL (and the arq path on a real Redis, db 1).

Every expectation is recomputed in Python from the raw rows the test inserted (an independent
implementation of the hour grid, occupancy, its integral and peaks), never copied from the code under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import arq
import asyncpg
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from metrica.config import CameraConfig, LineConfig, Settings, SiteConfig, StoreConfig
from metrica.db import site
from metrica.jobs import rollups
from metrica.jobs.rollups import compute_days, rollup_pass, rollup_store_day
from metrica.jobs.worker import QUEUE, create_worker, redis_settings
from metrica.site import Store
from tests.api_helpers import make_pool, temp_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDIS_DB1 = "redis://127.0.0.1:6379/1"
PARIS = ZoneInfo("Europe/Paris")
TUNIS = ZoneInfo("Africa/Tunis")
H = timedelta(hours=1)

SITE = SiteConfig(
    stores=[
        StoreConfig(
            name="Paris",
            timezone="Europe/Paris",
            cameras=[
                CameraConfig(
                    name="door",
                    source="door.mp4",
                    lines=[
                        LineConfig(name="entrance", segment=(0, 100, 600, 100)),
                        LineConfig(name="aisle", segment=(300, 0, 300, 400), footfall=False),
                    ],
                ),
                CameraConfig(
                    name="back", source="back.mp4", lines=[LineConfig(name="back", segment=(0, 0, 9, 9))]
                ),
            ],
        ),
        StoreConfig(
            name="Tunis",
            timezone="Africa/Tunis",
            cameras=[
                CameraConfig(
                    name="door", source="t.mp4", lines=[LineConfig(name="entrance", segment=(0, 0, 9, 9))]
                ),
                CameraConfig(name="idle", source="i.mp4"),
            ],
        ),
        StoreConfig(
            name="Tunis6",
            timezone="Africa/Tunis",
            day_start_hour=6,
            cameras=[
                CameraConfig(
                    name="door", source="t6.mp4", lines=[LineConfig(name="entrance", segment=(0, 0, 9, 9))]
                )
            ],
        ),
    ]
)


@dataclass(frozen=True)
class Ev:
    ts: datetime
    store_id: int
    camera_id: int
    line_id: int
    line: str
    direction: str
    footfall: bool


@dataclass
class Site:
    stores: dict[str, Store]
    lines: dict[str, list[tuple[int, int, str, bool]]]  # store name → (camera_id, line_id, name, footfall)
    cameras: dict[str, list[int]]


async def load_site(pool: asyncpg.Pool) -> Site:
    await site.bootstrap(pool, SITE)
    stores = {s.name: s for s in await site.list_stores(pool)}
    lines: dict[str, list[tuple[int, int, str, bool]]] = {}
    cameras: dict[str, list[int]] = {}
    for name, s in stores.items():
        cams = await site.list_cameras(pool, store_id=s.id)
        cameras[name] = [c.id for c in cams]
        lines[name] = [(c.id, ln.id, ln.name, ln.footfall) for c in cams for ln in c.lines]
    return Site(stores=stores, lines=lines, cameras=cameras)


async def insert(pool: asyncpg.Pool, events: Iterable[Ev], inserted_at: datetime | None = None) -> None:
    rows = [
        (uuid.uuid4(), e.ts, e.store_id, e.camera_id, e.line_id, e.line, e.direction, e.footfall, i)
        for i, e in enumerate(events)
    ]
    if inserted_at is None:
        await pool.executemany(
            """INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track,
                                      session, frame)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'test', 1)""",
            rows,
        )
    else:
        await pool.executemany(
            """INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track,
                                      session, frame, inserted_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'test', 1, $10)""",
            [(*r, inserted_at) for r in rows],
        )


def random_events(
    rng: random.Random, st: Site, store: str, start: datetime, end: datetime, n: int
) -> list[Ev]:
    s = st.stores[store]
    span = (end - start).total_seconds()
    out = []
    for _ in range(n):
        cam, lid, name, footfall = rng.choice(st.lines[store])
        ts = start + timedelta(seconds=rng.uniform(0, span))
        ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)  # some ties at the millisecond are fine
        out.append(Ev(ts, s.id, cam, lid, name, rng.choice(["in", "in", "out"]), footfall))
    return out


# -- an independent reference ------------------------------------------------------------------------


@dataclass
class RefHour:
    start: datetime
    end: datetime
    ins: int = 0
    outs: int = 0
    peak: int = 0
    occ_seconds: float = 0.0


@dataclass
class RefDay:
    start: datetime
    end: datetime
    hours: list[RefHour]
    peak: int
    peak_at: datetime | None

    @property
    def ins(self) -> int:
        return sum(h.ins for h in self.hours)

    @property
    def outs(self) -> int:
        return sum(h.outs for h in self.hours)

    @property
    def occ_seconds(self) -> float:
        return sum(h.occ_seconds for h in self.hours)


def local_start(store: Store, d: date) -> datetime:
    return datetime.combine(d, time(store.day_start_hour), tzinfo=ZoneInfo(store.timezone)).astimezone(UTC)


def reference_day(store: Store, d: date, events: Iterable[Ev], now: datetime | None = None) -> RefDay:
    """Hours step by 3600 s from the local day start; occupancy = S − min(0, min prefix S), INs first at a
    tie; a level counts for the peak when a crossing reaches it or it is held for a positive time."""
    start, end = local_start(store, d), local_start(store, d + timedelta(days=1))
    stop = min(end, now) if now else end
    hours = []
    a = start
    while a < end:
        hours.append(RefHour(a, min(a + H, end)))
        a += H
    evs = sorted(
        (e for e in events if e.store_id == store.id and e.footfall and start <= e.ts < end),
        key=lambda e: (e.ts, e.direction != "in"),
    )
    steps: list[tuple[datetime, int]] = []  # (instant, occupancy from then on)
    s = low = 0
    for e in evs:
        s += 1 if e.direction == "in" else -1
        low = min(low, s)
        steps.append((e.ts, s - low))
    for h in hours:
        h.ins = sum(1 for e in evs if h.start <= e.ts < h.end and e.direction == "in")
        h.outs = sum(1 for e in evs if h.start <= e.ts < h.end and e.direction == "out")
        carried = 0
        for t, occ in steps:
            if t < h.start:
                carried = occ
        first_at = next((t for t, _ in steps if t >= h.start), None)
        held = h.start < stop and (first_at is None or first_at > h.start)
        levels = [occ for t, occ in steps if h.start <= t < h.end] + ([carried] if held else [])
        h.peak = max(levels, default=0)
        # ∫ occupancy over [h.start, min(h.end, stop)): the level in force on each piece.
        edges = sorted(
            {h.start, min(max(h.start, stop), h.end)} | {t for t, _ in steps if h.start < t < h.end}
        )
        total = 0.0
        for x, y in itertools.pairwise(edges):
            y = min(y, stop)
            if y <= x:
                continue
            level = 0
            for t, occ in steps:
                if t <= x:
                    level = occ
            total += level * (y - x).total_seconds()
        h.occ_seconds = total
    peak = max((h.peak for h in hours), default=0)
    peak_at = next((t for t, occ in steps if occ == peak), None) if peak else None
    return RefDay(start, end, hours, peak, peak_at)


async def stored_day(
    pool: asyncpg.Pool, store: Store, d: date
) -> tuple[list[asyncpg.Record], asyncpg.Record]:
    hours = await pool.fetch(
        "SELECT * FROM store_hourly WHERE store_id = $1 AND business_date = $2 ORDER BY hour_start",
        store.id,
        d,
    )
    day = await pool.fetchrow(
        "SELECT * FROM store_daily WHERE store_id = $1 AND business_date = $2", store.id, d
    )
    return hours, day


async def assert_day_matches(pool: asyncpg.Pool, store: Store, d: date, events: list[Ev]) -> RefDay:
    ref = reference_day(store, d, events)
    hours, day = await stored_day(pool, store, d)
    assert [r["hour_start"] for r in hours] == [h.start for h in ref.hours]
    assert [(r["ins"], r["outs"]) for r in hours] == [(h.ins, h.outs) for h in ref.hours]
    assert [r["peak_occupancy"] for r in hours] == [h.peak for h in ref.hours]
    assert [r["occupancy_seconds"] for r in hours] == pytest.approx([h.occ_seconds for h in ref.hours])
    assert day is not None
    assert (day["ins"], day["outs"], day["peak_occupancy"]) == (ref.ins, ref.outs, ref.peak)
    assert (day["day_start"], day["day_end"], day["peak_at"]) == (ref.start, ref.end, ref.peak_at)
    assert day["occupancy_seconds"] == pytest.approx(ref.occ_seconds)
    if ref.ins:
        assert day["avg_dwell_seconds"] == pytest.approx(ref.occ_seconds / ref.ins)
    else:
        assert day["avg_dwell_seconds"] is None
    return ref


# -- fixtures ----------------------------------------------------------------------------------------


@dataclass
class Env:
    pool: asyncpg.Pool
    site: Site


@pytest_asyncio.fixture(loop_scope="module")
async def env() -> AsyncIterator[Env]:
    """A private database per test: rollup_state (the watermark) is database-wide."""
    async with temp_database("metrica_test_rollups") as dsn:
        pool = await make_pool(dsn)
        try:
            yield Env(pool, await load_site(pool))
        finally:
            await pool.close()


# -- occupancy, dwell, uptime on a hand-built day ----------------------------------------------------


async def test_hand_built_day_occupancy_peak_dwell_and_uptime(env: Env) -> None:
    store = env.site.stores["Tunis"]  # UTC+1, no DST
    door, idle = env.site.cameras["Tunis"]
    ((cam, lid, name, _),) = env.site.lines["Tunis"]
    d = date(2026, 6, 10)

    def at(hh: int, mm: int = 0) -> datetime:
        return datetime(2026, 6, 10, hh, mm, tzinfo=TUNIS).astimezone(UTC)

    seq = [
        (at(10), "in"),
        (at(10), "in"),
        (at(10, 30), "out"),
        (at(10, 45), "in"),
        (at(11, 15), "out"),
        (at(11, 30), "out"),
        (at(11, 40), "out"),  # one OUT too many: occupancy stays at 0, never -1
        (at(12), "in"),
        (at(12, 20), "out"),
        (at(12, 40), "out"),  # an OUT and an IN at one instant: the IN counts first (else 1 forever after)
        (at(12, 40), "in"),
        (at(12, 50), "in"),
        (at(13), "out"),  # leaves exactly as hour 13 begins: nobody is inside during hour 13
    ]
    events = [Ev(ts, store.id, cam, lid, name, direction, True) for ts, direction in seq]
    events.append(Ev(at(10, 5), store.id, cam, 999, "aisle", "in", False))  # not an entrance
    await insert(env.pool, events)
    await env.pool.executemany(
        "INSERT INTO camera_status (ts, camera_id, state) VALUES ($1, $2, $3)",
        [
            (at(22) - timedelta(days=1), door, "running"),  # state carried into the day
            (at(12), door, "reconnecting"),
            (at(12, 30), door, "running"),
        ],
    )

    await rollup_store_day(env.pool, store, d)
    hours, day = await stored_day(env.pool, store, d)
    assert len(hours) == 24
    by_local = {r["hour_start"].astimezone(TUNIS).hour: r for r in hours}
    # 10:00-10:30 two inside, 10:30-10:45 one, 10:45-11:00 two.
    assert by_local[10]["occupancy_seconds"] == 2 * 1800 + 1 * 900 + 2 * 900
    assert (by_local[10]["ins"], by_local[10]["outs"], by_local[10]["peak_occupancy"]) == (3, 1, 2)
    # 11:00-11:15 two (carried in), 11:15-11:30 one, then nobody (the extra OUT is clamped).
    assert by_local[11]["occupancy_seconds"] == 2 * 900 + 1 * 900
    assert (by_local[11]["outs"], by_local[11]["peak_occupancy"]) == (3, 2)
    # 12:00-12:20 one, 12:40 one for no time, 12:50-13:00 one.
    assert by_local[12]["occupancy_seconds"] == 1 * 1200 + 1 * 600
    assert (by_local[12]["ins"], by_local[12]["outs"], by_local[12]["peak_occupancy"]) == (3, 2, 1)
    assert (by_local[13]["outs"], by_local[13]["peak_occupancy"]) == (1, 0)
    assert all(by_local[h]["occupancy_seconds"] == 0 for h in by_local if h not in (10, 11, 12))
    assert all(by_local[h]["peak_occupancy"] == 0 for h in by_local if h not in (10, 11, 12))
    assert (day["ins"], day["outs"], day["peak_occupancy"], day["peak_at"]) == (6, 7, 2, at(10))
    assert day["occupancy_seconds"] == 6300 + 2700 + 1800
    assert day["avg_dwell_seconds"] == (6300 + 2700 + 1800) / 6
    await assert_day_matches(env.pool, store, d, events)  # the reference agrees with the hand count

    lines = await env.pool.fetch(
        "SELECT line_id, line, footfall, ins, outs FROM line_daily WHERE store_id = $1 ORDER BY line_id",
        store.id,
    )
    assert [tuple(r) for r in lines] == [(lid, name, True, 6, 7), (999, "aisle", False, 1, 0)]
    uptime = {
        r["camera_id"]: (r["running_seconds"], r["observed_seconds"])
        for r in await env.pool.fetch("SELECT * FROM camera_daily WHERE business_date = $1", d)
    }
    assert uptime == {door: (86400 - 1800, 86400), idle: (0, 86400)}

    # While the day runs: the integral and the observed time stop at now; counts are by timestamp.
    (live,) = await compute_days(env.pool, store, [d], now=at(10, 40))
    hour10 = next(h for h in live.hours if h.hour_start == at(10))
    assert hour10.occupancy_seconds == 2 * 1800 + 1 * 600
    assert live.occupancy_seconds == 2 * 1800 + 1 * 600
    assert live.cameras[door] == ((10 * 60 + 40) * 60, (10 * 60 + 40) * 60)

    # Idempotent: a second recomputation changes nothing and adds no row.
    before = await env.pool.fetch("SELECT * FROM store_hourly ORDER BY hour_start")
    await rollup_store_day(env.pool, store, d)
    after = await env.pool.fetch("SELECT * FROM store_hourly ORDER BY hour_start")
    assert [dict(r) | {"computed_at": None} for r in after] == [
        dict(r) | {"computed_at": None} for r in before
    ]


# -- the hour grid across DST, and business days that start at 06:00 --------------------------------


@pytest.mark.parametrize(
    ("day", "rows", "labels"),
    [
        (date(2026, 3, 29), 23, ["00:00+01:00", "01:00+01:00", "03:00+02:00", "04:00+02:00"]),
        (date(2026, 10, 25), 25, ["00:00+02:00", "01:00+02:00", "02:00+02:00", "02:00+01:00"]),
        (date(2026, 7, 1), 24, ["00:00+02:00", "01:00+02:00", "02:00+02:00", "03:00+02:00"]),
    ],
)
async def test_paris_dst_days_have_23_and_25_hourly_rows(
    env: Env, day: date, rows: int, labels: list[str]
) -> None:
    store = env.site.stores["Paris"]
    start = local_start(store, day)
    rng = random.Random(day.toordinal())
    events = random_events(rng, env.site, "Paris", start - 2 * H, start + (rows + 2) * H, 1200)
    # One entrance IN in each of the first five hours (both runs of a repeated 02:00 included).
    cam, lid, name, _ = env.site.lines["Paris"][0]
    events += [
        Ev(start + i * H + timedelta(minutes=7), store.id, cam, lid, name, "in", True) for i in range(5)
    ]
    await insert(env.pool, events)
    await rollup_store_day(env.pool, store, day)
    hours, _ = await stored_day(env.pool, store, day)
    assert len(hours) == rows
    local = [r["hour_start"].astimezone(PARIS).isoformat() for r in hours[:4]]
    assert [x[11:16] + x[19:] for x in local] == labels
    assert all(b["hour_start"] - a["hour_start"] == H for a, b in itertools.pairwise(hours))
    await assert_day_matches(env.pool, store, day, events)


async def test_tunis_days_with_and_without_a_day_start_hour(env: Env) -> None:
    rng = random.Random(11)
    for name in ("Tunis", "Tunis6"):
        store = env.site.stores[name]
        d = date(2026, 3, 29)  # a DST day in Europe, an ordinary one in Tunis
        start = local_start(store, d)
        assert start.astimezone(TUNIS).hour == store.day_start_hour
        events = random_events(rng, env.site, name, start - 6 * H, start + 30 * H, 600)
        await insert(env.pool, events)
        await rollup_store_day(env.pool, store, d)
        hours, _ = await stored_day(env.pool, store, d)
        assert len(hours) == 24
        assert hours[0]["hour_start"] == start and hours[-1]["hour_start"] == start + 23 * H
        await assert_day_matches(env.pool, store, d, events)
    # 03:00 on March 30 in Tunis belongs to business day March 29 of the store whose days start at 06:00.
    t6 = env.site.stores["Tunis6"]
    row = await env.pool.fetchrow(
        "SELECT business_date FROM store_hourly WHERE store_id = $1 AND hour_start = $2",
        t6.id,
        datetime(2026, 3, 30, 3, tzinfo=TUNIS).astimezone(UTC),
    )
    assert row is not None and row["business_date"] == date(2026, 3, 29)


# -- passes: full, incremental, late batches, retention cutoff --------------------------------------


async def test_full_pass_matches_counts_recomputed_from_raw(env: Env) -> None:
    rng = random.Random(5)
    events: list[Ev] = []
    days = {
        "Paris": [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30), date(2026, 10, 25)],
        "Tunis": [date(2026, 3, 29), date(2026, 6, 1)],
        "Tunis6": [date(2026, 6, 1), date(2026, 6, 2)],
    }
    for name, dates in days.items():
        store = env.site.stores[name]
        for d in dates:
            events += random_events(
                rng, env.site, name, local_start(store, d), local_start(store, d) + 24 * H, 300
            )
    await insert(env.pool, events)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    result = await rollup_pass(env.pool, full=True, now=now)
    assert not result.skipped and result.full
    for name, dates in days.items():
        store = env.site.stores[name]
        touched = {d for d in dates}
        # Events near a day's edges spill into the next business day (Paris on DST days): those too.
        touched |= {
            (e.ts.astimezone(ZoneInfo(store.timezone)) - timedelta(hours=store.day_start_hour)).date()
            for e in events
            if e.store_id == store.id
        }
        for d in sorted(touched):
            await assert_day_matches(env.pool, store, d, events)
        stored = {
            r["business_date"]
            for r in await env.pool.fetch(
                "SELECT business_date FROM store_daily WHERE store_id = $1", store.id
            )
        }
        today = (now.astimezone(ZoneInfo(store.timezone)) - timedelta(hours=store.day_start_hour)).date()
        assert stored == touched | {today}
    # Per line: every line's daily and hourly counts equal a count of its raw rows.
    for r in await env.pool.fetch("SELECT * FROM line_daily"):
        store = next(s for s in env.site.stores.values() if s.id == r["store_id"])
        start, end = (
            local_start(store, r["business_date"]),
            local_start(store, r["business_date"] + timedelta(days=1)),
        )
        mine = [e for e in events if e.line_id == r["line_id"] and start <= e.ts < end]
        assert (r["ins"], r["outs"]) == (
            sum(e.direction == "in" for e in mine),
            sum(e.direction == "out" for e in mine),
        )
        assert r["footfall"] == mine[0].footfall and r["line"] == mine[0].line
    total = await env.pool.fetchval("SELECT sum(ins + outs) FROM line_hourly")
    assert total == len([e for e in events if e.ts < now])
    # The watermark now covers every inserted row.
    assert result.watermark == await env.pool.fetchval("SELECT max(inserted_at) FROM crossings")


async def test_late_batch_updates_its_hour_and_day_on_the_next_incremental_pass(env: Env) -> None:
    store = env.site.stores["Paris"]
    rng = random.Random(9)
    d = date(2026, 10, 25)  # the 25-hour day
    start = local_start(store, d)
    events = random_events(rng, env.site, "Paris", start, start + 25 * H, 400)
    await insert(env.pool, events)
    now = datetime(2026, 10, 28, 12, tzinfo=UTC)
    first = await rollup_pass(env.pool, now=now)
    assert first.days >= 1 and first.watermark is not None
    await assert_day_matches(env.pool, store, d, events)
    old_hours, old_day = await stored_day(env.pool, store, d)

    # An outbox replayed three days later: events of the repeated 02:00 (the second one, +01:00).
    cam, lid, name, _ = env.site.lines["Paris"][0]
    second_two = start + 3 * H
    assert second_two.astimezone(PARIS).isoformat()[11:] == "02:00:00+01:00"
    late = [
        Ev(second_two + timedelta(minutes=m), store.id, cam, lid, name, "in", True) for m in range(5, 50, 5)
    ]
    await insert(env.pool, late)
    nothing = await env.pool.fetchval(
        "SELECT ins FROM store_hourly WHERE store_id = $1 AND hour_start = $2", store.id, second_two
    )
    assert nothing == old_hours[3]["ins"]  # not rolled up until a pass runs
    second = await rollup_pass(env.pool, now=now + timedelta(minutes=1))
    assert second.days >= 1 and second.watermark is not None and second.watermark > first.watermark
    ref = await assert_day_matches(env.pool, store, d, events + late)
    hours, day = await stored_day(env.pool, store, d)
    assert hours[3]["ins"] == old_hours[3]["ins"] + len(late)
    assert [h["ins"] for i, h in enumerate(hours) if i != 3] == [
        h["ins"] for i, h in enumerate(old_hours) if i != 3
    ]
    assert day["ins"] == old_day["ins"] + len(late) == ref.ins

    # A transaction that began before the watermark but committed after the pass: its inserted_at is
    # older than the watermark, and the overlap still finds it.
    straggler = [Ev(start + 20 * H, store.id, cam, lid, name, "out", True)]
    await insert(env.pool, straggler, inserted_at=second.watermark - timedelta(minutes=2))
    await rollup_pass(env.pool, now=now + timedelta(minutes=2))
    await assert_day_matches(env.pool, store, d, events + late + straggler)


async def test_days_beyond_retention_are_left_alone_and_logged(env: Env) -> None:
    store = env.site.stores["Tunis"]
    cam, lid, name, _ = env.site.lines["Tunis"][0]
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    old = date(2026, 1, 5)
    events = [Ev(local_start(store, old) + 10 * H, store.id, cam, lid, name, "in", True)]
    await insert(env.pool, events)
    await rollup_pass(env.pool, full=True, now=now)
    assert (await stored_day(env.pool, store, old))[1]["ins"] == 1
    # Retention (30 days) has since deleted part of that day; a late event for it arrives.
    await insert(env.pool, [Ev(local_start(store, old) + 11 * H, store.id, cam, lid, name, "in", True)])
    with capture_logs() as logs:
        result = await rollup_pass(env.pool, now=now + H, retention_days=30)
    assert result.expired_days == 1
    assert any(x["event"] == "rollup.day_expired" and x["store_id"] == store.id for x in logs)
    assert (await stored_day(env.pool, store, old))[1]["ins"] == 1  # kept as rolled up


async def test_incremental_pass_skips_while_another_holds_the_lock(env: Env) -> None:
    async with env.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", rollups._PASS_LOCK)
        try:
            assert (await rollup_pass(env.pool)).skipped
            full = asyncio.create_task(rollup_pass(env.pool, full=True))
            await asyncio.sleep(0.3)
            assert not full.done()  # a full pass waits its turn
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", rollups._PASS_LOCK)
    assert not (await full).skipped


# -- the arq path ------------------------------------------------------------------------------------


async def _redis_db1() -> arq.ArqRedis:
    settings = Settings.from_env({}, database_url="postgresql://unused", redis_url=REDIS_DB1)
    redis = await arq.create_pool(redis_settings(settings), default_queue_name=QUEUE)
    await redis.flushdb()  # db 1 is this test module's own
    return redis


async def test_cron_tick_runs_the_pass_once_across_two_workers(env: Env) -> None:
    dsn = await _dsn(env.pool)
    store = env.site.stores["Paris"]
    rng = random.Random(3)
    d = date(2026, 3, 29)
    events = random_events(rng, env.site, "Paris", local_start(store, d), local_start(store, d) + 23 * H, 500)
    await insert(env.pool, events)
    redis = await _redis_db1()
    settings = Settings.from_env({}, database_url=dsn, redis_url=REDIS_DB1)
    pools = [await arq.create_pool(redis_settings(settings), default_queue_name=QUEUE) for _ in range(2)]
    # Two worker processes: each has its own copy of the cron schedule.
    workers = [
        create_worker(
            settings,
            burst=True,
            handle_signals=False,
            redis_pool=p,
            cron_jobs=[dataclasses.replace(c) for c in rollups.CRON_JOBS],
            poll_delay=0.05,
        )
        for p in pools
    ]
    try:
        tick = datetime(2026, 11, 24, 9, 59, 59, 900000, tzinfo=UTC)
        for w in workers:  # both see the same minute come
            await w.run_cron(tick, 0.5)
            await w.run_cron(tick + timedelta(milliseconds=200), 0.5)
            for c in w.cron_jobs:  # and the next tick is a while away (no catching up to the wall clock)
                c.next_run = datetime.now(UTC) + H
        queued = await redis.zrange(QUEUE, 0, -1)
        assert len(queued) == 1 and b"cron:rollup_pass" in queued[0]
        await asyncio.gather(*(w.main() for w in workers))
        assert sum(w.jobs_complete for w in workers) == 1 and sum(w.jobs_failed for w in workers) == 0
        await assert_day_matches(env.pool, store, d, events)
    finally:
        for w in workers:
            await w.close()
        await redis.flushdb()
        await redis.aclose()


async def test_two_workers_running_passes_at_once_corrupt_nothing(env: Env) -> None:
    dsn = await _dsn(env.pool)
    rng = random.Random(4)
    events: list[Ev] = []
    dates = [date(2026, 3, 29) + timedelta(days=i) for i in range(4)]
    for name in ("Paris", "Tunis", "Tunis6"):
        store = env.site.stores[name]
        for d in dates:
            events += random_events(
                rng, env.site, name, local_start(store, d), local_start(store, d) + 24 * H, 200
            )
    await insert(env.pool, events)
    redis = await _redis_db1()
    settings = Settings.from_env({}, database_url=dsn, redis_url=REDIS_DB1)
    jobs = [await redis.enqueue_job("rollup_pass_job", _job_id=f"pass-{i}") for i in range(4)]
    jobs.append(await redis.enqueue_job("rollup_full_job", _job_id="full"))
    workers = [
        create_worker(settings, burst=True, handle_signals=False, cron=False, poll_delay=0.05)
        for _ in range(2)
    ]
    try:
        await asyncio.gather(*(w.main() for w in workers))
        results = [await j.result(timeout=10) for j in jobs if j is not None]
        assert len(results) == 5 and all(isinstance(r, dict) for r in results)
        assert any(r["full"] and not r["skipped"] and r["days"] > 0 for r in results)
        assert sum(w.jobs_failed for w in workers) == 0
        for name in ("Paris", "Tunis", "Tunis6"):
            store = env.site.stores[name]
            for d in dates:
                await assert_day_matches(env.pool, store, d, events)
        dup = await env.pool.fetchval(
            "SELECT count(*) FROM (SELECT store_id, business_date FROM store_daily GROUP BY 1, 2 HAVING count(*) > 1) x"
        )
        assert dup == 0
    finally:
        for w in workers:
            await w.close()
        await redis.flushdb()
        await redis.aclose()


async def _dsn(pool: asyncpg.Pool) -> str:
    name = await pool.fetchval("SELECT current_database()")
    return f"postgresql://postgres@127.0.0.1:5432/{name}"
