"""The live hub: today's counts, inside-now, 15-minute inflow, day rollover (DST days included), camera
summary, occupancy samples, and the bootstrap from the crossings table after a restart."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import pytest

from metrica.actors.live import LiveHub, LiveState, business_day, local_day_start
from metrica.db import queries
from metrica.events import CameraStatus, CrossingEvent, OccupancySample, crossing_id
from metrica.site import Camera, Store
from tests.api_helpers import make_pool, temp_database

PARIS = ZoneInfo("Europe/Paris")
TUNIS = ZoneInfo("Africa/Tunis")
_track = itertools.count(1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def crossing(
    ts: datetime, direction: str = "in", *, store_id: int = 1, footfall: bool = True, camera_id: int = 1
) -> CrossingEvent:
    track = next(_track)
    return CrossingEvent(
        id=crossing_id(camera_id, "s1", "door", track, 0),
        ts=ts.astimezone(UTC),
        store_id=store_id,
        camera_id=camera_id,
        line_id=1,
        line="door",
        direction=direction,  # type: ignore[arg-type]
        footfall=footfall,
        track=track,
        session="s1",
        frame=track,
    )


def make_hub(store: Store, clock: Clock, **kw: object) -> tuple[LiveHub, list[LiveState]]:
    published: list[LiveState] = []

    def publish(store_id: int, data: bytes) -> None:
        state = msgspec.json.decode(data, type=LiveState)
        assert state.store_id == store_id
        published.append(state)

    hub = LiveHub(publish, now=clock, **kw)  # type: ignore[arg-type]
    hub.add_store(store)
    return hub, published


# -- business days -----------------------------------------------------------------------------------


def test_business_day_respects_day_start_hour_and_dst() -> None:
    paris = Store(id=1, name="p", timezone="Europe/Paris", day_start_hour=0)
    # Last Sunday of March 2026: 23 hours; of October 2026: 25 hours.
    _, start, end = business_day(paris, datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert start == datetime(2026, 3, 28, 23, tzinfo=UTC) and end - start == timedelta(hours=23)
    _, start, end = business_day(paris, datetime(2026, 10, 25, 12, tzinfo=UTC))
    assert start == datetime(2026, 10, 24, 22, tzinfo=UTC) and end - start == timedelta(hours=25)

    # Day starting at 02:00: on the spring-forward day 02:00 does not exist; the day starts at the jump.
    early = Store(id=2, name="e", timezone="Europe/Paris", day_start_hour=2)
    start = local_day_start(early, datetime(2026, 3, 29).date())
    assert start.astimezone(UTC) == datetime(2026, 3, 29, 1, tzinfo=UTC)  # 03:00 CEST
    day, start, end = business_day(early, datetime(2026, 3, 29, 0, 30, tzinfo=UTC))  # 01:30 CET
    assert day.isoformat() == "2026-03-28" and end == datetime(2026, 3, 29, 1, tzinfo=UTC)

    tunis = Store(id=3, name="t", timezone="Africa/Tunis", day_start_hour=6)
    day, start, end = business_day(tunis, datetime(2026, 7, 1, 4, 59, tzinfo=UTC))  # 05:59 local
    assert day.isoformat() == "2026-06-30"
    assert start == datetime(2026, 6, 30, 5, tzinfo=UTC) and end == datetime(2026, 7, 1, 5, tzinfo=UTC)


# -- counting ----------------------------------------------------------------------------------------


def test_counts_inside_inflow_and_publish_every_change() -> None:
    store = Store(id=1, name="s", timezone="Africa/Tunis", day_start_hour=6)
    clock = Clock(datetime(2026, 7, 1, 10, 0, tzinfo=TUNIS))
    hub, published = make_hub(store, clock)

    hub.on_event(crossing(clock.now - timedelta(minutes=1), "out"))  # nobody inside yet: stays at 0
    assert hub.state(1).inside == 0 and hub.state(1).visitors_out == 1
    for _ in range(5):
        hub.on_event(crossing(clock.now, "in"))
    hub.on_event(crossing(clock.now, "out"))
    state = hub.state(1)
    assert (state.visitors_in, state.visitors_out, state.inside, state.inflow_15m) == (5, 2, 3, 5)
    assert len(published) == 7
    assert [p.seq for p in published] == sorted({p.seq for p in published})  # strictly increasing
    assert published[-1].inside == 3 and published[-1].day_start == datetime(2026, 7, 1, 6, tzinfo=TUNIS)

    # A second entrance camera adds to the same store; a non-entrance line counts nothing.
    hub.on_event(crossing(clock.now, "in", camera_id=2))
    hub.on_event(crossing(clock.now, "in", footfall=False))
    hub.on_event(crossing(clock.now, "in", store_id=99))  # a store the hub does not track
    assert hub.state(1).visitors_in == 6 and len(published) == 8

    # The inflow window drains with time alone: tick publishes the change.
    clock.advance(minutes=16)
    hub.tick()
    assert hub.state(1).inflow_15m == 0 and published[-1].inflow_15m == 0
    assert published[-1].visitors_in == 6  # today's counts stay


def test_duplicate_crossing_is_counted_once() -> None:
    store = Store(id=1, name="s", timezone="Africa/Tunis", day_start_hour=0)
    clock = Clock(datetime(2026, 7, 1, 10, 0, tzinfo=TUNIS))
    hub, published = make_hub(store, clock)
    event = crossing(clock.now, "in")
    hub.on_event(event)
    hub.on_event(event)
    assert hub.state(1).visitors_in == 1 and hub.state(1).inflow_15m == 1
    assert len(published) == 1 and hub.duplicates == 1


def test_crossing_before_day_start_is_not_today() -> None:
    store = Store(id=1, name="s", timezone="Africa/Tunis", day_start_hour=6)
    clock = Clock(datetime(2026, 7, 1, 6, 5, tzinfo=TUNIS))
    hub, _ = make_hub(store, clock)
    hub.on_event(crossing(datetime(2026, 7, 1, 5, 58, tzinfo=TUNIS), "in"))  # late delivery, yesterday
    state = hub.state(1)
    assert state.visitors_in == 0 and state.inside == 0
    assert state.inflow_15m == 1  # still a person who came in 7 minutes ago
    hub.on_event(crossing(datetime(2026, 7, 1, 4, 0, tzinfo=TUNIS), "in"))  # long ago: history only
    assert hub.state(1).inflow_15m == 1


def test_day_rolls_over_on_tick_and_on_event() -> None:
    store = Store(id=1, name="s", timezone="Africa/Tunis", day_start_hour=6)
    clock = Clock(datetime(2026, 7, 1, 5, 50, tzinfo=TUNIS))
    hub, published = make_hub(store, clock)
    for _ in range(3):
        hub.on_event(crossing(clock.now, "in"))
    assert hub.state(1).inside == 3 and hub.state(1).day_start == datetime(2026, 6, 30, 6, tzinfo=TUNIS)

    clock.now = datetime(2026, 7, 1, 6, 0, 0, 500, tzinfo=TUNIS)
    hub.tick()
    last = published[-1]
    assert (last.inside, last.visitors_in, last.visitors_out) == (0, 0, 0)
    assert last.day_start == datetime(2026, 7, 1, 6, tzinfo=TUNIS)
    assert last.inflow_15m == 3  # the window spans the day boundary

    # No tick: the next event rolls the day itself.
    clock.now = datetime(2026, 7, 2, 6, 1, tzinfo=TUNIS)
    hub.on_event(crossing(clock.now, "in"))
    state = hub.state(1)
    assert state.day_start == datetime(2026, 7, 2, 6, tzinfo=TUNIS) and state.visitors_in == 1


@pytest.mark.parametrize(
    ("before", "after", "hours"),
    [
        # Paris, day from 00:00: the spring-forward day is 23 h long, the fall-back day 25 h.
        (datetime(2026, 3, 28, 23, 59, tzinfo=PARIS), datetime(2026, 3, 30, 0, 0, tzinfo=PARIS), 23),
        (datetime(2026, 10, 24, 23, 59, tzinfo=PARIS), datetime(2026, 10, 26, 0, 0, tzinfo=PARIS), 25),
    ],
)
def test_rollover_on_dst_days(before: datetime, after: datetime, hours: int) -> None:
    store = Store(id=1, name="s", timezone="Europe/Paris", day_start_hour=0)
    clock = Clock(before)
    hub, _ = make_hub(store, clock)
    clock.advance(minutes=1)  # midnight: the DST day begins
    hub.tick()
    dst_day_start = hub.state(1).day_start
    hub.on_event(crossing(clock.now, "in"))
    # One microsecond before the next local midnight the DST day still holds the count.
    clock.now = after - timedelta(microseconds=1)
    hub.tick()
    assert hub.state(1).day_start == dst_day_start and hub.state(1).visitors_in == 1
    clock.now = after
    hub.tick()
    state = hub.state(1)
    assert state.visitors_in == 0 and state.day_start == after
    assert after.astimezone(UTC) - dst_day_start.astimezone(UTC) == timedelta(hours=hours)


def test_camera_summary_and_occupancy_samples() -> None:
    store = Store(id=1, name="s", timezone="Africa/Tunis", day_start_hour=0)
    clock = Clock(datetime(2026, 7, 1, 10, 0, tzinfo=TUNIS))
    samples: list[OccupancySample] = []
    hub, published = make_hub(store, clock, on_sample=samples.append, sample_interval=5.0)
    cams = [
        Camera(id=1, store_id=1, name="door", source="rtsp://u:p@h/x", fps=5),
        Camera(id=2, store_id=1, name="back", source="/dev/video0", fps=5),
        Camera(id=3, store_id=1, name="off", source="x.mp4", fps=5, enabled=False),
    ]
    hub.set_cameras(cams)
    state = hub.state(1)
    assert (state.cameras_online, state.cameras_total) == (0, 2)
    n = len(published)
    hub.on_event(CameraStatus(ts=clock.now, camera_id=1, state="running", fps=5.0))
    hub.on_event(CameraStatus(ts=clock.now, camera_id=2, state="running", fps=5.0))
    assert published[-1].cameras_online == 2 and len(published) == n + 2
    hub.on_event(CameraStatus(ts=clock.now, camera_id=2, state="running", fps=4.0))  # periodic: no push
    assert len(published) == n + 2
    hub.on_event(CameraStatus(ts=clock.now, camera_id=2, state="reconnecting"))
    last = published[-1]
    assert last.cameras_online == 1
    assert [(c.camera_id, c.online, c.state) for c in last.cameras] == [
        (1, True, "running"),
        (2, False, "reconnecting"),
    ]

    # Samples: the first change is sent, the next ones wait for the interval, tick flushes the last one.
    hub.on_event(crossing(clock.now, "in"))
    assert [s.inside for s in samples] == [1]
    hub.on_event(crossing(clock.now, "in"))
    hub.on_event(crossing(clock.now, "in"))
    assert [s.inside for s in samples] == [1]
    clock.advance(seconds=5)
    hub.tick()
    assert [s.inside for s in samples] == [1, 3]
    clock.advance(seconds=10)
    hub.tick()  # no change: no sample
    assert [s.inside for s in samples] == [1, 3] and samples[-1].store_id == 1


# -- bootstrap from the database ---------------------------------------------------------------------


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with temp_database("metrica_test_live") as dsn:
        p = await make_pool(dsn)
        try:
            yield p
        finally:
            await p.close()


async def insert(pool: asyncpg.Pool, events: list[CrossingEvent]) -> None:
    await pool.executemany(
        """INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session, frame)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [
            (
                e.id,
                e.ts,
                e.store_id,
                e.camera_id,
                e.line_id,
                e.line,
                e.direction,
                e.footfall,
                e.track,
                e.session,
                e.frame,
            )
            for e in events
        ],
    )


