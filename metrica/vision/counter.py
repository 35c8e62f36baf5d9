"""Virtual-line counting: turns tracked boxes into IN/OUT crossings.

Geometry (see DESIGN.md): the anchor is the foot point (bottom centre of the box). The
signed side of a point for the directed segment P1→P2 is the cross product divided by the
segment length, in pixels. A track *commits* to a side once it is at least
``band_ratio × box height`` away from the line (hysteresis), and a crossing is a change of
committed side whose path met the line inside the segment at its last sign change. The path
between two observations is a straight segment, so a fast mover (or a low sampling rate)
that jumps the band between two frames still counts. Direction is "in" when the committed
side goes from negative to positive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import numpy as np

Direction = Literal["in", "out"]


class Line(msgspec.Struct, frozen=True):
    """A named counting segment in pixel coordinates of the source image."""

    name: str
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a line needs a name")
        if math.hypot(self.x2 - self.x1, self.y2 - self.y1) < 1.0:
            raise ValueError(f"line {self.name!r}: its two end points are the same")

    @classmethod
    def parse(cls, spec: str) -> Line:
        """Parse ``NAME=x1,y1,x2,y2`` (the ``--line`` syntax of the CLI)."""
        name, sep, coords = spec.partition("=")
        parts = coords.split(",")
        if not sep or not name.strip() or len(parts) != 4:
            raise ValueError(f"bad line {spec!r}: expected NAME=x1,y1,x2,y2")
        try:
            x1, y1, x2, y2 = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"bad line {spec!r}: coordinates must be numbers") from None
        return cls(name.strip(), x1, y1, x2, y2)


class Crossing(msgspec.Struct, frozen=True):
    """One counted crossing of a line by a track."""

    line: str
    direction: Direction
    track: int
    frame: int  # 1-based source frame index at which the new side was committed
    pts: float  # presentation time of that frame, seconds


@dataclass(slots=True)
class _LineState:
    committed: int = 0  # -1, +1, or 0 while the track has not left the band yet
    last_sign: int = 0  # sign of the side at the previous observation (0: no observation)
    inside_at_last_change: bool = False  # did the path meet the segment at the last sign change?


@dataclass(slots=True)
class _TrackState:
    x: float
    y: float
    last_pts: float
    lines: list[_LineState] = field(default_factory=list)


class LineCounter:
    """Counts crossings of several named lines by many tracks.

    Per-track state is dropped when a track ends (``end_track``) or has not been seen for
    ``track_ttl`` seconds, so memory stays bounded on a 24/7 stream.
    """

    def __init__(
        self,
        lines: Sequence[Line],
        band_ratio: float = 0.07,
        track_ttl: float = 10.0,
    ) -> None:
        names = [ln.name for ln in lines]
        if len(set(names)) != len(names):
            raise ValueError(f"line names must be unique, got {names}")
        self.lines = list(lines)
        self.band_ratio = band_ratio
        self.track_ttl = track_ttl
        self.counts: dict[str, dict[Direction, int]] = {ln.name: {"in": 0, "out": 0} for ln in self.lines}
        self._tracks: dict[int, _TrackState] = {}
        # Precomputed per line: origin, unit direction, length.
        self._geom = []
        for ln in self.lines:
            dx, dy = ln.x2 - ln.x1, ln.y2 - ln.y1
            length = math.hypot(dx, dy)
            self._geom.append((ln.x1, ln.y1, dx / length, dy / length, length))

    @property
    def active_tracks(self) -> int:
        return len(self._tracks)

    def update(self, frame: int, pts: float, tracks: np.ndarray) -> list[Crossing]:
        """Feed the tracks of one (sampled) frame: rows of ``x1, y1, x2, y2, track_id, ...``."""
        crossings: list[Crossing] = []
        for row in tracks:
            x1, y1, x2, y2, tid = float(row[0]), float(row[1]), float(row[2]), float(row[3]), int(row[4])
            crossings.extend(self.observe(tid, (x1 + x2) / 2.0, y2, y2 - y1, frame, pts))
        self.prune(pts)
        return crossings

    def observe(
        self, tid: int, fx: float, fy: float, height: float, frame: int, pts: float
    ) -> list[Crossing]:
        """One observation of a track's foot point ``(fx, fy)`` with its box height."""
        state = self._tracks.get(tid)
        if state is None:
            state = _TrackState(fx, fy, pts, [_LineState() for _ in self.lines])
            self._tracks[tid] = state
            px, py = fx, fy
        else:
            px, py = state.x, state.y
        band = self.band_ratio * height
        out: list[Crossing] = []
        for (ox, oy, ux, uy, length), ls, line in zip(self._geom, state.lines, self.lines, strict=True):
            s = ux * (fy - oy) - uy * (fx - ox)  # signed distance, pixels
            sign = 1 if s > 0 else -1
            if ls.last_sign and sign != ls.last_sign:
                # The path from the previous foot point crossed the infinite line: where?
                s_prev = ux * (py - oy) - uy * (px - ox)
                t = s_prev / (s_prev - s) if s_prev != s else 0.0
                qx, qy = px + t * (fx - px), py + t * (fy - py)
                along = (qx - ox) * ux + (qy - oy) * uy
                ls.inside_at_last_change = 0.0 <= along <= length
            ls.last_sign = sign
            if abs(s) >= band and sign != ls.committed:
                if ls.committed and ls.inside_at_last_change:
                    direction: Direction = "in" if sign > 0 else "out"
                    self.counts[line.name][direction] += 1
                    out.append(Crossing(line.name, direction, tid, frame, pts))
                ls.committed = sign
        state.x, state.y, state.last_pts = fx, fy, pts
        return out

    def end_track(self, tid: int) -> None:
        self._tracks.pop(tid, None)

    def end_tracks(self, tids: Iterable[int]) -> None:
        for tid in tids:
            self._tracks.pop(tid, None)

    def prune(self, pts: float) -> None:
        """Forget tracks not seen for ``track_ttl`` seconds."""
        horizon = pts - self.track_ttl
        stale = [tid for tid, st in self._tracks.items() if st.last_pts < horizon]
        for tid in stale:
            del self._tracks[tid]
