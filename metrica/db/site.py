"""The site configuration store: stores, cameras, lines and zones in PostgreSQL.

The database is the source of truth; a YAML file only bootstraps an empty one (`bootstrap`). Every write
is validated with the same rules as the YAML (`metrica.config` Structs; a mistake raises `ConfigError`
with path and reason), a missing row raises `NotFoundError`, a taken name `ConflictError`. Changing a
camera, or any of its lines, bumps the camera's ``updated_at`` (the supervisor's cue to look again).

Zone polygons travel as text cast to jsonb, so these functions work on any asyncpg pool, whether or not
its connections have the jsonb codec of `metrica.db.pool`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import asyncpg
import msgspec
import structlog

from metrica.config import (
    CameraConfig,
    ConfigError,
    LineConfig,
    SiteConfig,
    ZoneConfig,
    explain_validation_error,
)
from metrica.db.errors import ConflictError, NotFoundError
from metrica.site import Camera, Line, Store, Zone

__all__ = [
    "CAMERA_FIELDS",
    "bootstrap",
    "create_camera",
    "create_line",
    "delete_camera",
    "delete_line",
    "get_camera",
    "get_store",
    "list_cameras",
    "list_stores",
    "set_camera_enabled",
    "update_camera",
    "update_line",
]

log = structlog.get_logger(__name__)

# What update_camera may change; lines and zones have their own functions.
CAMERA_FIELDS = ("name", "source", "fps", "model", "enabled", "loop")

_T = TypeVar("_T")
_Conn: TypeAlias = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_STORE_COLS = "id, name, timezone, day_start_hour, occupancy_limit"
_CAMERA_COLS = "id, store_id, name, source, fps, model, enabled, loop, updated_at"
_LINE_COLS = "id, camera_id, name, x1, y1, x2, y2, inside, footfall"
_ZONE_COLS = "id, camera_id, name, polygon::text AS polygon"


def _validated(value: Any, kind: type[_T]) -> _T:
    """Re-check a Struct (constructors skip Meta constraints) or convert a mapping, as the YAML would be."""
    raw = msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else dict(value)
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain_validation_error(exc)) from None


def _store(row: asyncpg.Record) -> Store:
    return Store(
        id=row["id"],
        name=row["name"],
        timezone=row["timezone"],
        day_start_hour=row["day_start_hour"],
        occupancy_limit=row["occupancy_limit"],
    )


def _line(row: asyncpg.Record) -> Line:
    return Line(
        id=row["id"],
        camera_id=row["camera_id"],
        name=row["name"],
        segment=(row["x1"], row["y1"], row["x2"], row["y2"]),
        inside=row["inside"],
        footfall=row["footfall"],
    )


def _zone(row: asyncpg.Record) -> Zone:
    polygon = msgspec.json.decode(row["polygon"], type=list[tuple[float, float]])
    return Zone(id=row["id"], camera_id=row["camera_id"], name=row["name"], polygon=polygon)


def _camera(row: asyncpg.Record, lines: list[Line], zones: list[Zone]) -> Camera:
    return Camera(
        id=row["id"],
        store_id=row["store_id"],
        name=row["name"],
        source=row["source"],
        fps=row["fps"],
        model=row["model"],
        enabled=row["enabled"],
        loop=row["loop"],
        lines=lines,
        zones=zones,
        updated_at=row["updated_at"],
    )


async def _cameras(conn: _Conn, where: str, *args: Any) -> list[Camera]:
    """Cameras matching ``where`` with their lines and zones: three queries whatever the count."""
    rows = await conn.fetch(f"SELECT {_CAMERA_COLS} FROM cameras WHERE {where} ORDER BY id", *args)
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    lines: dict[int, list[Line]] = {i: [] for i in ids}
    zones: dict[int, list[Zone]] = {i: [] for i in ids}
    for row in await conn.fetch(f"SELECT {_LINE_COLS} FROM lines WHERE camera_id = ANY($1) ORDER BY id", ids):
        lines[row["camera_id"]].append(_line(row))
    for row in await conn.fetch(f"SELECT {_ZONE_COLS} FROM zones WHERE camera_id = ANY($1) ORDER BY id", ids):
        zones[row["camera_id"]].append(_zone(row))
    return [_camera(row, lines[row["id"]], zones[row["id"]]) for row in rows]


async def _camera_by_id(conn: _Conn, camera_id: int) -> Camera:
    found = await _cameras(conn, "id = $1", camera_id)
    if not found:
        raise NotFoundError(f"camera {camera_id} not found")
    return found[0]


# --- bootstrap ---------------------------------------------------------------------------------------


async def bootstrap(pool: asyncpg.Pool, site: SiteConfig) -> bool:
    """Load the whole site configuration in one transaction if no store exists yet; return whether it did.

    Two processes bootstrapping at once are serialised by a table lock: exactly one loads.
    """
    site = _validated(site, SiteConfig)
    async with pool.acquire() as conn, conn.transaction():
        # SHARE ROW EXCLUSIVE conflicts with itself, so a second bootstrap waits and then sees the rows.
        await conn.execute("LOCK TABLE stores IN SHARE ROW EXCLUSIVE MODE")
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM stores)"):
            log.info("site.bootstrap_skipped", reason="the database already has stores")
            return False
        cameras = 0
        for store in site.stores:
            store_id = await conn.fetchval(
                "INSERT INTO stores (name, timezone, day_start_hour, occupancy_limit) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                store.name,
                store.timezone,
                store.day_start_hour,
                store.occupancy_limit,
            )
            for camera in store.cameras:
                await _insert_camera(conn, store_id, camera)
                cameras += 1
        log.info("site.bootstrapped", stores=len(site.stores), cameras=cameras)
        return True


# --- stores ------------------------------------------------------------------------------------------


async def list_stores(pool: asyncpg.Pool) -> list[Store]:
    return [_store(row) for row in await pool.fetch(f"SELECT {_STORE_COLS} FROM stores ORDER BY id")]


async def get_store(pool: asyncpg.Pool, store_id: int) -> Store:
    row = await pool.fetchrow(f"SELECT {_STORE_COLS} FROM stores WHERE id = $1", store_id)
    if row is None:
        raise NotFoundError(f"store {store_id} not found")
    return _store(row)


# --- cameras -----------------------------------------------------------------------------------------


async def list_cameras(
    pool: asyncpg.Pool, *, store_id: int | None = None, enabled_only: bool = False
) -> list[Camera]:
    """Cameras ordered by id, each with its lines and zones (ordered by id, segments as stored)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        # One snapshot for the three queries: a line added in between cannot show up without its camera.
        return await _cameras(
            conn,
            "($1::integer IS NULL OR store_id = $1) AND (enabled OR NOT $2::boolean)",
            store_id,
            enabled_only,
        )