async def test_load_rebuilds_today_after_a_restart(pool: asyncpg.Pool) -> None:
    store = Store(id=1, name="s", timezone="Europe/Paris", day_start_hour=4)
    now = datetime(2026, 10, 25, 15, 0, tzinfo=PARIS)  # the 25-hour day, started 04:00 CET
    today = [crossing(now - timedelta(hours=h), "in") for h in (1, 2, 3, 5, 10)]
    today += [crossing(now - timedelta(minutes=m), "in") for m in (1, 5, 14)]
    today += [crossing(now - timedelta(hours=2), "out") for _ in range(3)]
    other = [
        crossing(datetime(2026, 10, 25, 3, 59, tzinfo=PARIS), "in"),  # before the day starts
        crossing(now, "in", footfall=False),  # not an entrance
        crossing(now, "in", store_id=2),  # another store
    ]
    await insert(pool, today + other)
    assert await queries.footfall_totals(pool, 1, datetime(2026, 10, 25, 4, tzinfo=PARIS)) == (8, 3)
    assert len(await queries.inflow_since(pool, 1, now - timedelta(minutes=15))) == 3

    clock = Clock(now)
    hub = LiveHub(now=clock)
    await hub.load(pool, [store])
    state = hub.state(1)
    assert (state.visitors_in, state.visitors_out, state.inside, state.inflow_15m) == (8, 3, 5, 3)
    assert state.day_start == datetime(2026, 10, 25, 4, tzinfo=PARIS)

    # An event the database already holds (an at-least-once repeat) is not counted again; a new one is.
    hub.on_event(today[5])
    assert hub.state(1).visitors_in == 8
    hub.on_event(crossing(now, "in"))
    assert hub.state(1).visitors_in == 9 and hub.state(1).inflow_15m == 4


def test_naive_timestamp_is_read_as_utc() -> None:
    store = Store(id=1, name="s", timezone="Africa/Tunis", day_start_hour=0)
    clock = Clock(datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    hub, _ = make_hub(store, clock)
    event = msgspec.structs.replace(crossing(clock.now, "in"), ts=datetime(2026, 7, 1, 9, 59))
    hub.on_event(event)
    assert hub.state(1).visitors_in == 1 and hub.state(1).inflow_15m == 1
