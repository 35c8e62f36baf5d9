"""The event vocabulary every part of the service shares.

Only these small anonymous records leave a camera actor: no image, no identity. Every timestamp is an
aware UTC `datetime`. A crossing's id is deterministic (camera, stream session, line, track, sequence),
so delivering it twice (a retry, an outbox replay) stores it once (`ON CONFLICT DO NOTHING`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec

__all__ = [
    "ActorInfo",
    "ActorState",
    "CameraStatus",
    "CrossingEvent",
    "Direction",
    "Event",
    "OccupancySample",
    "crossing_id",
    "utc_from_timestamp",
]

Direction = Literal["in", "out"]
ActorState = Literal["starting", "running", "reconnecting", "backing_off", "stopped", "failed"]

# Namespace of crossing ids: uuid5(_NAMESPACE, "camera/session/line/track/seq").
_NAMESPACE = uuid.UUID("6f1d3c0e-5b7a-4d8e-9a41-2c0b8e7f5a10")


def crossing_id(camera_id: int, session: str, line: str, track: int, seq: int) -> uuid.UUID:
    """Deterministic id of the ``seq``-th crossing (0-based) of ``line`` by ``track`` in one stream session.

    ``session`` names one run of a tracker over one connection (the actor's process start and the
    source's reconnect count): track ids restart with it, so it keeps ids of different runs apart.
    """
    return uuid.uuid5(_NAMESPACE, f"{camera_id}/{session}/{line}/{track}/{seq}")


def utc_from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class CrossingEvent(msgspec.Struct, frozen=True, kw_only=True, tag="crossing"):
    """A person's foot point crossed a counting line. ``direction`` is relative to the store: "in" enters."""

    id: uuid.UUID
    ts: datetime  # UTC, from the frame's presentation time on the stream's wall clock
    store_id: int
    camera_id: int
    line_id: int
    line: str  # the line's name at the time of the event (lines can be renamed or deleted later)
    direction: Direction
    footfall: bool  # whether the line counts for the store's footfall (an entrance)
    track: int
    session: str
    frame: int  # 1-based source frame index (continues across the sessions of one actor)


class CameraStatus(msgspec.Struct, frozen=True, kw_only=True, tag="status"):
    """A camera actor's state, reported on every change and periodically while running."""

    ts: datetime
    camera_id: int
    state: ActorState
    fps: float = 0.0  # processed frames per second over the last report interval
    error: str | None = None  # last error, credentials redacted
    restarts: int = 0


class OccupancySample(msgspec.Struct, frozen=True, kw_only=True, tag="occupancy"):
    """How many people are inside a store (entrance IN − OUT since the business day began, never < 0)."""

    ts: datetime
    store_id: int
    inside: int


class ActorInfo(msgspec.Struct, kw_only=True):
    """What the supervisor knows of one camera actor (health endpoint, cameras list, metrics)."""

    camera_id: int
    store_id: int
    name: str
    state: ActorState
    fps: float = 0.0
    last_error: str | None = None  # credentials redacted
    restarts: int = 0
    pid: int | None = None
    since: datetime  # when the actor entered its current state
    last_frame_at: datetime | None = None


Event = CrossingEvent | CameraStatus | OccupancySample
