"""Helpers for the API, live hub and WebSocket tests: private databases, a small honest ActorControl,
a uvicorn server on a free port, and a TCP proxy that can play a database going away."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import uvicorn
from litestar import Litestar

from metrica.events import ActorInfo
from metrica.site import Camera

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN = "admin-token-" + "a" * 20
VIEWER = "viewer-token-" + "v" * 20
SCHEMA = Path(__file__).resolve().parents[1] / "sql" / "001_schema.sql"


def dsn_for(name: str, port: int = 5432) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{name}"


@contextlib.asynccontextmanager
async def temp_database(prefix: str) -> AsyncIterator[str]:
    """A fresh database with the schema applied; dropped afterwards (only this one)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = dsn_for(name)
    try:
        try:
            from metrica.db.migrate import migrate

            await migrate(dsn)
        except ImportError:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(SCHEMA.read_text())
            finally:
                await conn.close()
        yield dsn
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def make_pool(dsn: str) -> asyncpg.Pool:
    try:
        from metrica.db.pool import create_pool

        return await create_pool(dsn, min_size=1, max_size=8, timeout=3.0)
    except ImportError:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
        assert pool is not None
        return pool


class RecordingActors:
    """ActorControl over in-memory actors: `apply` converges like the supervisor (start enabled cameras,
    stop removed/disabled ones, restart those whose runtime changed) and records what it did."""

    def __init__(self) -> None:
        self.actors: dict[int, ActorInfo] = {}
        self.keys: dict[int, tuple[object, ...]] = {}
        self.restarts: list[int] = []
        self.started: list[int] = []
        self.stopped: list[int] = []
        self.applied: list[list[int]] = []

    def status(self) -> list[ActorInfo]:
        return list(self.actors.values())

    async def restart(self, camera_id: int) -> None:
        info = self.actors[camera_id]  # KeyError: no actor runs for it
        self.restarts.append(camera_id)
        info.restarts += 1
        info.since = datetime.now(UTC)

    async def apply(self, cameras: Sequence[Camera]) -> None:
        self.applied.append([c.id for c in cameras])
        wanted = {c.id: c for c in cameras if c.enabled}
        for cid in list(self.actors):
            if cid not in wanted:
                del self.actors[cid]
                del self.keys[cid]
                self.stopped.append(cid)
        for cid, cam in wanted.items():
            key = cam.runtime_key()
            if cid in self.actors and self.keys[cid] == key:
                continue
            if cid in self.actors:
                self.stopped.append(cid)
            self.started.append(cid)
            self.keys[cid] = key
            self.actors[cid] = ActorInfo(
                camera_id=cid,
                store_id=cam.store_id,
                name=cam.name,
                state="running",
                fps=cam.fps,
                pid=None,
                since=datetime.now(UTC),
            )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The app under uvicorn on a free port, served by the caller's event loop (the pool lives there)."""

    def __init__(self, app: Litestar) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", ws="websockets-sansio"
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self.task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + 20
        while not self.server.started:
            if self.task.done() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 20)


class TcpProxy:
    """Forwards 127.0.0.1:port to the real PostgreSQL; `kill` drops every connection and refuses new ones,
    which is what the API sees when its database dies."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def kill(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for w in self.writers:
            with contextlib.suppress(OSError):
                w.transport.abort()
        self.writers.clear()
        if server is not None:
            await server.wait_closed()
