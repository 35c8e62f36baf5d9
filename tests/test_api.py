"""The REST API over a real PostgreSQL, served by uvicorn on a free port and called over HTTP.

Covers every route's happy path, the token rules, the admin changes and which actor each one touches,
error bodies for a systematic set of bad inputs (never a 500), credentials never leaving the process,
traffic buckets on DST days against counts computed in Python, and a dead database (503).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from metrica.actors.live import LiveHub
from metrica.api import create_app
from metrica.api.services import Services
from metrica.config import CameraConfig, ConfigError, LineConfig, Settings, SiteConfig, StoreConfig
from metrica.db import site
from metrica.events import CrossingEvent, crossing_id
from metrica.site import Store
from tests.api_helpers import ADMIN, VIEWER, RecordingActors, Server, TcpProxy, make_pool, temp_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET_SOURCE = "rtsp://user:secret@cam.local:554/stream"
V = {"Authorization": f"Bearer {VIEWER}"}
A = {"Authorization": f"Bearer {ADMIN}"}
PARIS = ZoneInfo("Europe/Paris")
TUNIS = ZoneInfo("Africa/Tunis")


@dataclass
class Env:
    pool: asyncpg.Pool
    hub: LiveHub
    actors: RecordingActors
    client: httpx.AsyncClient
    paris: Store
    tunis: Store
    bodies: list[str]  # every response body this module saw: none may hold a credential


class Writer:
    """What the metrics read of the event writer."""

    written = 42
    duplicates = 3
    outbox_depth = 7
    db_up = True


def settings() -> Settings:
    return Settings(admin_token=ADMIN, viewer_token=VIEWER)


SITE = SiteConfig(
    stores=[
        StoreConfig(
            name="Paris",
            timezone="Europe/Paris",
            day_start_hour=0,
            cameras=[
                CameraConfig(
                    name="door",
                    source=SECRET_SOURCE,
                    lines=[
                        LineConfig(name="entrance", segment=(10, 200, 700, 200)),
                        LineConfig(name="aisle", segment=(300, 0, 300, 500), footfall=False),
                    ],
                ),
                CameraConfig(name="back", source="rtsp://admin:secret@10.0.0.9/live?password=secret"),
            ],
        ),
        StoreConfig(
            name="Tunis",
            timezone="Africa/Tunis",
            day_start_hour=6,
            cameras=[CameraConfig(name="entrance", source="/videos/entrance.mp4", loop=True)],
        ),
    ]
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[Env]:
    async with temp_database("metrica_test_api") as dsn:
        pool = await make_pool(dsn)
        try:
            await site.bootstrap(pool, SITE)
            stores = {s.name: s for s in await site.list_stores(pool)}
            hub = LiveHub()
            await hub.load(pool, list(stores.values()))
            cameras = await site.list_cameras(pool)
            hub.set_cameras(cameras)
            actors = RecordingActors()
            await actors.apply(cameras)
            services = Services(settings=settings(), pool=pool, actors=actors, hub=hub, writer=Writer())
            bodies: list[str] = []

            async def keep(response: httpx.Response) -> None:
                await response.aread()
                bodies.append(response.text)

            async with (
                Server(create_app(services)) as server,
                httpx.AsyncClient(
                    base_url=server.url, event_hooks={"response": [keep]}, timeout=30
                ) as client,
            ):
                yield Env(pool, hub, actors, client, stores["Paris"], stores["Tunis"], bodies)
            assert not [b for b in bodies if "secret" in b], "a credential left the process"
        finally:
            await pool.close()


def assert_error(response: httpx.Response, status: int | None = None) -> str:
    """A 4xx with the JSON error body; returns its detail."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == response.status_code
    assert isinstance(body["detail"], str) and len(body["detail"]) > 3
    return str(body["detail"])


# -- tokens ------------------------------------------------------------------------------------------


async def test_create_app_refuses_missing_or_weak_tokens() -> None:
    hub = LiveHub()
    for admin, viewer in [(None, VIEWER), (ADMIN, None), ("short", VIEWER), (ADMIN, ADMIN)]:
        services = Services(
            settings=Settings(admin_token=admin, viewer_token=viewer),
            pool=None,  # type: ignore[arg-type]
            actors=RecordingActors(),
            hub=hub,
        )
        with pytest.raises(ConfigError, match="settings"):
            create_app(services)


