"""Request and response bodies (msgspec Structs): what the OpenAPI document at /docs describes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from metrica.config import Name
from metrica.events import ActorInfo, ActorState, CameraStatus
from metrica.site import Camera, Line, Zone

__all__ = [
    "ActorHealth",
    "CameraPatch",
    "CameraView",
    "Health",
    "RestartResult",
    "camera_view",
]


class ActorHealth(msgspec.Struct, kw_only=True):
    camera_id: int
    name: str
    state: ActorState
    fps: float
    last_error: str | None
    restarts: int


class Health(msgspec.Struct, kw_only=True):
    """``ok`` when the database answers and every actor is starting or running, else ``degraded``."""

    status: Literal["ok", "degraded"]
    database: bool
    actors: list[ActorHealth]


class CameraView(msgspec.Struct, kw_only=True):
    """A camera's configuration and its actor's live status. ``source`` is always redacted."""

    id: int
    store_id: int
    name: str
    source: str  # credentials masked: rtsp://***@host/path
    fps: float
    model: str | None
    enabled: bool
    loop: bool
    lines: list[Line]
    zones: list[Zone]
    updated_at: datetime | None
    actor: ActorInfo | None = None  # None when no actor runs for it in this process
    last_status: CameraStatus | None = None  # the last status the writer stored


def camera_view(
    camera: Camera, actor: ActorInfo | None = None, last: CameraStatus | None = None
) -> CameraView:
    return CameraView(
        id=camera.id,
        store_id=camera.store_id,
        name=camera.name,
        source=camera.public_source,
        fps=camera.fps,
        model=camera.model,
        enabled=camera.enabled,
        loop=camera.loop,
        lines=list(camera.lines),
        zones=list(camera.zones),
        updated_at=camera.updated_at,
        actor=actor,
        last_status=last,
    )


class CameraPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; the ones left out keep their value. Lines have their own endpoints."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | msgspec.UnsetType = msgspec.UNSET
    fps: Annotated[float, msgspec.Meta(gt=0, le=60)] | msgspec.UnsetType = msgspec.UNSET
    model: str | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    loop: bool | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not msgspec.UNSET}


class RestartResult(msgspec.Struct, kw_only=True):
    camera_id: int
    restarted: bool
    actor: ActorInfo | None = None
