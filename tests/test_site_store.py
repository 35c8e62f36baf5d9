"""The site configuration store against the real PostgreSQL: bootstrap once, CRUD, and its error paths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from metrica.config import CameraConfig, ConfigError, LineConfig, ZoneConfig, parse_site_config
from metrica.db import site
from metrica.db.errors import ConflictError, NotFoundError
from metrica.db.migrate import migrate
from metrica.db.pool import create_pool
from tests.pgcluster import create_database, drop_database

YAML = """
stores:
  - name: Rue de Marseille
    timezone: Africa/Tunis
    day_start_hour: 6
    occupancy_limit: 40
    cameras:
      - name: door
        source: rtsp://admin:s3cret@10.0.0.5/stream1
        fps: 7.3
        lines:
          - {name: entrance, segment: [10.1, 300, 700.5, 310], inside: negative}
          - {name: aisle, segment: [0, 0, 0, 100], footfall: false}
        zones:
          - {name: till, polygon: [[0, 0], [100, 0], [100, 50.5]]}
      - name: back
        source: /srv/video/back.mp4
        enabled: false
        loop: true
  - name: Lac
    cameras:
      - name: door
        source: usb:0
"""


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    dsn = create_database()
    try:
        asyncio.run(migrate(dsn))
        yield dsn
    finally:
        drop_database(dsn)


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(dsn, max_size=4)
    await pool.execute("TRUNCATE stores RESTART IDENTITY CASCADE")
    try:
        yield pool
    finally:
        await pool.close()


async def test_bootstrap_loads_the_yaml_once(pool: asyncpg.Pool) -> None:
    config = parse_site_config(YAML)
    assert await site.bootstrap(pool, config) is True
    assert await site.bootstrap(pool, config) is False  # the database is the source of truth now

    stores = await site.list_stores(pool)
    assert [(s.name, s.timezone, s.day_start_hour, s.occupancy_limit) for s in stores] == [
        ("Rue de Marseille", "Africa/Tunis", 6, 40),
        ("Lac", "Africa/Tunis", 0, None),
    ]
    cameras = await site.list_cameras(pool)
    assert [(c.store_id, c.name) for c in cameras] == [(1, "door"), (1, "back"), (2, "door")]
    door = cameras[0]
    assert door.fps == 7.3 and door.source == "rtsp://admin:s3cret@10.0.0.5/stream1"
    assert "s3cret" not in door.public_source
    # Lines come back as stored: the segment as written and its inside side, not pre-oriented.
    assert [(ln.name, ln.segment, ln.inside, ln.footfall) for ln in door.lines] == [
        ("entrance", (10.1, 300.0, 700.5, 310.0), "negative", True),
        ("aisle", (0.0, 0.0, 0.0, 100.0), "positive", False),
    ]
    vision = door.lines[0].vision_line()
    assert (vision.x1, vision.y1, vision.x2, vision.y2) == (700.5, 310.0, 10.1, 300.0)
    assert [(z.name, z.polygon) for z in door.zones] == [("till", [(0.0, 0.0), (100.0, 0.0), (100.0, 50.5)])]
    assert cameras[1].enabled is False and cameras[1].loop is True and cameras[1].lines == []

    assert [c.name for c in await site.list_cameras(pool, store_id=1, enabled_only=True)] == ["door"]
    assert [c.id for c in await site.list_cameras(pool, store_id=2)] == [3]
    assert await site.list_cameras(pool, store_id=99) == []
    assert (await site.get_store(pool, 2)).name == "Lac"
    assert await site.get_camera(pool, door.id) == door


async def test_two_bootstraps_at_once_load_one_copy(pool: asyncpg.Pool) -> None:
    config = parse_site_config(YAML)
    results = await asyncio.gather(site.bootstrap(pool, config), site.bootstrap(pool, config))
    assert sorted(results) == [False, True]
    assert len(await site.list_stores(pool)) == 2


async def test_camera_crud(pool: asyncpg.Pool) -> None:
    await site.bootstrap(pool, parse_site_config(YAML))
    camera = await site.create_camera(
        pool,
        2,
        CameraConfig(
            name="till",
            source="rtsp://u:p@cam/2",
            fps=4,
            lines=[LineConfig(name="l", segment=(1, 2, 3, 4))],
            zones=[ZoneConfig(name="z", polygon=[(1, 1), (2, 1), (2, 2)])],
        ),
    )
    assert camera.store_id == 2 and camera.fps == 4.0 and [ln.name for ln in camera.lines] == ["l"]
    assert camera.zones[0].polygon == [(1.0, 1.0), (2.0, 1.0), (2.0, 2.0)]

    updated = await site.update_camera(pool, camera.id, {"name": "till 2", "fps": 12.5, "model": "yolo11n"})
    assert (updated.name, updated.fps, updated.model, updated.source) == (
        "till 2",
        12.5,
        "yolo11n",
        camera.source,
    )
    assert updated.lines == camera.lines
    assert updated.updated_at is not None and camera.updated_at is not None
    assert updated.updated_at > camera.updated_at

    disabled = await site.set_camera_enabled(pool, camera.id, False)
    assert disabled.enabled is False
    assert camera.id not in [c.id for c in await site.list_cameras(pool, enabled_only=True)]
    assert (await site.set_camera_enabled(pool, camera.id, True)).enabled is True

    await site.delete_camera(pool, camera.id)
    with pytest.raises(NotFoundError, match=f"camera {camera.id} not found"):
        await site.get_camera(pool, camera.id)
    with pytest.raises(NotFoundError, match=f"camera {camera.id} not found"):
        await site.delete_camera(pool, camera.id)
    assert await pool.fetchval("SELECT count(*) FROM lines WHERE camera_id = $1", camera.id) == 0


async def test_camera_errors(pool: asyncpg.Pool) -> None:
    await site.bootstrap(pool, parse_site_config(YAML))
    with pytest.raises(NotFoundError, match="store 42 not found"):
        await site.get_store(pool, 42)
    with pytest.raises(NotFoundError, match="store 42 not found"):
        await site.create_camera(pool, 42, CameraConfig(name="x", source="usb:0"))
    with pytest.raises(NotFoundError, match="camera 42 not found"):
        await site.get_camera(pool, 42)
    with pytest.raises(NotFoundError, match="camera 42 not found"):
        await site.update_camera(pool, 42, {"fps": 5})
    with pytest.raises(ConflictError, match="a camera named 'door' already exists in store 1"):
        await site.create_camera(pool, 1, CameraConfig(name="door", source="usb:1"))
    with pytest.raises(ConflictError, match="a camera named 'back' already exists in store 1"):
        await site.update_camera(pool, 1, {"name": "back"})
    # Validation: the rules of the YAML, with the path of the mistake.
    with pytest.raises(ConfigError, match=r"^fps: expected `float` <= 60"):
        await site.update_camera(pool, 1, {"fps": 90})
    with pytest.raises(ConfigError, match=r"^name: expected `str` of length >= 1"):
        await site.update_camera(pool, 1, {"name": ""})
    with pytest.raises(ConfigError, match=r"^fps: expected `float`, got `str`"):
        await site.update_camera(pool, 1, {"fps": "fast"})
    with pytest.raises(ConfigError, match=r"^lines: unknown field"):
        await site.update_camera(pool, 1, {"lines": []})
    with pytest.raises(ConfigError, match=r"^lines\[0\]\.segment: the two end points are the same"):
        await site.create_camera(
            pool, 1, {"name": "new", "source": "usb:2", "lines": [{"name": "l", "segment": [5, 5, 5, 5]}]}
        )
    with pytest.raises(ConfigError, match=r"^zones\[0\]\.polygon: expected `array` of length >= 3"):
        await site.create_camera(
            pool, 1, CameraConfig(name="new", source="usb:2", zones=[ZoneConfig(name="z", polygon=[(1, 1)])])
        )
    camera = await site.create_camera(pool, 1, {"name": "dict", "source": "usb:3", "fps": 2})
    assert camera.fps == 2.0 and camera.lines == []
    await site.delete_camera(pool, camera.id)
    # Nothing of the refused writes is left behind, and the camera kept its values.
    assert [c.name for c in await site.list_cameras(pool, store_id=1)] == ["door", "back"]
    assert (await site.get_camera(pool, 1)).fps == 7.3


async def test_line_crud_bumps_the_camera(pool: asyncpg.Pool) -> None:
    await site.bootstrap(pool, parse_site_config(YAML))
    before = await site.get_camera(pool, 2)
    line = await site.create_line(
        pool, 2, LineConfig(name="exit", segment=(0, 10, 100, 10), inside="negative")
    )
    assert (line.camera_id, line.name, line.segment, line.inside) == (
        2,
        "exit",
        (0.0, 10.0, 100.0, 10.0),
        "negative",
    )
    after = await site.get_camera(pool, 2)
    assert after.lines == [line]
    assert (
        after.updated_at is not None
        and before.updated_at is not None
        and after.updated_at > before.updated_at
    )

    changed = await site.update_line(
        pool, line.id, LineConfig(name="exit", segment=(1, 2, 3, 4), footfall=False)
    )
    assert changed.id == line.id and changed.segment == (1.0, 2.0, 3.0, 4.0) and changed.inside == "positive"
    assert changed.footfall is False
    bumped = await site.get_camera(pool, 2)
    assert bumped.updated_at is not None and bumped.updated_at > after.updated_at

    with pytest.raises(ConflictError, match="a line named 'entrance' already exists on camera 1"):
        await site.create_line(pool, 1, LineConfig(name="entrance", segment=(0, 0, 1, 1)))
    with pytest.raises(ConflictError, match="a line named 'aisle' already exists on camera 1"):
        await site.update_line(pool, 1, LineConfig(name="aisle", segment=(0, 0, 1, 1)))
    with pytest.raises(NotFoundError, match="camera 42 not found"):
        await site.create_line(pool, 42, LineConfig(name="x", segment=(0, 0, 1, 1)))
    with pytest.raises(NotFoundError, match="line 4242 not found"):
        await site.update_line(pool, 4242, LineConfig(name="x", segment=(0, 0, 1, 1)))
    with pytest.raises(ConfigError, match=r"^segment: expected 4 numbers"):
        await site.create_line(pool, 2, {"name": "x", "segment": [1, 2, 3]})
    with pytest.raises(ConfigError, match=r"^inside: invalid enum value .left."):
        await site.update_line(pool, line.id, {"name": "x", "segment": [1, 2, 3, 4], "inside": "left"})
    with pytest.raises(ConfigError, match=r"^segment\[0\]: expected `float` >= 0"):
        await site.create_line(pool, 2, LineConfig(name="x", segment=(-1, 2, 3, 4)))

    await site.delete_line(pool, line.id)
    assert (await site.get_camera(pool, 2)).lines == []
    with pytest.raises(NotFoundError, match=f"line {line.id} not found"):
        await site.delete_line(pool, line.id)