async def test_health_needs_no_token(env: Env) -> None:
    r = await env.client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] is True
    assert {a["name"] for a in body["actors"]} == {"door", "back", "entrance"}
    assert set(body["actors"][0]) == {"camera_id", "name", "state", "fps", "last_error", "restarts"}


READ_ROUTES = [
    "/api/stores",
    "/api/stores/1",
    "/api/stores/1/live",
    "/api/stores/1/traffic",
    "/api/cameras",
    "/api/cameras/1",
]


@pytest.mark.parametrize("path", READ_ROUTES)
async def test_read_routes_need_a_viewer_token(env: Env, path: str) -> None:
    r = await env.client.get(path)
    assert "token" in assert_error(r, 401) and r.headers["www-authenticate"] == "Bearer"
    assert_error(await env.client.get(path, headers={"Authorization": "Bearer wrong-token-123"}), 403)
    assert_error(await env.client.get(path, headers={"Authorization": f"Basic {VIEWER}"}), 401)
    # Tokens in the URL are for the WebSocket only: HTTP refuses them (they would land in proxy logs).
    assert_error(await env.client.get(path, params={"token": VIEWER}), 401)
    assert (await env.client.get(path, headers=V)).status_code == 200
    assert (await env.client.get(path, headers=A)).status_code == 200


# -- stores ------------------------------------------------------------------------------------------


async def test_stores(env: Env) -> None:
    r = await env.client.get("/api/stores", headers=V)
    assert [s["name"] for s in r.json()] == ["Paris", "Tunis"]
    r = await env.client.get(f"/api/stores/{env.tunis.id}", headers=V)
    assert r.json() == {
        "id": env.tunis.id,
        "name": "Tunis",
        "timezone": "Africa/Tunis",
        "day_start_hour": 6,
        "occupancy_limit": None,
    }
    assert "store 999 not found" in assert_error(await env.client.get("/api/stores/999", headers=V), 404)


async def test_live_state_follows_the_hub(env: Env) -> None:
    url = f"/api/stores/{env.tunis.id}/live"
    before = (await env.client.get(url, headers=V)).json()
    now = datetime.now(UTC)
    for n, direction in enumerate(["in", "in", "out"]):
        env.hub.on_event(
            CrossingEvent(
                id=crossing_id(3, "live", "entrance", n, 0),
                ts=now,
                store_id=env.tunis.id,
                camera_id=3,
                line_id=3,
                line="entrance",
                direction=direction,  # type: ignore[arg-type]
                footfall=True,
                track=n,
                session="live",
                frame=n + 1,
            )
        )
    after = (await env.client.get(url, headers=V)).json()
    assert after["visitors_in"] == before["visitors_in"] + 2
    assert after["visitors_out"] == before["visitors_out"] + 1
    assert after["inside"] == max(0, after["visitors_in"] - after["visitors_out"])
    assert after["seq"] > before["seq"] and after["cameras_total"] == 1
    # The business day starts at 06:00 in Tunis (UTC+1).
    assert datetime.fromisoformat(after["day_start"]).astimezone(TUNIS).hour == 6
    assert_error(await env.client.get("/api/stores/999/live", headers=V), 404)


# -- cameras -----------------------------------------------------------------------------------------


async def test_cameras_are_redacted_with_lines_and_status(env: Env) -> None:
    r = await env.client.get("/api/cameras", headers=V)
    cams = {c["name"]: c for c in r.json()}
    assert cams["door"]["source"] == "rtsp://***@cam.local:554/stream"
    assert "secret" not in cams["back"]["source"] and "10.0.0.9" in cams["back"]["source"]
    assert cams["entrance"]["source"] == "/videos/entrance.mp4" and cams["entrance"]["loop"] is True
    assert [(ln["name"], ln["footfall"]) for ln in cams["door"]["lines"]] == [
        ("entrance", True),
        ("aisle", False),
    ]
    assert cams["door"]["actor"]["state"] == "running"

    r = await env.client.get("/api/cameras", params={"store_id": env.tunis.id}, headers=V)
    assert [c["name"] for c in r.json()] == ["entrance"]
    assert_error(await env.client.get("/api/cameras", params={"store_id": 999}, headers=V), 404)
    door = cams["door"]["id"]
    one = (await env.client.get(f"/api/cameras/{door}", headers=V)).json()
    assert one["source"] == cams["door"]["source"] and one["lines"] == cams["door"]["lines"]
    assert "camera 9999 not found" in assert_error(await env.client.get("/api/cameras/9999", headers=V), 404)


