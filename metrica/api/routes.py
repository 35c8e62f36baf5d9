"""REST routes: health, stores (live state, traffic), cameras, and the admin changes."""

from __future__ import annotations

from typing import Annotated, Literal

import structlog
from litestar import Router, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from metrica.actors.live import LiveState
from metrica.api.auth import admin_guard, viewer_guard
from metrica.api.errors import ApiError
from metrica.api.schemas import ActorHealth, CameraPatch, CameraView, Health, RestartResult, camera_view
from metrica.api.services import Services
from metrica.api.traffic import RangeError, TrafficReport, traffic_report
from metrica.config import CameraConfig, LineConfig
from metrica.db import queries, site
from metrica.events import ActorInfo
from metrica.site import Line, Store

__all__ = ["admin_router", "public_router", "viewer_router"]

log = structlog.get_logger(__name__)

# Ids are PostgreSQL integers: a larger number is a 400, not a database error.
Id = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
Deps = NamedDependency[Services]
_HEALTHY = frozenset({"starting", "running"})


def _actors_by_camera(services: Services) -> dict[int, ActorInfo]:
    return {info.camera_id: info for info in services.actors.status()}


# -- public ------------------------------------------------------------------------------------------


@get("/api/health", summary="Service health (no token needed)", tags=["health"])
async def health(services: Deps) -> Health:
    db = await queries.ping(services.pool)
    actors = [
        ActorHealth(
            camera_id=a.camera_id,
            name=a.name,
            state=a.state,
            fps=a.fps,
            last_error=a.last_error,
            restarts=a.restarts,
        )
        for a in sorted(services.actors.status(), key=lambda a: a.camera_id)
    ]
    ok = db and all(a.state in _HEALTHY for a in actors)
    return Health(status="ok" if ok else "degraded", database=db, actors=actors)


public_router = Router(path="/", route_handlers=[health])


# -- viewer ------------------------------------------------------------------------------------------


@get("/api/stores", summary="All stores", tags=["stores"])
async def list_stores(services: Deps) -> list[Store]:
    return await site.list_stores(services.pool)


@get("/api/stores/{store_id:int}", summary="One store", tags=["stores"])
async def get_store(services: Deps, store_id: Id) -> Store:
    return await site.get_store(services.pool, store_id)


@get(
    "/api/stores/{store_id:int}/live",
    summary="Inside now, today's visitors, 15-minute inflow",
    tags=["stores"],
)
async def get_live(services: Deps, store_id: Id) -> LiveState:
    try:
        return services.hub.state(store_id)
    except KeyError:
        await site.get_store(services.pool, store_id)  # 404 when the store does not exist
        raise ApiError(404, f"store {store_id} has no live state in this process") from None


@get(
    "/api/stores/{store_id:int}/traffic",
    summary="IN/OUT counts per hour or business day, in the store's time zone",
    description=(
        "`from`/`to`: ISO dates (a date names the business day starting on it at the store's day_start_hour)"
        " or date-times (naive = store time). The range is [from, to), widened to whole buckets; a DST day"
        " has 23 or 25 hourly buckets. Defaults: today (hour) or the last 7 days (day). `by=camera|line`"
        " adds one series per camera (entrance lines) or per line (every line)."
    ),
    tags=["stores"],
)
async def get_traffic(
    services: Deps,
    store_id: Id,
    from_: Annotated[str | None, QueryParameter(name="from", max_length=64)] = None,
    to: Annotated[str | None, QueryParameter(max_length=64)] = None,
    bucket: Annotated[str, QueryParameter(max_length=16)] = "hour",
    by: Annotated[Literal["store", "camera", "line"], QueryParameter()] = "store",
) -> TrafficReport:
    store = await site.get_store(services.pool, store_id)
    try:
        return await traffic_report(
            services.pool,
            store,
            from_=from_,
            to=to,
            bucket=bucket,
            by=by,
            retention_days=services.settings.retention_days,
        )
    except RangeError as exc:
        raise ApiError(400, str(exc)) from None


@get("/api/cameras", summary="Cameras with their actor status (sources redacted)", tags=["cameras"])
async def list_cameras(
    services: Deps, store_id: Annotated[int | None, QueryParameter(ge=1, le=2**31 - 1)] = None
) -> list[CameraView]:
    if store_id is not None:
        await site.get_store(services.pool, store_id)  # 404 for an unknown store, not an empty list
    cameras = await site.list_cameras(services.pool, store_id=store_id)
    actors = _actors_by_camera(services)
    last = await queries.camera_status_latest(services.pool, [c.id for c in cameras])
    return [camera_view(c, actors.get(c.id), last.get(c.id)) for c in cameras]


@get("/api/cameras/{camera_id:int}", summary="One camera (source redacted)", tags=["cameras"])
async def get_camera(services: Deps, camera_id: Id) -> CameraView:
    camera = await site.get_camera(services.pool, camera_id)
    last = await queries.camera_status_latest(services.pool, [camera_id])
    return camera_view(camera, _actors_by_camera(services).get(camera_id), last.get(camera_id))


