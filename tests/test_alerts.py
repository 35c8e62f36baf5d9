"""Alerts on a real PostgreSQL and Redis (db 3): occupancy over the limit, a camera offline, traffic far below
the usual; each fired once and resolved once, pushed over the live WebSocket by a real arq worker and POSTed
to a real HTTP receiver with retries.

Times are chosen by the tests (``now=``) except where the worker runs the job on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import pytest_asyncio
import websockets
from arq.connections import create_pool as arq_pool
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis

from metrica.actors.live import LiveHub
from metrica.api import create_app
from metrica.api.services import Services
from metrica.config import CameraConfig, LineConfig, Settings, SiteConfig, StoreConfig
from metrica.db import site
from metrica.jobs import webhooks
from metrica.jobs.alerts import LOW_TRAFFIC_MIN_USUAL, AlertChange, evaluate_alerts, occupancy_margin
from metrica.jobs.rollups import rollup_store_days
from metrica.jobs.worker import QUEUE, create_worker, redis_settings
from metrica.site import Camera, Store
from tests.api_helpers import ADMIN, VIEWER, RecordingActors, Server, make_pool, temp_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDIS_DB3 = "redis://127.0.0.1:6379/3"  # this module's own Redis database
PARIS = ZoneInfo("Europe/Paris")
SECRET = "webhook-secret-for-tests"
LIMIT = 5

SITE = SiteConfig(
    stores=[
        StoreConfig(
            name="Boutique",
            timezone="Europe/Paris",
            occupancy_limit=LIMIT,
            cameras=[
                CameraConfig(
                    name="door", source="door.mp4", lines=[LineConfig(name="entrance", segment=(0, 0, 9, 9))]
                )
            ],
        ),
        StoreConfig(
            name="Quiet",
            timezone="Europe/Paris",
            cameras=[
                CameraConfig(
                    name="door", source="q.mp4", lines=[LineConfig(name="entrance", segment=(0, 0, 9, 9))]
                )
            ],
        ),
    ]
)


@dataclass
class Env:
    pool: asyncpg.Pool
    dsn: str
    shop: Store
    quiet: Store
    cameras: dict[int, Camera]  # store id → its camera


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    async with temp_database("metrica_test_alerts") as dsn:
        pool = await make_pool(dsn)
        try:
            await site.bootstrap(pool, SITE)
            stores = {s.name: s for s in await site.list_stores(pool)}
            cameras = {c.store_id: c for c in await site.list_cameras(pool)}
            yield Env(pool, dsn, stores["Boutique"], stores["Quiet"], cameras)
        finally:
            await pool.close()


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def clean(env: Env) -> AsyncIterator[None]:
    yield
    await env.pool.execute(
        "TRUNCATE alerts, alert_deliveries, crossings, camera_status, store_hourly, store_daily"
    )
    await env.pool.execute("UPDATE stores SET occupancy_limit = $1 WHERE name = 'Boutique'", LIMIT)
    await env.pool.execute("UPDATE cameras SET enabled = true")


async def cross(env: Env, store: Store, direction: str, ts: datetime, n: int = 1) -> None:
    cam = env.cameras[store.id]
    line = cam.lines[0]
    await env.pool.executemany(
        """INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session,
                                  frame) VALUES ($1, $2, $3, $4, $5, $6, $7, true, 1, 'test', 1)""",
        [
            (uuid.uuid4(), ts + timedelta(seconds=i), store.id, cam.id, line.id, line.name, direction)
            for i in range(n)
        ],
    )


async def status(env: Env, store: Store, ts: datetime, state: str, error: str | None = None) -> None:
    await env.pool.execute(
        "INSERT INTO camera_status (ts, camera_id, state, fps, error) VALUES ($1, $2, $3, 5, $4)",
        ts,
        env.cameras[store.id].id,
        state,
        error,
    )


async def running_through(env: Env, store: Store, start: datetime, end: datetime) -> None:
    """Running reports every 30 s from before ``start`` to after ``end``, as a running actor sends them."""
    t = start - timedelta(seconds=20)
    while t < end + timedelta(seconds=30):
        await status(env, store, t, "running")
        t += timedelta(seconds=30)


def settings(**kw: object) -> Settings:
    return Settings.from_env({}, **kw)


def of(changes: list[AlertChange], kind: str, store: Store | None = None) -> list[AlertChange]:
    return [c for c in changes if c.alert.kind == kind and (store is None or c.alert.store_id == store.id)]


# -- occupancy -------------------------------------------------------------------------------------------


async def test_occupancy_fires_once_above_the_limit_and_clears_once_below_the_margin(env: Env) -> None:
    s = settings(webhook_urls=["http://127.0.0.1:9/hook-a", "http://127.0.0.1:9/hook-b"])
    now = datetime.now(UTC)
    await cross(env, env.shop, "in", now - timedelta(minutes=20), LIMIT)
    assert of(await evaluate_alerts(env.pool, s, now), "occupancy") == []  # at the limit, not above

    await cross(env, env.shop, "in", now - timedelta(minutes=10))
    fired = of(await evaluate_alerts(env.pool, s, now), "occupancy")
    assert [c.event for c in fired] == ["fired"]
    alert = fired[0].alert
    assert alert.details == {"inside": LIMIT + 1, "limit": LIMIT} and str(LIMIT) in alert.message
    for _ in range(3):  # still above: nothing new
        assert of(await evaluate_alerts(env.pool, s, now), "occupancy") == []

    # Hysteresis: back at the limit is not enough, it clears at limit − margin.
    assert occupancy_margin(LIMIT) == 1
    await cross(env, env.shop, "out", now - timedelta(minutes=5))
    assert of(await evaluate_alerts(env.pool, s, now), "occupancy") == []
    await cross(env, env.shop, "out", now - timedelta(minutes=4))
    resolved = of(await evaluate_alerts(env.pool, s, now), "occupancy")
    assert [(c.event, c.alert.id) for c in resolved] == [("resolved", alert.id)]
    assert resolved[0].alert.resolved_at == now and "Back to 4 inside" in (
        resolved[0].alert.resolved_message or ""
    )
    assert of(await evaluate_alerts(env.pool, s, now), "occupancy") == []

    rows = await env.pool.fetch(
        "SELECT event, url FROM alert_deliveries WHERE alert_id = $1 ORDER BY id", alert.id
    )
    assert sorted((r["event"], r["url"]) for r in rows) == sorted(
        (e, u) for e in ("fired", "resolved") for u in s.webhook_urls
    )
    # Crossing the limit again is a new alert.
    await cross(env, env.shop, "in", now - timedelta(minutes=2), 3)
    again = of(await evaluate_alerts(env.pool, s, now), "occupancy")
    assert [c.event for c in again] == ["fired"] and again[0].alert.id != alert.id


async def test_removing_the_limit_resolves_the_open_alert(env: Env) -> None:
    now = datetime.now(UTC)
    await cross(env, env.shop, "in", now - timedelta(minutes=5), LIMIT + 3)
    assert [c.event for c in of(await evaluate_alerts(env.pool, settings(), now), "occupancy")] == ["fired"]
    await env.pool.execute("UPDATE stores SET occupancy_limit = NULL WHERE id = $1", env.shop.id)
    resolved = of(await evaluate_alerts(env.pool, settings(), now), "occupancy")
    assert [c.event for c in resolved] == ["resolved"]
    assert resolved[0].alert.resolved_message == "The occupancy limit was removed"


async def test_concurrent_evaluations_open_one_alert_and_announce_it_once(env: Env) -> None:
    now = datetime.now(UTC)
    await cross(env, env.shop, "in", now - timedelta(minutes=5), LIMIT + 2)
    results = await asyncio.gather(*(evaluate_alerts(env.pool, settings(), now) for _ in range(6)))
    fired = [c for r in results for c in of(r, "occupancy")]
    assert len(fired) == 1
    assert await env.pool.fetchval("SELECT count(*) FROM alerts WHERE kind = 'occupancy'") == 1
    await cross(env, env.shop, "out", now - timedelta(minutes=1), LIMIT + 2)
    results = await asyncio.gather(*(evaluate_alerts(env.pool, settings(), now) for _ in range(6)))
    assert len([c for r in results for c in of(r, "occupancy")]) == 1


# -- cameras ---------------------------------------------------------------------------------------------


async def test_camera_offline_fires_after_the_configured_minutes_and_clears_when_it_runs(env: Env) -> None:
    s = settings(alert_offline_minutes=10)
    cam = env.cameras[env.shop.id]
    t0 = datetime.now(UTC) + timedelta(hours=1)  # after the camera's updated_at (its grace period)
    await status(env, env.shop, t0, "running")
    await status(env, env.shop, t0 + timedelta(minutes=1), "reconnecting", "connection refused")
    assert of(await evaluate_alerts(env.pool, s, t0 + timedelta(minutes=9)), "camera_offline", env.shop) == []
    fired = of(await evaluate_alerts(env.pool, s, t0 + timedelta(minutes=11)), "camera_offline", env.shop)
    assert [c.event for c in fired] == ["fired"]
    alert = fired[0].alert
    assert alert.subject == f"camera:{cam.id}" and alert.camera_id == cam.id
    assert "connection refused" in alert.message and "11 min" in alert.message
    # what the dashboard writes its banner from (frontend/src/alerts.ts)
    assert alert.details["camera"] == cam.name and alert.details["last_running"] == t0.isoformat()
    assert (
        of(await evaluate_alerts(env.pool, s, t0 + timedelta(minutes=15)), "camera_offline", env.shop) == []
    )

    await status(env, env.shop, t0 + timedelta(minutes=20), "running")
    resolved = of(
        await evaluate_alerts(env.pool, s, t0 + timedelta(minutes=20, seconds=10)), "camera_offline"
    )
    assert [(c.event, c.alert.id) for c in resolved] == [("resolved", alert.id)]

    # A box that went silent (no report at all) is offline as well, from its last running report.
    silent = of(await evaluate_alerts(env.pool, s, t0 + timedelta(minutes=31)), "camera_offline", env.shop)
    assert [c.event for c in silent] == ["fired"] and "11 min" in silent[0].alert.message
    # Disabling the camera resolves its alert; a disabled camera raises none.
    await site.set_camera_enabled(env.pool, cam.id, False)
    gone = of(await evaluate_alerts(env.pool, s, t0 + timedelta(minutes=32)), "camera_offline", env.shop)
    assert [c.event for c in gone] == ["resolved"] and "disabled" in (gone[0].alert.resolved_message or "")
    assert of(await evaluate_alerts(env.pool, s, t0 + timedelta(hours=5)), "camera_offline", env.shop) == []


# -- low traffic -----------------------------------------------------------------------------------------

# Wednesday 18 November 2026, 14:00–15:00 in Paris (UTC+1). The four previous Wednesdays: 11 November is
# not recorded (nothing counted, no camera), 4 November and 28 October are in winter time, 21 October in
# summer time (UTC+2): the same local hour is a different UTC hour there.
DAY = date(2026, 11, 18)
RECORDED = [date(2026, 11, 4), date(2026, 10, 28), date(2026, 10, 21)]
USUAL = 20


def at(d: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(d, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


async def test_low_traffic_against_the_same_weekday_hour_and_not_while_a_camera_is_down(env: Env) -> None:
    store = env.quiet
    s = settings(alert_low_traffic_ratio=0.3)
    for d in RECORDED:
        # 20 visitors each hour from 13:00 to 16:00 local; at 12:00 local only 4 (a usually quiet hour).
        await cross(env, store, "in", at(d, 12, 10), 4)
        for h in (13, 14, 15):
            await cross(env, store, "in", at(d, h, 5), USUAL)
        await cross(env, store, "out", at(d, 16, 30), 4 + 3 * USUAL)
    await rollup_store_days(env.pool, store, RECORDED)
    # Decoys at the wrong UTC hour on the summer-time week: a UTC-based week shift would read them.
    await cross(env, store, "in", at(RECORDED[2], 15, 30), 40)
    await rollup_store_days(env.pool, store, RECORDED[2:])

    await running_through(env, store, at(DAY, 11, 50), at(DAY, 16, 10))
    await cross(env, store, "in", at(DAY, 12, 20), 1)  # quiet hour: 1 against a usual of 4, below the floor
    changes = of(await evaluate_alerts(env.pool, s, at(DAY, 13, 5)), "low_traffic", store)
    assert changes == [] and LOW_TRAFFIC_MIN_USUAL > 4

    await cross(env, store, "in", at(DAY, 13, 5), USUAL + 1)  # a usual hour
    assert of(await evaluate_alerts(env.pool, s, at(DAY, 14, 5)), "low_traffic", store) == []
    await cross(env, store, "in", at(DAY, 14, 20), 5)  # 5 < 0.3 × 20
    # A camera that stopped during the hour: no alert (the camera alert explains the low count).
    await status(env, store, at(DAY, 14, 30), "reconnecting", "timeout")
    assert of(await evaluate_alerts(env.pool, s, at(DAY, 15, 5)), "low_traffic", store) == []
    await env.pool.execute("DELETE FROM camera_status WHERE state = 'reconnecting'")
    assert (
        of(await evaluate_alerts(env.pool, s, at(DAY, 15, 1)), "low_traffic", store) == []
    )  # the hour is settling

    fired = of(await evaluate_alerts(env.pool, s, at(DAY, 15, 5)), "low_traffic", store)
    assert [c.event for c in fired] == ["fired"]
    details = fired[0].alert.details
    assert details["in_count"] == 5 and details["weeks"] == [USUAL] * 3 and details["usual"] == USUAL
    assert "14:00–15:00" in fired[0].alert.message and "Wednesday" in fired[0].alert.message
    assert of(await evaluate_alerts(env.pool, s, at(DAY, 15, 40)), "low_traffic", store) == []

    await cross(env, store, "in", at(DAY, 15, 10), USUAL - 2)  # 18 against 20: back to usual
    resolved = of(await evaluate_alerts(env.pool, s, at(DAY, 16, 5)), "low_traffic", store)
    assert [c.event for c in resolved] == ["resolved"]
    assert "Traffic back to usual: 18 visitors 15:00–16:00" in (resolved[0].alert.resolved_message or "")


# -- webhooks --------------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A real HTTP server that answers each POST with the next status of ``script`` (then 200)."""

    script: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((headers, body))
        code = self.script.pop(0) if self.script else 200
        writer.write(f"HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[Receiver]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrica"


async def test_webhook_retries_with_backoff_signs_and_gives_up(env: Env) -> None:
    now = datetime.now(UTC)
    async with Receiver(script=[500, 503]).serve() as rx, httpx.AsyncClient() as client:
        dead = "http://127.0.0.1:9/nobody-listens"
        s = settings(webhook_urls=[rx.url, dead], webhook_secret=SECRET)
        await cross(env, env.shop, "in", now - timedelta(minutes=3), LIMIT + 1)
        fired = of(await evaluate_alerts(env.pool, s, now), "occupancy")
        assert len(fired) == 1 and fired[0].deliveries == 2

        first = await webhooks.deliver_due(env.pool, s, client, now)
        assert (first.delivered, first.failed) == (0, 2)  # 500 from the receiver, refused by the dead URL
        assert (
            await webhooks.deliver_due(env.pool, s, client, now + timedelta(seconds=20))
        ).failed == 0  # waiting
        second = await webhooks.deliver_due(env.pool, s, client, now + timedelta(seconds=31))
        assert (second.delivered, second.failed) == (0, 2)  # 503
        third = await webhooks.deliver_due(env.pool, s, client, now + timedelta(seconds=31 + 61))
        assert (third.delivered, third.failed) == (1, 1)

        assert len(rx.received) == 3
        ids = {h["x-metrica-delivery"] for h, _ in rx.received}
        assert len(ids) == 1  # the same delivery, retried: receivers deduplicate on it
        for headers, body in rx.received:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["x-metrica-signature"] == expected
            assert headers["x-metrica-event"] == "alert.fired"
        payload = json.loads(rx.received[-1][1])
        assert payload["type"] == "alert" and payload["event"] == "fired"
        assert payload["alert"]["id"] == fired[0].alert.id and payload["store"]["name"] == "Boutique"

        t = now + timedelta(seconds=100)
        for _ in range(webhooks.MAX_ATTEMPTS):  # the dead URL runs out of attempts and is left alone
            await webhooks.deliver_due(env.pool, s, client, t)
            t += timedelta(hours=2)
        row = await env.pool.fetchrow(
            "SELECT attempts, delivered_at, last_error FROM alert_deliveries WHERE url = $1", dead
        )
        assert row is not None and row["attempts"] == webhooks.MAX_ATTEMPTS and row["delivered_at"] is None
        assert "ConnectError" in row["last_error"]
        assert (await webhooks.deliver_due(env.pool, s, client, t + timedelta(days=1))).given_up == 0
        assert len(rx.received) == 3  # nothing sent twice once delivered


async def test_two_deliverers_at_once_post_each_delivery_once(env: Env) -> None:
    now = datetime.now(UTC)
    async with Receiver().serve() as rx, httpx.AsyncClient() as client:
        urls = [f"{rx.url}/{i}" for i in range(30)]
        s = settings(webhook_urls=urls)
        await cross(env, env.shop, "in", now - timedelta(minutes=3), LIMIT + 1)
        assert len(of(await evaluate_alerts(env.pool, s, now), "occupancy")) == 1
        results = await asyncio.gather(
            *(webhooks.deliver_due(env.pool, s, client, now, limit=7) for _ in range(8))
        )
        assert sum(r.delivered for r in results) == 30
        assert sorted(h["x-metrica-delivery"] for h, _ in rx.received) == sorted(
            str(i) for i in await env.pool.fetchval("SELECT array_agg(id) FROM alert_deliveries")
        )


# -- through the worker, the WebSocket and the API ------------------------------------------------------


async def test_worker_pushes_the_alert_on_the_live_websocket_and_to_the_webhook(env: Env) -> None:
    prefix = f"t-alerts-{uuid.uuid4().hex[:6]}-"
    redis = Redis.from_url(REDIS_DB3)
    await redis.flushdb()
    async with Receiver().serve() as rx:
        s = settings(
            database_url=env.dsn,
            redis_url=REDIS_DB3,
            admin_token=ADMIN,
            viewer_token=VIEWER,
            webhook_urls=[rx.url],
            webhook_secret=SECRET,
        )
        services = Services(
            settings=s,
            pool=env.pool,
            actors=RecordingActors(),
            hub=LiveHub(),
            channels_backend=RedisChannelsPubSubBackend(redis=Redis.from_url(REDIS_DB3)),
            channel_prefix=prefix,
        )
        services.hub.add_store(env.shop)
        async with Server(create_app(services)) as server:
            url = f"{server.ws_url}/ws/stores/{env.shop.id}/live?token={VIEWER}"
            async with websockets.connect(url) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert first["type"] == "live"
                await cross(env, env.shop, "in", datetime.now(UTC) - timedelta(minutes=1), LIMIT + 1)
                apool = await arq_pool(redis_settings(s), default_queue_name=QUEUE)
                await apool.enqueue_job("evaluate_alerts_job", _queue_name=QUEUE)
                worker = create_worker(
                    s, burst=True, handle_signals=False, cron=False, poll_delay=0.05, channel_prefix=prefix
                )
                try:
                    await worker.main()
                finally:
                    await worker.close()
                    await apool.aclose()
                message = None
                while message is None or message.get("type") != "alert":
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert message["event"] == "fired" and message["alert"]["kind"] == "occupancy"
                assert message["alert"]["store_id"] == env.shop.id
            assert len(rx.received) == 1  # the worker ran deliver_webhooks right after the alert
            assert json.loads(rx.received[0][1])["alert"]["id"] == message["alert"]["id"]

            async with httpx.AsyncClient(base_url=server.url) as c:
                v = {"Authorization": f"Bearer {VIEWER}"}
                r = await c.get(f"/api/stores/{env.shop.id}/alerts?open=true", headers=v)
                assert r.status_code == 200
                assert [a["id"] for a in r.json()] == [message["alert"]["id"]]
                assert r.json()[0]["kind"] == "occupancy" and r.json()[0]["resolved_at"] is None
                assert (await c.get(f"/api/stores/{env.quiet.id}/alerts", headers=v)).json() == []
                assert (await c.get(f"/api/stores/{env.shop.id}/alerts")).status_code == 401
                assert (await c.get("/api/stores/999/alerts", headers=v)).status_code == 404
                assert (
                    await c.get(f"/api/stores/{env.shop.id}/alerts?limit=0", headers=v)
                ).status_code == 400
    await redis.flushdb()
    await redis.aclose()