async def test_camera_shows_its_last_stored_status(env: Env) -> None:
    cam = (await site.list_cameras(env.pool, store_id=env.tunis.id))[0]
    t = datetime(2026, 6, 1, 12, tzinfo=UTC)
    await env.pool.executemany(
        "INSERT INTO camera_status (ts, camera_id, state, fps, error, restarts) VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (t, cam.id, "running", 5.0, None, 0),
            (t + timedelta(minutes=5), cam.id, "reconnecting", 0.0, "rtsp://***@h: timed out", 1),
            (t + timedelta(minutes=9), 999, "failed", 0.0, "other camera", 9),
        ],
    )
    body = (await env.client.get(f"/api/cameras/{cam.id}", headers=V)).json()
    assert body["last_status"]["state"] == "reconnecting" and body["last_status"]["restarts"] == 1
    listed = (await env.client.get("/api/cameras", params={"store_id": env.tunis.id}, headers=V)).json()
    assert listed[0]["last_status"] == body["last_status"]


# -- admin -------------------------------------------------------------------------------------------


async def test_restart_restarts_exactly_that_actor(env: Env) -> None:
    cams = {c.name: c for c in await site.list_cameras(env.pool)}
    door, back = cams["door"].id, cams["back"].id
    url = f"/api/admin/cameras/{back}/restart"
    assert_error(await env.client.post(url), 401)
    assert "admin" in assert_error(await env.client.post(url, headers=V), 403)
    assert env.actors.restarts == []

    started, stopped = list(env.actors.started), list(env.actors.stopped)
    r = await env.client.post(url, headers=A)
    assert r.status_code == 202, r.text
    assert r.json()["camera_id"] == back and r.json()["actor"]["restarts"] == 1
    assert env.actors.restarts == [back]
    assert (env.actors.started, env.actors.stopped) == (started, stopped)  # nothing else touched
    assert env.actors.actors[door].restarts == 0

    assert_error(await env.client.post("/api/admin/cameras/9999/restart", headers=A), 404)
    env.actors.restarts.clear()


async def test_admin_camera_and_line_changes_touch_only_that_camera(env: Env) -> None:
    acts = env.actors
    with capture_logs() as logs:
        body = {
            "name": "side door",
            "source": "rtsp://installer:secret@192.168.1.20/h264",
            "fps": 6,
            "lines": [{"name": "side", "segment": [0, 100, 640, 100], "inside": "negative"}],
        }
        r = await env.client.post(f"/api/admin/stores/{env.paris.id}/cameras", json=body, headers=A)
        assert r.status_code == 201, r.text
        cam = r.json()
        cid = cam["id"]
        assert cam["source"] == "rtsp://***@192.168.1.20/h264"
        assert cam["lines"][0]["inside"] == "negative" and cam["actor"]["state"] == "running"
        assert acts.started[-1] == cid

        def mark() -> tuple[int, int]:
            return len(acts.started), len(acts.stopped)

        # A new fps restarts that actor only.
        s0, t0 = mark()
        r = await env.client.patch(f"/api/admin/cameras/{cid}", json={"fps": 8}, headers=A)
        assert r.status_code == 200 and r.json()["fps"] == 8
        assert acts.started[s0:] == [cid] and acts.stopped[t0:] == [cid]

        # A rename is not a runtime change: no restart.
        s0, t0 = mark()
        r = await env.client.patch(f"/api/admin/cameras/{cid}", json={"name": "side entrance"}, headers=A)
        assert r.json()["name"] == "side entrance" and mark() == (s0, t0)
        assert_error(
            await env.client.patch(f"/api/admin/cameras/{cid}", json={"name": "door"}, headers=A), 409
        )

        # Lines: add, replace, delete; each restarts that camera's actor only.
        s0, t0 = mark()
        r = await env.client.post(
            f"/api/admin/cameras/{cid}/lines", json={"name": "exit", "segment": [5, 5, 50, 5]}, headers=A
        )
        assert r.status_code == 201, r.text
        line = r.json()
        assert line["camera_id"] == cid and line["segment"] == [5.0, 5.0, 50.0, 5.0]
        assert acts.started[s0:] == [cid] and acts.stopped[t0:] == [cid]
        assert_error(
            await env.client.post(
                f"/api/admin/cameras/{cid}/lines", json={"name": "exit", "segment": [1, 1, 2, 2]}, headers=A
            ),
            409,
        )
        r = await env.client.put(
            f"/api/admin/lines/{line['id']}",
            json={"name": "exit", "segment": [5, 6, 50, 6], "footfall": False},
            headers=A,
        )
        assert r.status_code == 200 and r.json()["footfall"] is False and r.json()["segment"][1] == 6.0
        s0, t0 = mark()
        assert (await env.client.delete(f"/api/admin/lines/{line['id']}", headers=A)).status_code == 204
        assert acts.started[s0:] == [cid]
        assert_error(await env.client.delete(f"/api/admin/lines/{line['id']}", headers=A), 404)

        # Disable: its actor stops, the restart endpoint refuses; enable: it starts again.
        r = await env.client.post(f"/api/admin/cameras/{cid}/disable", headers=A)
        assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["actor"] is None
        assert cid not in acts.actors and acts.stopped[-1] == cid
        assert "disabled" in assert_error(
            await env.client.post(f"/api/admin/cameras/{cid}/restart", headers=A), 409
        )
        r = await env.client.post(f"/api/admin/cameras/{cid}/enable", headers=A)
        assert r.json()["enabled"] is True and acts.started[-1] == cid

        # Delete: the actor goes; the camera is gone.
        assert (await env.client.delete(f"/api/admin/cameras/{cid}", headers=A)).status_code == 204
        assert cid not in acts.actors
        assert_error(await env.client.get(f"/api/cameras/{cid}", headers=V), 404)
        assert_error(await env.client.delete(f"/api/admin/cameras/{cid}", headers=A), 404)
        assert_error(await env.client.post(f"/api/admin/cameras/{cid}/enable", headers=A), 404)
    assert "secret" not in repr(logs)
    # Each change converged the actors to the stored configuration.
    assert acts.applied[-1] == [c.id for c in await site.list_cameras(env.pool)]


