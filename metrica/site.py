"""The site as stored in the database: stores, cameras, lines and zones with their ids.

`metrica.config` validates what a person writes (YAML, API bodies); these Structs are what the database
returns and what the supervisor runs. A camera's ``source`` may hold credentials: `Camera.public_source`
is the only form of it that may leave the process (API responses, logs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from metrica.vision.counter import Line as VisionLine
from metrica.vision.source import redact_uri

__all__ = ["Camera", "Line", "Store", "Zone"]


class Store(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    timezone: str
    day_start_hour: int
    occupancy_limit: int | None = None


class Line(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    camera_id: int
    name: str
    segment: tuple[float, float, float, float]
    inside: Literal["positive", "negative"] = "positive"
    footfall: bool = True

    def vision_line(self) -> VisionLine:
        """The counter's line, directed so that its "in" (negative → positive side) enters the store."""
        x1, y1, x2, y2 = self.segment
        if self.inside == "negative":
            x1, y1, x2, y2 = x2, y2, x1, y1  # reversing the segment flips the sign of s(p)
        return VisionLine(self.name, x1, y1, x2, y2)


class Zone(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    camera_id: int
    name: str
    polygon: list[tuple[float, float]]


class Camera(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    store_id: int
    name: str
    source: str  # may hold credentials: use public_source outside the process
    fps: float
    model: str | None = None
    enabled: bool = True
    loop: bool = False
    lines: list[Line] = []
    zones: list[Zone] = []
    updated_at: datetime | None = None

    @property
    def public_source(self) -> str:
        return redact_uri(self.source)

    def runtime_key(self) -> tuple[object, ...]:
        """What the running actor depends on: a change of any of it restarts the actor."""
        return (self.source, self.fps, self.model, self.loop, tuple(self.lines), tuple(self.zones))