viewer_router = Router(
    path="/",
    guards=[viewer_guard],
    route_handlers=[list_stores, get_store, get_live, get_traffic, list_cameras, get_camera],
    security=[{"BearerToken": []}],
)


# -- admin -------------------------------------------------------------------------------------------


async def _apply(services: Services, reason: str, camera_id: int | None = None) -> None:
    """Converge the actors (and the hub's camera list) to the stored configuration after a change."""
    cameras = await site.list_cameras(services.pool)
    await services.actors.apply(cameras)
    services.hub.set_cameras(cameras)
    log.info("admin.applied", reason=reason, camera_id=camera_id, cameras=len(cameras))


@post(
    "/api/admin/cameras/{camera_id:int}/restart",
    summary="Restart that camera's actor (a new process)",
    status_code=HTTP_202_ACCEPTED,
    tags=["admin"],
)
async def restart_camera(services: Deps, camera_id: Id) -> RestartResult:
    camera = await site.get_camera(services.pool, camera_id)
    if not camera.enabled:
        raise ApiError(409, f"camera {camera_id} is disabled: enable it instead of restarting it")
    try:
        await services.actors.restart(camera_id)
    except KeyError:
        raise ApiError(409, f"camera {camera_id} has no running actor to restart") from None
    log.info("admin.restarted", camera_id=camera_id)
    return RestartResult(
        camera_id=camera_id, restarted=True, actor=_actors_by_camera(services).get(camera_id)
    )


async def _set_enabled(services: Services, camera_id: int, enabled: bool) -> CameraView:
    camera = await site.set_camera_enabled(services.pool, camera_id, enabled)
    await _apply(services, "enable" if enabled else "disable", camera_id)
    return camera_view(camera, _actors_by_camera(services).get(camera_id))


@post("/api/admin/cameras/{camera_id:int}/enable", summary="Enable a camera", status_code=200, tags=["admin"])
async def enable_camera(services: Deps, camera_id: Id) -> CameraView:
    return await _set_enabled(services, camera_id, True)


@post(
    "/api/admin/cameras/{camera_id:int}/disable", summary="Disable a camera", status_code=200, tags=["admin"]
)
async def disable_camera(services: Deps, camera_id: Id) -> CameraView:
    return await _set_enabled(services, camera_id, False)


@post(
    "/api/admin/stores/{store_id:int}/cameras",
    summary="Add a camera (with its lines and zones)",
    tags=["admin"],
)
async def create_camera(services: Deps, store_id: Id, data: JSONBody[CameraConfig]) -> CameraView:
    camera = await site.create_camera(services.pool, store_id, data)
    log.info("admin.camera_created", camera_id=camera.id, store_id=store_id, source=camera.public_source)
    await _apply(services, "camera created", camera.id)
    return camera_view(camera, _actors_by_camera(services).get(camera.id))


@patch("/api/admin/cameras/{camera_id:int}", summary="Change a camera's settings", tags=["admin"])
async def update_camera(services: Deps, camera_id: Id, data: JSONBody[CameraPatch]) -> CameraView:
    changes = data.changes()
    if not changes:
        raise ApiError(400, "body: names no field to change (name, source, fps, model, enabled, loop)")
    camera = await site.update_camera(services.pool, camera_id, changes)
    log.info("admin.camera_updated", camera_id=camera_id, fields=sorted(changes))
    await _apply(services, "camera updated", camera_id)
    return camera_view(camera, _actors_by_camera(services).get(camera_id))


@delete(
    "/api/admin/cameras/{camera_id:int}",
    summary="Delete a camera (its counted events stay)",
    status_code=HTTP_204_NO_CONTENT,
    tags=["admin"],
)
async def delete_camera(services: Deps, camera_id: Id) -> None:
    await site.delete_camera(services.pool, camera_id)
    log.info("admin.camera_deleted", camera_id=camera_id)
    await _apply(services, "camera deleted", camera_id)


@post("/api/admin/cameras/{camera_id:int}/lines", summary="Add a counting line", tags=["admin"])
async def create_line(services: Deps, camera_id: Id, data: JSONBody[LineConfig]) -> Line:
    line = await site.create_line(services.pool, camera_id, data)
    await _apply(services, "line created", camera_id)
    return line


@put("/api/admin/lines/{line_id:int}", summary="Replace a counting line", tags=["admin"])
async def update_line(services: Deps, line_id: Id, data: JSONBody[LineConfig]) -> Line:
    line = await site.update_line(services.pool, line_id, data)
    await _apply(services, "line updated", line.camera_id)
    return line


@delete(
    "/api/admin/lines/{line_id:int}",
    summary="Delete a counting line",
    status_code=HTTP_204_NO_CONTENT,
    tags=["admin"],
)
async def delete_line(services: Deps, line_id: Id) -> None:
    await site.delete_line(services.pool, line_id)
    await _apply(services, "line deleted")


admin_router = Router(
    path="/",
    guards=[admin_guard],
    route_handlers=[
        restart_camera,
        enable_camera,
        disable_camera,
        create_camera,
        update_camera,
        delete_camera,
        create_line,
        update_line,
        delete_line,
    ],
    security=[{"BearerToken": []}],
)