ADMIN_ROUTES = [
    ("POST", "/api/admin/cameras/1/restart"),
    ("POST", "/api/admin/cameras/1/enable"),
    ("POST", "/api/admin/cameras/1/disable"),
    ("POST", "/api/admin/stores/1/cameras"),
    ("PATCH", "/api/admin/cameras/1"),
    ("DELETE", "/api/admin/cameras/1"),
    ("POST", "/api/admin/cameras/1/lines"),
    ("PUT", "/api/admin/lines/1"),
    ("DELETE", "/api/admin/lines/1"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_routes_need_the_admin_token(env: Env, method: str, path: str) -> None:
    assert_error(await env.client.request(method, path, json={}), 401)
    assert_error(await env.client.request(method, path, json={}, headers=V), 403)
    assert_error(
        await env.client.request(method, path, json={}, headers={"Authorization": "Bearer x" * 3}), 403
    )
    assert (await site.get_camera(env.pool, 1)).enabled  # nothing happened


# -- bad input ---------------------------------------------------------------------------------------

BIG = 2**31
BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int | None, str]] = [
    # method, path, httpx kwargs, expected status (None: any 4xx), a word the detail must hold
    ("POST", "/api/admin/stores/1/cameras", {"content": b"{not json"}, 400, "JSON"),
    ("POST", "/api/admin/stores/1/cameras", {"content": b""}, 400, ""),
    ("POST", "/api/admin/stores/1/cameras", {"content": b"null"}, 400, ""),
    ("POST", "/api/admin/stores/1/cameras", {"json": []}, 400, "object"),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "x"}}, 400, "source"),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "", "source": "a"}}, 400, "name"),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "a\nb", "source": "a"}}, 400, "name"),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "x" * 101, "source": "a"}}, 400, "name"),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "x", "source": "a", "fps": 0}}, 400, "fps"),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {"json": {"name": "x", "source": "a", "fps": "fast"}},
        400,
        "fps",
    ),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "x", "source": "a", "fps": 1e308}}, 400, "fps"),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "x", "source": "a", "extra": 1}}, 400, "extra"),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {"json": {"name": "x", "source": "a", "lines": "door"}},
        400,
        "lines",
    ),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {"json": {"name": "x", "source": "a", "lines": [{"name": "l", "segment": [1, 2, 3]}]}},
        400,
        "lines[0].segment",
    ),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {"json": {"name": "x", "source": "a", "lines": [{"name": "l", "segment": [1, 1, 1, 1]}]}},
        400,
        "end points",
    ),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {"json": {"name": "x", "source": "a", "lines": [{"name": "l", "segment": [-1, 0, 5, 5]}]}},
        400,
        "segment",
    ),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {
            "json": {
                "name": "x",
                "source": "a",
                "lines": [{"name": "l", "segment": [0, 0, 5, 5], "inside": "up"}],
            }
        },
        400,
        "inside",
    ),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {"json": {"name": "x", "source": "a", "lines": [{"name": "l", "segment": [0, 0, 5, 5]}] * 2}},
        400,
        "twice",
    ),
    (
        "POST",
        "/api/admin/stores/1/cameras",
        {"json": {"name": "x", "source": "a", "zones": [{"name": "z", "polygon": [[0, 0], [1, 1]]}]}},
        400,
        "polygon",
    ),
    ("POST", "/api/admin/stores/1/cameras", {"json": {"name": "door", "source": "a"}}, 409, "door"),
    ("POST", "/api/admin/stores/999/cameras", {"json": {"name": "x", "source": "a"}}, 404, "999"),
    ("POST", f"/api/admin/stores/{BIG}/cameras", {"json": {"name": "x", "source": "a"}}, 400, "store_id"),
    ("POST", "/api/admin/stores/0/cameras", {"json": {"name": "x", "source": "a"}}, 400, "store_id"),
    ("POST", "/api/admin/stores/-1/cameras", {"json": {"name": "x", "source": "a"}}, 400, "store_id"),
    ("POST", "/api/admin/stores/x/cameras", {"json": {"name": "x", "source": "a"}}, 404, "/api"),
    ("PATCH", "/api/admin/cameras/1", {"json": {"fps": -5}}, 400, "fps"),
    ("PATCH", "/api/admin/cameras/1", {"json": {"source": ""}}, 400, "source"),
    ("PATCH", "/api/admin/cameras/1", {"json": {"lines": []}}, 400, "lines"),
    ("PATCH", "/api/admin/cameras/1", {"json": {"enabled": "yes"}}, 400, "enabled"),
    ("PATCH", "/api/admin/cameras/1", {"json": {}}, 400, "change"),
    ("PATCH", "/api/admin/cameras/9999", {"json": {"fps": 5}}, 404, "9999"),
    ("PATCH", f"/api/admin/cameras/{BIG}", {"json": {"fps": 5}}, 400, "camera_id"),
    ("POST", "/api/admin/cameras/9999/lines", {"json": {"name": "l", "segment": [0, 0, 5, 5]}}, 404, "9999"),
    ("POST", "/api/admin/cameras/1/lines", {"json": {"name": "l", "segment": [0, 0]}}, 400, "segment"),
    ("PUT", "/api/admin/lines/9999", {"json": {"name": "l", "segment": [0, 0, 5, 5]}}, 404, "9999"),
    ("PUT", "/api/admin/lines/1", {"json": {"segment": [0, 0, 5, 5]}}, 400, "name"),
    ("DELETE", "/api/admin/lines/9999", {}, 404, "9999"),
    ("DELETE", "/api/admin/cameras/9999", {}, 404, "9999"),
    ("POST", "/api/admin/cameras/9999/disable", {}, 404, "9999"),
    ("GET", "/api/admin/cameras/1/restart", {}, 405, "GET"),
    ("GET", "/api/nowhere", {}, 404, "nowhere"),
    ("GET", "/api/stores/1/traffic?from=yesterday", {}, 400, "from"),
    ("GET", "/api/stores/1/traffic?to=2026-02-30", {}, 400, "to"),
    ("GET", "/api/stores/1/traffic?from=2026-03-02&to=2026-03-01", {}, 400, "before"),
    ("GET", "/api/stores/1/traffic?from=2026-03-01&to=2026-03-01", {}, 400, "before"),
    ("GET", "/api/stores/1/traffic?from=2025-01-01&to=2026-03-01&bucket=hour", {}, 400, "bucket=day"),
    ("GET", "/api/stores/1/traffic?from=1900-01-01&to=2026-03-01&bucket=day", {}, 400, "years"),
    ("GET", "/api/stores/1/traffic?from=0001-01-01T00:00:00&bucket=day", {}, 400, "years"),
    ("GET", "/api/stores/1/traffic?from=9999-12-31&bucket=day", {}, 400, "years"),
    ("GET", "/api/stores/1/traffic?bucket=week", {}, 400, "bucket"),
    ("GET", "/api/stores/1/traffic?by=everything", {}, 400, "by"),
    ("GET", "/api/stores/1/traffic?from=" + "9" * 100, {}, 400, "from"),
    ("GET", "/api/stores/999/traffic", {}, 404, "999"),
    ("GET", "/api/cameras?store_id=abc", {}, 400, "store_id"),
    ("GET", f"/api/cameras?store_id={BIG}", {}, 400, "store_id"),
    ("GET", f"/api/stores/{BIG}", {}, 400, "store_id"),
    ("GET", f"/api/cameras/{10**30}", {}, 400, "camera_id"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "word"), BAD_REQUESTS)
