"""The admin snapshot (one JPEG frame decoded on demand, never stored) and the role check, over HTTP.

Real parts: PostgreSQL, the app under uvicorn, PyAV decoding the PETS09 clip, a refused port and a TCP
server that accepts and never answers (a camera that hangs).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from metrica.actors.live import LiveHub
from metrica.api import create_app, snapshot
from metrica.api.services import Services
from metrica.config import CameraConfig, LineConfig, Settings, SiteConfig, StoreConfig
from metrica.db import site
from metrica.vision.source import VideoSource
from tests.api_helpers import ADMIN, VIEWER, RecordingActors, Server, free_port, make_pool, temp_database

pytestmark = pytest.mark.asyncio(loop_scope="function")

A = {"Authorization": f"Bearer {ADMIN}"}
V = {"Authorization": f"Bearer {VIEWER}"}


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word: a camera that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def api(video: Path, silent_port: int) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, int]]]:
    line = LineConfig(name="door", segment=(614, 29, 614, 570))
    config = SiteConfig(
        stores=[
            StoreConfig(
                name="Shop",
                timezone="Africa/Tunis",
                cameras=[
                    CameraConfig(name="file", source=str(video), lines=[line]),
                    CameraConfig(name="refused", source=f"rtsp://user:pw@127.0.0.1:{free_port()}/live"),
                    CameraConfig(name="silent", source=f"rtsp://user:pw@127.0.0.1:{silent_port}/live"),
                    CameraConfig(name="missing", source="/nonexistent/video.mp4"),
                ],
            )
        ]
    )
    async with temp_database("metrica_snapshot") as dsn:
        pool = await make_pool(dsn)
        try:
            await site.bootstrap(pool, config)
            cameras = {c.name: c.id for c in await site.list_cameras(pool)}
            hub = LiveHub()
            await hub.load(pool, await site.list_stores(pool))
            services = Services(
                settings=Settings(admin_token=ADMIN, viewer_token=VIEWER),
                pool=pool,
                actors=RecordingActors(),
                hub=hub,
            )
            async with (
                Server(create_app(services)) as server,
                httpx.AsyncClient(base_url=server.url, timeout=30) as client,
            ):
                yield client, cameras
        finally:
            await pool.close()


async def test_whoami_tells_the_role_and_refuses_strangers(pets: Path) -> None:
    async with silent_server() as port, api(pets / "video.mp4", port) as (client, _):
        assert (await client.get("/api/whoami", headers=A)).json() == {"role": "admin"}
        assert (await client.get("/api/whoami", headers=V)).json() == {"role": "viewer"}
        assert (await client.get("/api/whoami")).status_code == 401
        wrong = await client.get("/api/whoami", headers={"Authorization": "Bearer not-a-real-token"})
        assert wrong.status_code == 403


async def test_snapshot_is_a_fresh_frame_for_admins_only(pets: Path, tmp_path: Path) -> None:
    video = pets / "video.mp4"
    with VideoSource(str(video)) as source:
        first = next(iter(source)).image
    async with silent_server() as port, api(video, port) as (client, cameras):
        url = f"/api/admin/cameras/{cameras['file']}/snapshot"
        assert (await client.get(url, headers=V)).status_code == 403
        assert (await client.get(url)).status_code == 401
        response = await client.get(url, headers=A)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == "no-store"
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None, "not a JPEG"
        assert image.shape == first.shape
        assert (int(response.headers["x-frame-width"]), int(response.headers["x-frame-height"])) == (
            first.shape[1],
            first.shape[0],
        )
        # It is the camera's frame (JPEG-close), not a placeholder.
        assert float(np.abs(image.astype(np.int16) - first.astype(np.int16)).mean()) < 4.0
        assert (await client.get("/api/admin/cameras/999/snapshot", headers=A)).status_code == 404
        assert (await client.get("/api/admin/cameras/0/snapshot", headers=A)).status_code == 400


async def test_snapshot_says_when_the_camera_fails_or_hangs(
    pets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "SNAPSHOT_TIMEOUT", 1.5)
    async with silent_server() as port, api(pets / "video.mp4", port) as (client, cameras):
        for name in ("refused", "missing"):
            response = await client.get(f"/api/admin/cameras/{cameras[name]}/snapshot", headers=A)
            assert response.status_code == 502, (name, response.text)
            detail = response.json()["detail"]
            assert f"({name})" in detail and "could not be read" in detail
            assert "pw" not in detail  # credentials stay in the process
        started = time.monotonic()
        response = await client.get(f"/api/admin/cameras/{cameras['silent']}/snapshot", headers=A)
        elapsed = time.monotonic() - started
        assert response.status_code == 504, response.text
        assert "(silent)" in response.json()["detail"]
        assert elapsed < 1.5 + 2 + 1, elapsed  # the deadline holds even though the camera never answers
        # The event loop was never blocked: the API answers while a snapshot hangs.
        hanging = asyncio.create_task(
            client.get(f"/api/admin/cameras/{cameras['silent']}/snapshot", headers=A)
        )
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        assert (await client.get("/api/health")).status_code == 200
        assert time.monotonic() - t0 < 0.5
        assert (await hanging).status_code == 504
