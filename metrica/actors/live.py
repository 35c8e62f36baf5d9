"""The live hub: per-store "inside now", today's visitors and the 15-minute inflow, pushed on every change.

The hub sits beside the event writer: the supervisor hands it every event (`LiveHub.on_event`, O(1) per
crossing) and it publishes the store's new `LiveState` (msgspec JSON) through ``publish(store_id, data)``,
which the API wires to the Litestar channel ``store.{id}`` (in memory, or Redis when several API processes
serve the phones). A service restart must not reset the counter, so `LiveHub.load` rebuilds today's counts
and the inflow window from the ``crossings`` table.

Business days: a store's day starts at ``day_start_hour`` in its IANA time zone, so a day lasts 23 or 25 hours
across a DST change. Only footfall lines (entrances) count; ``inside`` is IN − OUT since the day began, never
below zero. Delivery is at-least-once, so crossing ids seen today are remembered and a repeat is ignored.
"""

from __future__ import annotations

import bisect
import time as _time
import uuid
import zoneinfo
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec
import structlog

from metrica.events import ActorState, CameraStatus, CrossingEvent, Event, OccupancySample
from metrica.site import Camera, Store

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "INFLOW_WINDOW",
    "CameraSummary",
    "LiveHub",
    "LiveState",
    "business_day",
    "local_day_start",
]

log = structlog.get_logger(__name__)

INFLOW_WINDOW = timedelta(minutes=15)
ONLINE_STATES: frozenset[ActorState] = frozenset({"running"})