async def get_camera(pool: asyncpg.Pool, camera_id: int) -> Camera:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await _camera_by_id(conn, camera_id)


async def _insert_camera(conn: _Conn, store_id: int, camera: CameraConfig) -> int:
    try:
        camera_id: int = await conn.fetchval(
            "INSERT INTO cameras (store_id, name, source, fps, model, enabled, loop) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            store_id,
            camera.name,
            camera.source,
            camera.fps,
            camera.model,
            camera.enabled,
            camera.loop,
        )
    except asyncpg.UniqueViolationError:
        raise ConflictError(f"a camera named {camera.name!r} already exists in store {store_id}") from None
    except asyncpg.ForeignKeyViolationError:
        raise NotFoundError(f"store {store_id} not found") from None
    await _insert_lines(conn, camera_id, camera.lines)
    await _insert_zones(conn, camera_id, camera.zones)
    return camera_id


async def _insert_lines(conn: _Conn, camera_id: int, lines: Sequence[LineConfig]) -> list[int]:
    ids: list[int] = []
    for line in lines:
        try:
            ids.append(
                await conn.fetchval(
                    "INSERT INTO lines (camera_id, name, x1, y1, x2, y2, inside, footfall) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    camera_id,
                    line.name,
                    *line.segment,
                    line.inside,
                    line.footfall,
                )
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError(f"a line named {line.name!r} already exists on camera {camera_id}") from None
    return ids


async def _insert_zones(conn: _Conn, camera_id: int, zones: Sequence[ZoneConfig]) -> None:
    for zone in zones:
        try:
            await conn.execute(
                "INSERT INTO zones (camera_id, name, polygon) VALUES ($1, $2, $3::text::jsonb)",
                camera_id,
                zone.name,
                msgspec.json.encode(zone.polygon).decode(),
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError(f"a zone named {zone.name!r} already exists on camera {camera_id}") from None


async def create_camera(
    pool: asyncpg.Pool, store_id: int, camera: CameraConfig | Mapping[str, Any]
) -> Camera:
    """Add a camera with its lines and zones to a store (NotFoundError, ConflictError, ConfigError).

    ``camera`` may also be a plain mapping (a decoded JSON body); either way it is validated like the YAML.
    """
    camera = _validated(camera, CameraConfig)
    async with pool.acquire() as conn, conn.transaction():
        camera_id = await _insert_camera(conn, store_id, camera)
        created = await _camera_by_id(conn, camera_id)
    log.info("site.camera_created", camera_id=camera_id, store_id=store_id, source=created.public_source)
    return created


async def update_camera(pool: asyncpg.Pool, camera_id: int, changes: Mapping[str, Any]) -> Camera:
    """Change some of a camera's fields (`CAMERA_FIELDS`), validated as `CameraConfig` would validate them."""
    unknown = sorted(set(changes) - set(CAMERA_FIELDS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown field (allowed: {', '.join(CAMERA_FIELDS)})")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"SELECT {_CAMERA_COLS} FROM cameras WHERE id = $1 FOR UPDATE", camera_id)
        if row is None:
            raise NotFoundError(f"camera {camera_id} not found")
        merged = {name: row[name] for name in CAMERA_FIELDS} | dict(changes)
        checked = _validated(merged, CameraConfig)
        try:
            await conn.execute(
                "UPDATE cameras SET name = $2, source = $3, fps = $4, model = $5, enabled = $6, loop = $7, "
                "updated_at = now() WHERE id = $1",
                camera_id,
                checked.name,
                checked.source,
                checked.fps,
                checked.model,
                checked.enabled,
                checked.loop,
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError(
                f"a camera named {checked.name!r} already exists in store {row['store_id']}"
            ) from None
        updated = await _camera_by_id(conn, camera_id)
    log.info("site.camera_updated", camera_id=camera_id, fields=sorted(changes))
    return updated


async def set_camera_enabled(pool: asyncpg.Pool, camera_id: int, enabled: bool) -> Camera:
    return await update_camera(pool, camera_id, {"enabled": enabled})


async def delete_camera(pool: asyncpg.Pool, camera_id: int) -> None:
    """Delete a camera with its lines and zones; its counted crossings stay (they carry their own names)."""
    deleted = await pool.fetchval("DELETE FROM cameras WHERE id = $1 RETURNING id", camera_id)
    if deleted is None:
        raise NotFoundError(f"camera {camera_id} not found")
    log.info("site.camera_deleted", camera_id=camera_id)


# --- lines -------------------------------------------------------------------------------------------


async def _touch_camera(conn: _Conn, camera_id: int) -> None:
    """Lock the camera row and bump its updated_at; NotFoundError when there is none."""
    found = await conn.fetchval("UPDATE cameras SET updated_at = now() WHERE id = $1 RETURNING id", camera_id)
    if found is None:
        raise NotFoundError(f"camera {camera_id} not found")


async def _line_by_id(conn: _Conn, line_id: int) -> Line:
    row = await conn.fetchrow(f"SELECT {_LINE_COLS} FROM lines WHERE id = $1", line_id)
    if row is None:
        raise NotFoundError(f"line {line_id} not found")
    return _line(row)


async def create_line(pool: asyncpg.Pool, camera_id: int, line: LineConfig | Mapping[str, Any]) -> Line:
    line = _validated(line, LineConfig)
    async with pool.acquire() as conn, conn.transaction():
        await _touch_camera(conn, camera_id)
        (line_id,) = await _insert_lines(conn, camera_id, [line])
        created = await _line_by_id(conn, line_id)
    log.info("site.line_created", camera_id=camera_id, line_id=line_id)
    return created


async def update_line(pool: asyncpg.Pool, line_id: int, line: LineConfig | Mapping[str, Any]) -> Line:
    """Replace a line's name, segment, inside side and footfall flag."""
    line = _validated(line, LineConfig)
    async with pool.acquire() as conn, conn.transaction():
        camera_id = await conn.fetchval("SELECT camera_id FROM lines WHERE id = $1", line_id)
        if camera_id is None:
            raise NotFoundError(f"line {line_id} not found")
        await _touch_camera(conn, camera_id)
        try:
            updated = await conn.fetchval(
                "UPDATE lines SET name = $2, x1 = $3, y1 = $4, x2 = $5, y2 = $6, inside = $7, footfall = $8, "
                "updated_at = now() WHERE id = $1 RETURNING id",
                line_id,
                line.name,
                *line.segment,
                line.inside,
                line.footfall,
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError(f"a line named {line.name!r} already exists on camera {camera_id}") from None
        if updated is None:  # deleted between the two statements
            raise NotFoundError(f"line {line_id} not found")
        result = await _line_by_id(conn, line_id)
    log.info("site.line_updated", camera_id=camera_id, line_id=line_id)
    return result


async def delete_line(pool: asyncpg.Pool, line_id: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        camera_id = await conn.fetchval("DELETE FROM lines WHERE id = $1 RETURNING camera_id", line_id)
        if camera_id is None:
            raise NotFoundError(f"line {line_id} not found")
        await conn.execute("UPDATE cameras SET updated_at = now() WHERE id = $1", camera_id)
    log.info("site.line_deleted", camera_id=camera_id, line_id=line_id)
