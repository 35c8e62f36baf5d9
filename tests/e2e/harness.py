"""A demo-like Metrica for browser tests: the real app, real PostgreSQL (a temporary database), real Redis
pub/sub for the live fan-out, the real live hub and event writer, and the built dashboard at ``/``.

The demo shop and its camera are `metrica.service.demo_site` (the PETS09 clip, so the admin's snapshot
decodes a real frame); its camera actor is a `RecordingActors` stand-in, so no detector burns the CPU and
the test can check exactly which camera an admin restarted. `Dashboard.ingest` feeds a crossing the way
the supervisor does (hub first, then the writer), in the server's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import asyncpg

from metrica.actors.live import LiveHub, business_day
from metrica.actors.writer import EventWriter
from metrica.api import create_app
from metrica.api.services import Services
from metrica.config import Settings
from metrica.db import site as site_db
from metrica.events import ActorState, CameraStatus, CrossingEvent, crossing_id
from metrica.service import demo_site
from metrica.site import Camera, Store
from tests.api_helpers import ADMIN, VIEWER, RecordingActors, Server, make_pool, temp_database

REPO = Path(__file__).resolve().parents[2]
FRONTEND_DIST = REPO / "frontend" / "dist"
REDIS_URL = "redis://127.0.0.1:6379/4"  # pub/sub ignores the number; the channel prefix keeps runs apart

# Yesterday's stored hours (local hour → INs) and the same weekday a week before, for the history page.
YESTERDAY_HOURS = {9: 3, 12: 5, 17: 2}
LAST_WEEK_HOURS = {12: 4}
DWELL_MINUTES = 20


class ReportingActors(RecordingActors):
    """`RecordingActors` whose started cameras report "running" to the hub, as a real actor does."""

    def __init__(self) -> None:
        super().__init__()
        self.hub: LiveHub | None = None

    async def apply(self, cameras: Sequence[Camera]) -> None:
        before = len(self.started)
        await super().apply(cameras)
        # A real actor reports a moment later, after the API has handed the hub the new camera list.
        loop = asyncio.get_running_loop()
        for camera_id in self.started[before:]:
            loop.call_later(0.05, self._report, camera_id)

    def _report(self, camera_id: int) -> None:
        if self.hub is not None:
            self.hub.on_event(
                CameraStatus(ts=datetime.now(UTC), camera_id=camera_id, state="running", fps=5.0)
            )


@dataclass
class Dashboard:
    server: Server
    pool: asyncpg.Pool
    hub: LiveHub
    writer: EventWriter
    actors: ReportingActors
    store: Store
    camera: Camera
    yesterday: date
    channel: str = ""  # the Redis pub/sub channel of the store's live messages
    _track: int = 1000

    @property
    def url(self) -> str:
        return self.server.url

    async def ingest(
        self, direction: Literal["in", "out"] = "in", ts: datetime | None = None
    ) -> CrossingEvent:
        """One crossing of the entrance line, as a camera would report it, now (or at ``ts``)."""
        self._track += 1
        line = self.camera.lines[0]
        event = CrossingEvent(
            id=crossing_id(self.camera.id, "e2e", line.name, self._track, 0),
            ts=ts or datetime.now(UTC),
            store_id=self.store.id,
            camera_id=self.camera.id,
            line_id=line.id,
            line=line.name,
            direction=direction,
            footfall=line.footfall,
            track=self._track,
            session="e2e",
            frame=self._track,
        )
        self.hub.on_event(event)
        await self.writer.submit(event)
        return event

    def camera_state(self, state: ActorState) -> None:
        """The camera reports a state, as its actor does on every change (it is "offline" until then)."""
        self.hub.on_event(CameraStatus(ts=datetime.now(UTC), camera_id=self.camera.id, state=state, fps=5.0))


def _local(store: Store, day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(store.timezone)).astimezone(UTC)


async def _seed(dashboard: Dashboard, now: datetime) -> None:
    """Yesterday's and last week's visits, and two visitors still inside today, through the real writer."""
    for day, hours in (
        (dashboard.yesterday, YESTERDAY_HOURS),
        (dashboard.yesterday - timedelta(days=7), LAST_WEEK_HOURS),
    ):
        for hour, count in hours.items():
            for n in range(count):  # each visitor stays DWELL_MINUTES
                await dashboard.ingest("in", _local(dashboard.store, day, hour, 5 + n))
                await dashboard.ingest("out", _local(dashboard.store, day, hour, 5 + n + DWELL_MINUTES))
    _, day_start, _ = business_day(dashboard.store, now)
    for n in range(2):
        await dashboard.ingest("in", max(day_start, now - timedelta(minutes=30)) + timedelta(seconds=n))
    await dashboard.writer.flush(10)


@contextlib.asynccontextmanager
async def dashboard_server(tmp: Path, video: Path) -> AsyncIterator[Dashboard]:
    if not (FRONTEND_DIST / "index.html").is_file():
        raise RuntimeError(
            f"{FRONTEND_DIST} is not built: run `bash scripts/setup.sh` (npm ci && npm run build)"
        )
    async with temp_database("metrica_e2e") as dsn:
        pool = await make_pool(dsn)
        writer = EventWriter(dsn, tmp / "outbox")
        await writer.start()
        try:
            await site_db.bootstrap(pool, demo_site(video))
            store = (await site_db.list_stores(pool))[0]
            cameras = await site_db.list_cameras(pool)
            actors = ReportingActors()
            await actors.apply(cameras)
            hub = LiveHub(on_sample=writer.submit_nowait)
            hub.add_store(store)
            now = datetime.now(UTC)
            yesterday = business_day(store, now)[0] - timedelta(days=1)
            dashboard = Dashboard(None, pool, hub, writer, actors, store, cameras[0], yesterday)  # type: ignore[arg-type]
            await _seed(dashboard, now)
            hub = LiveHub(on_sample=writer.submit_nowait)  # a fresh hub rebuilds today from the table
            await hub.load(pool, [store])
            hub.set_cameras(cameras)
            dashboard.hub = actors.hub = hub
            dashboard.camera_state("running")
            settings = Settings(admin_token=ADMIN, viewer_token=VIEWER, redis_url=REDIS_URL, data_dir=tmp)
            services = Services(
                settings=settings,
                pool=pool,
                actors=actors,
                hub=hub,
                writer=writer,
                channel_prefix=f"e2e-{uuid.uuid4().hex[:8]}.",
                frontend_dir=FRONTEND_DIST,
            )
            dashboard.channel = services.channel(store.id)
            async with Server(create_app(services)) as server:
                dashboard.server = server
                yield dashboard
        finally:
            await writer.stop(10)
            await pool.close()