async def test_bad_input_gets_a_clear_4xx(
    env: Env, method: str, path: str, kwargs: dict[str, Any], status: int | None, word: str
) -> None:
    r = await env.client.request(method, path, headers=A, **kwargs)
    detail = assert_error(r, status)
    assert word.lower() in detail.lower(), detail


async def test_traffic_plus_in_an_offset_survives_query_decoding(env: Env) -> None:
    # "+01:00" unescaped in a query string reads as " 01:00": still understood.
    r = await env.client.get(
        f"/api/stores/{env.tunis.id}/traffic?from=2026-06-01T06:00:00+01:00&to=2026-06-01T09:00:00+01:00",
        headers=V,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["buckets"]) == 3


# -- traffic -----------------------------------------------------------------------------------------


async def insert_crossings(
    pool: asyncpg.Pool, rows: list[tuple[datetime, int, int, int, str, str, bool]]
) -> None:
    """rows: (ts, store, camera, line_id, line, direction, footfall)."""
    await pool.executemany(
        """INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session, frame)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'test', 1)""",
        [(uuid.uuid4(), ts, s, c, lid, ln, d, f, i) for i, (ts, s, c, lid, ln, d, f) in enumerate(rows)],
    )


def random_rows(
    rng: random.Random, store: int, start: datetime, end: datetime, n: int
) -> list[tuple[datetime, int, int, int, str, str, bool]]:
    span = (end - start).total_seconds()
    rows = []
    for _ in range(n):
        ts = start + timedelta(seconds=rng.uniform(0, span))
        cam, line_id, line, footfall = rng.choice(
            [(1, 1, "entrance", True), (2, 9, "back", True), (1, 2, "aisle", False)]
        )
        rows.append((ts, store, cam, line_id, line, rng.choice(["in", "in", "out"]), footfall))
    return rows