def _tz(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_day_start(store: Store, day: date) -> datetime:
    """The instant (UTC) the business day ``day`` begins: ``day_start_hour`` on that date in the store's zone.

    An hour that a spring-forward skips maps to the instant of the jump (zoneinfo's fold=0 uses the offset
    before the change); an hour a fall-back repeats is its first occurrence.
    """
    local = datetime.combine(day, time(store.day_start_hour), tzinfo=_tz(store.timezone))
    # In UTC: Python subtracts and compares two datetimes that share a tzinfo by wall clock, which is
    # wrong across a DST change; UTC instants are always right.
    return local.astimezone(UTC)


def business_day(store: Store, instant: datetime) -> tuple[date, datetime, datetime]:
    """(business date, its start, the next day's start) of the day that holds ``instant`` (aware); UTC."""
    day = instant.astimezone(_tz(store.timezone)).date()
    start = local_day_start(store, day)
    if start > instant:
        day -= timedelta(days=1)
        start = local_day_start(store, day)
    else:
        nxt = local_day_start(store, day + timedelta(days=1))
        if nxt <= instant:  # cannot happen with whole-day steps, kept for safety
            day += timedelta(days=1)
            start = nxt
    return day, start, local_day_start(store, day + timedelta(days=1))


class CameraSummary(msgspec.Struct, kw_only=True):
    """One camera of the store as the phone sees it: "camera offline" when ``online`` is false."""

    camera_id: int
    name: str
    state: ActorState | None = None  # None until the actor reports
    online: bool = False
    fps: float = 0.0
    since: datetime | None = None


class LiveState(msgspec.Struct, kw_only=True):
    """What the phone shows for a store right now (the WebSocket message, and GET /api/stores/{id}/live)."""

    store_id: int
    inside: int  # entrance IN − OUT since the business day began, never below zero
    visitors_in: int
    visitors_out: int
    inflow_15m: int  # entrance INs stamped in the last 15 minutes
    day_start: datetime  # the current business day's start, in the store's time zone
    updated_at: datetime
    cameras_online: int
    cameras_total: int
    cameras: list[CameraSummary]
    seq: int  # increases with every published change (across restarts: it starts at the wall clock in µs)
    occupancy_limit: int | None = None
    # Tells this message from the others the socket carries ({"type": "alert", ...} from the worker).
    type: Literal["live"] = "live"


class _Store:
    """Mutable per-store state; `LiveState` is the immutable snapshot of it."""

    __slots__ = (
        "cameras",
        "day",
        "day_start",
        "inflow",
        "ins",
        "last_sample_at",
        "next_day_start",
        "outs",
        "sampled_inside",
        "seen",
        "store",
        "updated_at",
    )

    def __init__(self, store: Store, now: datetime) -> None:
        self.store = store
        self.day, self.day_start, self.next_day_start = business_day(store, now)
        self.ins = 0
        self.outs = 0
        self.seen: set[uuid.UUID] = set()  # crossing ids counted since day_start (or in the inflow window)
        self.inflow: deque[tuple[datetime, uuid.UUID]] = deque()  # entrance INs in the window, by ts
        self.cameras: dict[int, CameraSummary] = {}
        self.updated_at = now
        self.sampled_inside = 0  # last value handed to on_sample (a new store starts empty)
        self.last_sample_at: datetime | None = None

    @property
    def inside(self) -> int:
        return max(0, self.ins - self.outs)

    def evict(self, now: datetime) -> bool:
        """Drop INs older than the window; True when something was dropped."""
        cutoff = now - INFLOW_WINDOW
        dropped = False
        while self.inflow and self.inflow[0][0] < cutoff:
            self.inflow.popleft()
            dropped = True
        return dropped

    def add_inflow(self, ts: datetime, crossing_id: uuid.UUID) -> None:
        item = (ts, crossing_id)
        if not self.inflow or item >= self.inflow[-1]:
            self.inflow.append(item)
        else:  # a late event: keep the window sorted so eviction stays a popleft
            bisect.insort(self.inflow, item)


class LiveHub:
    """Per-store live counters fed by events, published on every change.

    ``publish(store_id, data)`` receives the msgspec JSON of the store's `LiveState`. ``on_sample`` receives
    an `OccupancySample` for the writer when ``inside`` changed, at most every ``sample_interval`` seconds
    per store (a change inside the interval is sent by a later event or `tick`). ``now`` is the wall clock
    (aware UTC), injectable for tests. Call `load` before the camera actors start; call `tick` about once
    a second (`run` does) so the day rolls over and the inflow window drains with no events.
    """

    def __init__(
        self,
        publish: Callable[[int, bytes], None] | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        on_sample: Callable[[OccupancySample], None] | None = None,
        sample_interval: float = 5.0,
    ) -> None:
        self.publish = publish
        self.on_sample = on_sample
        self.sample_interval = sample_interval
        clock = now or (lambda: datetime.now(UTC))
        self._now = lambda: clock().astimezone(UTC)
        self._stores: dict[int, _Store] = {}
        self._camera_store: dict[int, int] = {}
        self._encoder = msgspec.json.Encoder()
        # Monotonic across restarts as long as the wall clock is: clients drop a message older than one seen.
        self._seq = _time.time_ns() // 1000
        self.events = 0
        self.duplicates = 0
        self.ignored = 0

    # -- set-up -------------------------------------------------------------------------------------

    @property
    def store_ids(self) -> list[int]:
        return list(self._stores)

    def add_store(self, store: Store) -> None:
        """Track a store with zero counts (no database); an existing store keeps its counts."""
        st = self._stores.get(store.id)
        if st is None:
            self._stores[store.id] = _Store(store, self._now())
        else:
            st.store = store

    async def load(self, pool: asyncpg.Pool, stores: Sequence[Store]) -> None:
        """Rebuild today's counts and the inflow window of ``stores`` from the ``crossings`` table."""
        from metrica.db import queries  # the db layer is only needed here

        now = self._now()
        for store in stores:
            st = _Store(store, now)
            since = min(st.day_start, now - INFLOW_WINDOW)
            rows = await queries.footfall_since(pool, store.id, since)
            cutoff = now - INFLOW_WINDOW
            for crossing_id, ts, direction in rows:
                if ts >= st.day_start:
                    st.seen.add(crossing_id)
                    if direction == "in":
                        st.ins += 1
                    else:
                        st.outs += 1
                if direction == "in" and ts >= cutoff:
                    st.seen.add(crossing_id)
                    st.add_inflow(ts, crossing_id)
            old = self._stores.get(store.id)
            if old is not None:
                st.cameras = old.cameras
            st.sampled_inside = st.inside  # the database already holds this value's history
            self._stores[store.id] = st
            log.info(
                "live.loaded",
                store_id=store.id,
                visitors_in=st.ins,
                visitors_out=st.outs,
                inflow_15m=len(st.inflow),
                day_start=st.day_start.isoformat(),
            )

    def set_cameras(self, cameras: Iterable[Camera]) -> None:
        """The configured cameras: enabled ones count in ``cameras_total``; states survive a re-set."""
        by_store: dict[int, dict[int, CameraSummary]] = {sid: {} for sid in self._stores}
        self._camera_store = {}
        for cam in cameras:
            self._camera_store[cam.id] = cam.store_id
            st = self._stores.get(cam.store_id)
            if st is None or not cam.enabled:
                continue
            old = st.cameras.get(cam.id)
            summary = old or CameraSummary(camera_id=cam.id, name=cam.name)
            summary.name = cam.name
            by_store[cam.store_id][cam.id] = summary
        for store_id, summaries in by_store.items():
            st = self._stores[store_id]
            if [(c.camera_id, c.name) for c in st.cameras.values()] != [
                (c.camera_id, c.name) for c in summaries.values()
            ]:
                st.cameras = summaries
                self._changed(st, self._now())
            else:
                st.cameras = summaries

    # -- events -------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Apply one event; publishes the store's state when it changed. Never raises on bad input."""
        if isinstance(event, CrossingEvent):
            self._on_crossing(event)
        elif isinstance(event, CameraStatus):
            self._on_status(event)
        # OccupancySample: the hub is their source, nothing to do.

    def _on_crossing(self, event: CrossingEvent) -> None:
        st = self._stores.get(event.store_id)
        if st is None or not event.footfall:
            self.ignored += 1
            return
        if event.ts.tzinfo is None:  # the vocabulary says UTC; a naive stamp must not raise here
            event = msgspec.structs.replace(event, ts=event.ts.replace(tzinfo=UTC))
        now = self._now()
        rolled = self._roll(st, now)
        if event.id in st.seen:
            self.duplicates += 1
            if rolled:
                self._changed(st, now)
            return
        counted = False
        if event.ts >= st.day_start:
            if event.direction == "in":
                st.ins += 1
            else:
                st.outs += 1
            counted = True
        if event.direction == "in" and event.ts >= now - INFLOW_WINDOW:
            st.add_inflow(event.ts, event.id)
            counted = True
        if counted:
            st.seen.add(event.id)
            self.events += 1
        else:
            self.ignored += 1  # stamped before today's start and outside the window: history only
        st.evict(now)
        if counted or rolled:
            self._changed(st, now)

    def _on_status(self, event: CameraStatus) -> None:
        store_id = self._camera_store.get(event.camera_id)
        st = self._stores.get(store_id) if store_id is not None else None
        if st is None:
            return
        summary = st.cameras.get(event.camera_id)
        if summary is None:
            return  # a disabled or unknown camera: not part of the summary
        summary.fps = event.fps
        if summary.state != event.state:
            summary.state = event.state
            summary.online = event.state in ONLINE_STATES
            summary.since = event.ts
            self._changed(st, self._now())

    # -- time ---------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Roll days over, drain the inflow window, send due occupancy samples; publish what changed."""
        now = self._now()
        for st in self._stores.values():
            rolled = self._roll(st, now)
            drained = st.evict(now)
            if rolled or drained:
                self._changed(st, now)
            else:
                self._maybe_sample(st)

    async def run(self, interval: float = 1.0) -> None:
        """Call `tick` every ``interval`` seconds until cancelled."""
        import asyncio

        while True:
            await asyncio.sleep(interval)
            try:
                self.tick()
            except Exception:  # a tick must never kill the loop
                log.exception("live.tick_failed")

    def _roll(self, st: _Store, now: datetime) -> bool:
        if now < st.next_day_start:
            return False
        st.day, st.day_start, st.next_day_start = business_day(st.store, now)
        st.ins = st.outs = 0
        # Keep the ids still in the inflow window: a repeat of one must not count in it twice.
        st.seen = {crossing_id for _, crossing_id in st.inflow}
        log.info("live.day_rolled", store_id=st.store.id, day_start=st.day_start.isoformat())
        return True

    # -- output -------------------------------------------------------------------------------------

    def state(self, store_id: int) -> LiveState:
        """The store's current state (KeyError if the hub does not track it)."""
        st = self._stores[store_id]
        now = self._now()
        if self._roll(st, now) | st.evict(now):
            self._changed(st, now)
        return self._snapshot(st)

    def state_json(self, store_id: int) -> bytes:
        return self._encoder.encode(self.state(store_id))

    def _snapshot(self, st: _Store) -> LiveState:
        cams = sorted(st.cameras.values(), key=lambda c: c.camera_id)
        tz = _tz(st.store.timezone)
        return LiveState(
            store_id=st.store.id,
            inside=st.inside,
            visitors_in=st.ins,
            visitors_out=st.outs,
            inflow_15m=len(st.inflow),
            day_start=st.day_start.astimezone(tz),
            updated_at=st.updated_at,
            cameras_online=sum(1 for c in cams if c.online),
            cameras_total=len(cams),
            cameras=[msgspec.structs.replace(c) for c in cams],
            seq=self._seq,
            occupancy_limit=st.store.occupancy_limit,
        )

    def _changed(self, st: _Store, now: datetime) -> None:
        self._seq += 1
        st.updated_at = now
        if self.publish is not None:
            try:
                self.publish(st.store.id, self._encoder.encode(self._snapshot(st)))
            except Exception:  # a broken subscriber path must not stop counting
                log.exception("live.publish_failed", store_id=st.store.id)
        self._maybe_sample(st)

    def _maybe_sample(self, st: _Store) -> None:
        if self.on_sample is None or st.sampled_inside == st.inside:
            return
        now = self._now()
        if st.last_sample_at is not None and (now - st.last_sample_at).total_seconds() < self.sample_interval:
            return
        st.sampled_inside = st.inside
        st.last_sample_at = now
        try:
            self.on_sample(OccupancySample(ts=now, store_id=st.store.id, inside=st.inside))
        except Exception:
            log.exception("live.sample_failed", store_id=st.store.id)
