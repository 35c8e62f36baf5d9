"""The running service: database, event writer, live hub, camera supervisor and the HTTP API in one process.

`metrica serve` runs it against real servers (``DATABASE_URL``, ``REDIS_URL``); `metrica demo` first starts
embedded PostgreSQL and Redis under the data directory and loads a demo store whose camera replays a
video as if it were live. Events flow: camera process → supervisor → live hub (at once, for the phone)
and event writer (batched into PostgreSQL, or the on-disk outbox while it is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog
import uvicorn

from metrica.config import CameraConfig, ConfigError, LineConfig, Settings, SiteConfig, StoreConfig

__all__ = ["Tokens", "demo_site", "load_tokens", "run_demo", "run_service"]

log = structlog.get_logger(__name__)

SHARED_VIDEO = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sequences" / "PETS09-S2L1" / "video.mp4"
)


@dataclass(frozen=True, slots=True)
class Tokens:
    admin: str
    viewer: str


def load_tokens(data_dir: Path) -> Tokens:
    """The demo's tokens: made once, kept in ``data_dir/tokens.json`` (mode 600) so links keep working."""
    path = data_dir / "tokens.json"
    if path.exists():
        raw = json.loads(path.read_text())
        return Tokens(admin=raw["admin"], viewer=raw["viewer"])
    tokens = Tokens(admin=secrets.token_urlsafe(24), viewer=secrets.token_urlsafe(24))
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"admin": tokens.admin, "viewer": tokens.viewer}))
    return tokens


def demo_site(video: Path) -> SiteConfig:
    """One shop with one entrance camera replaying ``video`` in a loop, paced like a live camera.

    For the PETS09-S2L1 clip the counting line is the vertical segment of its ground truth (x = 614);
    for any other video, a vertical line through the middle of the frame.
    """
    from metrica.vision.source import VideoSource

    with VideoSource(str(video)) as source:
        width, height = source.width, source.height
    if video.name == "video.mp4" and video.parent.name == "PETS09-S2L1":
        segment = (614.0, 29.0, 614.0, 570.0)
    else:
        segment = (width / 2, height * 0.05, width / 2, height * 0.95)
    camera = CameraConfig(
        name="Entrance",
        source=str(video.resolve()),
        fps=5.0,
        loop=True,
        lines=[LineConfig(name="door", segment=segment, inside="positive", footfall=True)],
    )
    store = StoreConfig(name="Demo shop", timezone="Africa/Tunis", day_start_hour=0, cameras=[camera])
    return SiteConfig(stores=[store])


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the service owns SIGINT/SIGTERM so it can shut down in order
    (uvicorn re-raises a captured signal after serving, which would kill the process before cleanup)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_service(
    settings: Settings,
    *,
    site: SiteConfig | None = None,
    on_ready: Callable[[Settings], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM. ``site`` is loaded into an empty database (demo, or ``--config``)."""
    from metrica.actors.live import LiveHub
    from metrica.actors.supervisor import Supervisor
    from metrica.actors.writer import EventWriter
    from metrica.api.app import create_app
    from metrica.api.services import Services
    from metrica.db import site as site_db
    from metrica.db.migrate import migrate
    from metrica.db.pool import create_pool
    from metrica.events import Event

    if settings.database_url is None:
        raise ConfigError("DATABASE_URL is not set (`metrica demo` starts an embedded database instead)")
    dsn = settings.database_url
    applied = await migrate(dsn)
    if applied:
        log.info("service.migrated", applied=applied)
    pool = await create_pool(dsn)
    writer: EventWriter | None = None
    supervisor: Supervisor | None = None
    try:
        if site is not None and await site_db.bootstrap(pool, site):
            log.info("service.site_loaded", stores=[store.name for store in site.stores])
        stores = await site_db.list_stores(pool)
        cameras = await site_db.list_cameras(pool)
        writer = EventWriter(dsn, settings.data_dir / "outbox")
        await writer.start()
        hub = LiveHub(on_sample=writer.submit_nowait)
        await hub.load(pool, stores)
        hub.set_cameras(cameras)

        async def sink(event: Event) -> None:
            hub.on_event(event)  # the phone first: the writer batches anyway
            await writer.submit(event)

        supervisor = Supervisor(sink, default_model=settings.model, stuck_seconds=settings.stuck_seconds)
        app = create_app(Services(settings=settings, pool=pool, actors=supervisor, hub=hub, writer=writer))
        server = _Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="on",
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await supervisor.start(cameras)
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if server.started:
            log.info("service.ready", host=settings.host, port=settings.port, cameras=len(cameras))
            if on_ready is not None:
                on_ready(settings)
        await serving
        if not server.started:
            raise ConfigError(f"could not listen on {settings.host}:{settings.port} (is the port in use?)")
    finally:
        if supervisor is not None:
            await supervisor.stop()
        if writer is not None:
            await writer.stop()  # whatever the database did not take stays in the outbox
        await pool.close()
        log.info("service.stopped")


def print_urls(settings: Settings) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{host}:{settings.port}"
    viewer = settings.viewer_token or ""
    lines = [
        "",
        "Metrica is running.",
        f"  Dashboard      {base}/?token={viewer}",
        f"  Health         {base}/api/health",
        f"  Live (JSON)    {base}/api/stores/1/live   (Authorization: Bearer {viewer})",
        f"  Live (WS)      ws://{host}:{settings.port}/ws/stores/1/live?token={viewer}",
        f"  API docs       {base}/docs",
        f"  Metrics        {base}/metrics",
        f"  Viewer token   {viewer}",
        f"  Admin token    {settings.admin_token or ''}",
        f"  Data           {settings.data_dir}",
        "Press Ctrl+C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


async def run_demo(settings: Settings, site: SiteConfig) -> None:
    """`metrica demo`: embedded PostgreSQL and Redis under the data directory unless URLs are given."""
    from metrica.embedded import EmbeddedServers

    embedded: EmbeddedServers | None = None
    if settings.database_url is None or settings.redis_url is None:
        embedded = EmbeddedServers(settings.data_dir)
        print(f"Starting the embedded database and Redis under {settings.data_dir} ...", flush=True)
        database_url, redis_url = await asyncio.to_thread(embedded.start)
        settings = msgspec.structs.replace(
            settings,
            database_url=settings.database_url or database_url,
            redis_url=settings.redis_url or redis_url,
        )
    worker_task: asyncio.Task[None] | None = None
    try:
        # The jobs (rollups, reports, alerts) run in this process too: one command runs everything.
        from metrica.db.migrate import migrate
        from metrica.jobs.worker import create_worker

        assert settings.database_url is not None
        await migrate(settings.database_url)
        worker = create_worker(settings, handle_signals=False)
        worker_task = asyncio.create_task(worker.async_run())
        await run_service(settings, site=site, on_ready=print_urls)
    finally:
        if worker_task is not None:
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker_task
            await worker.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