@pytest.mark.parametrize(
    ("day", "hours", "labels"),
    [
        # 02:00 CET jumps to 03:00 CEST: 23 buckets, no 02:00 one.
        (date(2026, 3, 29), 23, ["00:00:00+01:00", "01:00:00+01:00", "03:00:00+02:00", "04:00:00+02:00"]),
        # 03:00 CEST falls back to 02:00 CET: 25 buckets, 02:00 twice.
        (date(2026, 10, 25), 25, ["00:00:00+02:00", "01:00:00+02:00", "02:00:00+02:00", "02:00:00+01:00"]),
    ],
)
async def test_traffic_hour_buckets_on_dst_days(env: Env, day: date, hours: int, labels: list[str]) -> None:
    store = env.paris.id
    start = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    end = (datetime(day.year, day.month, day.day, tzinfo=PARIS) + timedelta(days=1)).astimezone(UTC)
    assert end - start == timedelta(hours=hours)
    rng = random.Random(day.toordinal())
    rows = random_rows(rng, store, start - timedelta(hours=3), end + timedelta(hours=3), 1500)
    rows += random_rows(rng, env.tunis.id, start, end, 100)  # another store: never counted
    rows += [
        (start, store, 1, 1, "entrance", "in", True),
        (end, store, 1, 1, "entrance", "in", True),
    ]  # edges
    await insert_crossings(env.pool, rows)

    r = await env.client.get(
        f"/api/stores/{store}/traffic",
        params={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()},
        headers=V,
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["bucket"] == "hour" and len(report["buckets"]) == hours
    assert [b["start"][11:] for b in report["buckets"][:2]] + [
        b["start"][11:] for b in report["buckets"][2:4]
    ] == labels
    assert datetime.fromisoformat(report["from"]) == start and datetime.fromisoformat(report["to"]) == end

    exp_in, exp_out = [0] * hours, [0] * hours
    for ts, s, _c, _l, _n, direction, footfall in rows:
        if s == store and footfall and start <= ts < end:
            i = int((ts - start).total_seconds() // 3600)
            (exp_in if direction == "in" else exp_out)[i] += 1
    assert [b["in_count"] for b in report["buckets"]] == exp_in
    assert [b["out_count"] for b in report["buckets"]] == exp_out
    assert report["in_count"] == sum(exp_in) and report["out_count"] == sum(exp_out)
    for b in report["buckets"]:
        assert datetime.fromisoformat(b["end"]) - datetime.fromisoformat(b["start"]) == timedelta(hours=1)

    # Per camera (entrance lines) adds up to the store; per line also shows the non-entrance line.
    by_cam = (
        await env.client.get(
            f"/api/stores/{store}/traffic",
            params={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat(), "by": "camera"},
            headers=V,
        )
    ).json()
    assert by_cam["buckets"] == report["buckets"]
    assert [sum(x) for x in zip(*[s["in_counts"] for s in by_cam["series"]], strict=True)] == exp_in
    by_line = (
        await env.client.get(
            f"/api/stores/{store}/traffic",
            params={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat(), "by": "line"},
            headers=V,
        )
    ).json()
    assert {(s["line"], s["footfall"]) for s in by_line["series"]} == {
        ("entrance", True),
        ("back", True),
        ("aisle", False),
    }
    aisle = next(s for s in by_line["series"] if s["line"] == "aisle")
    assert aisle["in_count"] == sum(
        1
        for ts, s, _c, _l, n, d, _f in rows
        if s == store and n == "aisle" and d == "in" and start <= ts < end
    )
    assert by_line["in_count"] == report["in_count"]


async def test_traffic_day_buckets_start_at_day_start_hour(env: Env) -> None:
    store = env.tunis  # Africa/Tunis, days from 06:00
    first = date(2026, 6, 8)
    start = datetime(2026, 6, 8, 6, tzinfo=TUNIS).astimezone(UTC)
    end = start + timedelta(days=7)
    rng = random.Random(7)
    rows = random_rows(rng, store.id, start - timedelta(days=1), end + timedelta(days=1), 2000)
    await insert_crossings(env.pool, rows)
    r = await env.client.get(
        f"/api/stores/{store.id}/traffic",
        params={"from": "2026-06-08", "to": "2026-06-15", "bucket": "day"},
        headers=V,
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert [b["start"] for b in report["buckets"]] == [
        f"2026-06-{d:02d}T06:00:00+01:00" for d in range(8, 15)
    ]
    exp = [0] * 7
    for ts, _s, _c, _l, _n, direction, footfall in rows:
        local = ts.astimezone(TUNIS) - timedelta(hours=6)  # the business date
        i = (local.date() - first).days
        if footfall and direction == "in" and 0 <= i < 7:
            exp[i] += 1
    assert [b["in_count"] for b in report["buckets"]] == exp

    # A date-time range is widened to whole buckets, and the report says so.
    r = await env.client.get(
        f"/api/stores/{store.id}/traffic",
        params={"from": "2026-06-08T10:30:00", "to": "2026-06-08T12:10:00"},
        headers=V,
    )
    report = r.json()
    assert report["from"] == "2026-06-08T10:00:00+01:00" and report["to"] == "2026-06-08T13:00:00+01:00"
    assert len(report["buckets"]) == 3


async def test_traffic_defaults_to_today_with_empty_buckets(env: Env) -> None:
    r = await env.client.get(f"/api/stores/{env.paris.id}/traffic", headers=V)
    report = r.json()
    assert r.status_code == 200 and report["bucket"] == "hour"
    assert len(report["buckets"]) in (23, 24, 25)
    now = datetime.now(UTC)
    assert datetime.fromisoformat(report["from"]) <= now < datetime.fromisoformat(report["to"])
    r = await env.client.get(f"/api/stores/{env.paris.id}/traffic", params={"bucket": "day"}, headers=V)
    assert len(r.json()["buckets"]) == 7


# -- metrics, docs, frontend, dead database --------------------------------------------------------


async def test_metrics(env: Env) -> None:
    await env.client.get("/api/stores", headers=V)
    text = (await env.client.get("/metrics")).text
    assert 'metrica_camera_fps{camera="door",camera_id="1"} 5.0' in text
    assert 'metrica_camera_state{camera="door",camera_id="1",state="running"} 1.0' in text
    assert "metrica_camera_restarts_total" in text
    assert "metrica_events_written_total 42.0" in text and "metrica_outbox_depth 7.0" in text
    assert "metrica_db_up 1.0" in text and "metrica_ws_subscribers 0.0" in text
    assert (
        'metrica_http_request_duration_seconds_count{method="GET",route="/api/stores",status="200"}' in text
    )
    assert "secret" not in text


async def test_openapi_document(env: Env) -> None:
    doc = (await env.client.get("/docs/openapi.json")).json()
    paths = set(doc["paths"])
    assert {
        "/api/health",
        "/api/stores/{store_id}/traffic",
        "/api/admin/cameras/{camera_id}/restart",
    } <= paths
    assert "BearerToken" in doc["components"]["securitySchemes"]
    assert (await env.client.get("/docs")).status_code == 200


async def test_frontend_mount_is_optional_and_harmless(env: Env, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>metrica</html>")
    services = Services(
        settings=settings(), pool=env.pool, actors=RecordingActors(), hub=LiveHub(), frontend_dir=tmp_path
    )
    async with Server(create_app(services)) as server, httpx.AsyncClient(base_url=server.url) as client:
        assert "metrica" in (await client.get("/")).text
        assert (await client.get("/api/health")).json()["database"] is True
        assert (await client.get("/api/stores")).status_code == 401
        assert (await client.get("/api/stores", headers=V)).status_code == 200


async def test_dead_database_is_a_503(env: Env) -> None:
    proxy = TcpProxy()
    await proxy.start()
    db = await env.pool.fetchval("SELECT current_database()")
    pool = await make_pool(f"postgresql://postgres@127.0.0.1:{proxy.port}/{db}")
    services = Services(settings=settings(), pool=pool, actors=RecordingActors(), hub=LiveHub())
    try:
        async with (
            Server(create_app(services)) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        ):
            assert (await client.get("/api/stores", headers=V)).status_code == 200
            await proxy.kill()
            for path in [
                "/api/stores",
                f"/api/stores/{env.paris.id}",
                "/api/cameras",
                f"/api/stores/{env.paris.id}/traffic",
            ]:
                r = await client.get(path, headers=V)
                assert r.status_code == 503, (path, r.text)
                assert "database" in r.json()["detail"] and r.json()["status_code"] == 503
            r = await client.post("/api/admin/cameras/1/enable", headers=A)
            assert r.status_code == 503
            health = await client.get("/api/health")
            assert health.status_code == 200
            assert health.json()["database"] is False and health.json()["status"] == "degraded"
    finally:
        await proxy.kill()
        pool.terminate()


async def test_latency_under_concurrent_load(env: Env) -> None:
    """20 concurrent clients; p50/p99 per route (printed with -s). The bound is loose: CPUs are shared."""
    routes = {
        "live": f"/api/stores/{env.paris.id}/live",
        "traffic (hour, today)": f"/api/stores/{env.paris.id}/traffic",
        "traffic (day, 30 days)": f"/api/stores/{env.paris.id}/traffic?bucket=day&from=2026-03-10&to=2026-04-09",
    }
    for name, path in routes.items():
        timings: list[float] = []

        async def worker(client: httpx.AsyncClient, path: str = path, timings: list[float] = timings) -> None:
            for _ in range(25):
                t0 = time.perf_counter()
                r = await client.get(path, headers=V)
                timings.append(time.perf_counter() - t0)
                assert r.status_code == 200

        # A client per worker, as separate phones would be (the shared fixture client keeps bodies).
        clients = [httpx.AsyncClient(base_url=str(env.client.base_url), timeout=30) for _ in range(20)]
        started = time.perf_counter()
        try:
            await asyncio.gather(*(worker(c) for c in clients))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
        wall = time.perf_counter() - started
        timings.sort()
        p50, p99 = timings[len(timings) // 2], timings[int(len(timings) * 0.99) - 1]
        print(
            f"\n{name}: {len(timings)} requests, 20 concurrent: p50={p50 * 1000:.1f} ms p99={p99 * 1000:.1f} ms "
            f"({len(timings) / wall:.0f} req/s)"
        )
        assert p99 < 5.0
