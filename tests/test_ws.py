"""WS /ws/stores/{id}/live against a real uvicorn server and the `websockets` client: the state at once,
every change within a second (latency measured over 200 crossings), token and unknown-store refusals with
readable close codes, and two app instances fanning out through the real Redis."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import msgspec
import pytest
import pytest_asyncio
import websockets
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis

from metrica.actors.live import LiveHub, LiveState
from metrica.api import Services, create_app
from metrica.config import Settings
from metrica.events import CameraStatus, CrossingEvent, crossing_id
from metrica.site import Camera, Store
from tests.api_helpers import ADMIN, REDIS_URL, VIEWER, RecordingActors, Server, make_pool, temp_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

STORE = Store(id=1, name="Shop", timezone="Africa/Tunis", day_start_hour=6)
CAMERA = Camera(id=1, store_id=1, name="door", source="rtsp://u:secret@h/x", fps=5)
_seq = iter(range(1_000_000))


def event(direction: str = "in", camera_id: int = 1) -> CrossingEvent:
    n = next(_seq)
    return CrossingEvent(
        id=crossing_id(camera_id, "ws", "door", n, 0),
        ts=datetime.now(UTC),
        store_id=STORE.id,
        camera_id=camera_id,
        line_id=1,
        line="door",
        direction=direction,  # type: ignore[arg-type]
        footfall=True,
        track=n,
        session="ws",
        frame=n + 1,
    )


def settings(**kw: str) -> Settings:
    return Settings(admin_token=ADMIN, viewer_token=VIEWER, **kw)  # type: ignore[arg-type]


def hub_with_store() -> LiveHub:
    hub = LiveHub()
    hub.add_store(STORE)
    hub.set_cameras([CAMERA])
    return hub


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with temp_database("metrica_test_ws") as dsn:
        p = await make_pool(dsn)
        try:
            yield p
        finally:
            await p.close()


async def recv_state(ws: websockets.ClientConnection, timeout: float = 5.0) -> LiveState:
    return msgspec.json.decode(await asyncio.wait_for(ws.recv(), timeout), type=LiveState)


async def test_state_at_once_then_every_change_within_a_second(pool: asyncpg.Pool) -> None:
    hub = hub_with_store()
    services = Services(settings=settings(), pool=pool, actors=RecordingActors(), hub=hub)
    async with Server(create_app(services)) as server:
        url = f"{server.ws_url}/ws/stores/{STORE.id}/live?token={VIEWER}"
        async with websockets.connect(url) as ws:
            first = await recv_state(ws)
            assert first.store_id == STORE.id and first.visitors_in == 0 and first.cameras_total == 1

            latencies: list[float] = []
            last_seq = first.seq
            for i in range(200):
                t0 = time.perf_counter()
                hub.on_event(event("in" if i % 4 else "out"))
                state = await recv_state(ws, timeout=1.0)  # within a second, or the test fails
                latencies.append(time.perf_counter() - t0)
                assert state.seq > last_seq
                last_seq = state.seq
            assert state.visitors_in == 150 and state.visitors_out == 50 and state.inside == 100
            latencies.sort()
            p50 = statistics.median(latencies)
            p95 = latencies[int(len(latencies) * 0.95) - 1]
            print(
                f"\nevent→WebSocket latency over {len(latencies)} crossings: p50={p50 * 1000:.2f} ms p95={p95 * 1000:.2f} ms max={latencies[-1] * 1000:.2f} ms"
            )
            assert latencies[-1] < 1.0

            # A camera going offline reaches the phone too.
            hub.on_event(CameraStatus(ts=datetime.now(UTC), camera_id=1, state="reconnecting"))
            state = await recv_state(ws)
            assert state.cameras_online == 0 and state.cameras[0].state == "reconnecting"

            # The subscriber count is in the metrics while the socket is open.
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert "metrica_ws_subscribers 1.0" in (await client.get("/metrics")).text
        # The header form of the token works too, and a closed socket leaves the count.
        async with websockets.connect(
            f"{server.ws_url}/ws/stores/{STORE.id}/live",
            additional_headers={"Authorization": f"Bearer {ADMIN}"},
        ) as ws:
            assert (await recv_state(ws)).visitors_in == 150
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(50):
                if "metrica_ws_subscribers 0.0" in (await client.get("/metrics")).text:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the closed socket is still counted")


@pytest.mark.parametrize(
    ("query", "headers", "code", "reason"),
    [
        ("", {}, 4401, "missing token"),
        ("?token=not-the-token", {}, 4403, "invalid token"),
        ("", {"Authorization": "Bearer not-the-token"}, 4403, "invalid token"),
        ("", {"Authorization": "Token abc"}, 4401, "malformed"),
        (f"?token={VIEWER}&store=2", {}, None, ""),  # valid: the extra parameter is ignored
    ],
)
async def test_bad_tokens_are_refused_with_a_readable_code(
    pool: asyncpg.Pool, query: str, headers: dict[str, str], code: int | None, reason: str
) -> None:
    hub = hub_with_store()
    services = Services(settings=settings(), pool=pool, actors=RecordingActors(), hub=hub)
    async with Server(create_app(services)) as server:
        async with websockets.connect(
            f"{server.ws_url}/ws/stores/1/live{query}", additional_headers=headers
        ) as ws:
            if code is None:
                assert (await recv_state(ws)).store_id == 1
                return
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code and reason in closed.value.rcvd.reason


async def test_unknown_store_is_closed_with_4404(pool: asyncpg.Pool) -> None:
    services = Services(settings=settings(), pool=pool, actors=RecordingActors(), hub=hub_with_store())
    async with Server(create_app(services)) as server:
        for store in (2, 2**40):
            async with websockets.connect(f"{server.ws_url}/ws/stores/{store}/live?token={VIEWER}") as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4404 and f"unknown store {store}" in closed.value.rcvd.reason
        with pytest.raises(websockets.InvalidStatus):  # not a store id: no such route
            async with websockets.connect(f"{server.ws_url}/ws/stores/abc/live?token={VIEWER}"):
                pass


async def test_two_instances_share_live_changes_through_redis(pool: asyncpg.Pool) -> None:
    """Instance A owns the hub that counts; a phone connected to instance B sees A's changes."""
    prefix = f"metrica-test-{uuid.uuid4().hex[:8]}:"
    hub_a, hub_b = hub_with_store(), hub_with_store()
    services_a = Services(
        settings=settings(redis_url=REDIS_URL),  # the app picks the Redis backend from the settings
        pool=pool,
        actors=RecordingActors(),
        hub=hub_a,
        channel_prefix=prefix,
    )
    redis_b = Redis.from_url(REDIS_URL)
    services_b = Services(
        settings=settings(),
        pool=pool,
        actors=RecordingActors(),
        hub=hub_b,
        channels_backend=RedisChannelsPubSubBackend(redis=redis_b),
        channel_prefix=prefix,
    )
    try:
        async with Server(create_app(services_a)) as a, Server(create_app(services_b)) as b:
            path = f"/ws/stores/{STORE.id}/live?token={VIEWER}"
            async with (
                websockets.connect(a.ws_url + path) as ws_a,
                websockets.connect(b.ws_url + path) as ws_b,
            ):
                await recv_state(ws_a)
                await recv_state(ws_b)
                await asyncio.sleep(0.2)  # the Redis SUBSCRIBE of both instances is under way
                latencies: list[float] = []
                for i in range(1, 21):
                    t0 = time.perf_counter()
                    hub_a.on_event(event("in"))
                    got_a, got_b = await asyncio.gather(recv_state(ws_a, 1.0), recv_state(ws_b, 1.0))
                    latencies.append(time.perf_counter() - t0)
                    assert got_a.visitors_in == got_b.visitors_in == i
                    assert got_a.seq == got_b.seq
                print(
                    f"\nevent→WebSocket via Redis, both instances: p50={statistics.median(latencies) * 1000:.2f} ms "
                    f"max={max(latencies) * 1000:.2f} ms"
                )
                assert hub_b.state(STORE.id).visitors_in == 0  # B only relayed: its own hub counted nothing
    finally:
        await redis_b.aclose()
