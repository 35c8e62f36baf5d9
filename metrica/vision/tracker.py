"""Multi-object tracking of person boxes with boxmot (BoT-SORT by default, ByteTrack optional).

Both run on motion and box overlap only by default: appearance ReID costs a second network
per box and camera-motion compensation is pointless for a fixed CCTV camera. Frame
timestamps are passed through so the Kalman filter predicts over the real time between
sampled frames.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np

TrackerKind = Literal["botsort", "bytetrack"]
TRACKERS: tuple[TrackerKind, ...] = ("botsort", "bytetrack")


class PersonTracker:
    """Gives person boxes stable temporary ids. ``update`` returns rows ``x1, y1, x2, y2, id, conf``."""

    def __init__(
        self,
        kind: TrackerKind = "botsort",
        *,
        fps: float = 10.0,
        lost_seconds: float = 3.0,
        high_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float = 0.6,
        match_thresh: float = 0.8,
        min_hits: int = 2,
        reid: bool = False,
        cmc: bool = False,
        **extra: Any,
    ) -> None:
        import boxmot.utils  # configures its logger at import: quieten it afterwards

        boxmot.utils.logger.setLevel(logging.WARNING)
        if kind not in TRACKERS:
            raise ValueError(f"unknown tracker {kind!r}: choose one of {', '.join(TRACKERS)}")
        self.kind = kind
        self._known: dict[int, float] = {}  # track id → last pts it was output
        if not (fps > 0 and lost_seconds > 0):
            raise ValueError(f"fps and lost_seconds must be positive, got {fps!r} and {lost_seconds!r}")
        self.fps = fps
        self.lost_seconds = lost_seconds
        # A person hidden for up to lost_seconds is re-found under the same id, at any sampled rate.
        # boxmot counts frames and takes whole frame rates only (int(frame_rate / 30 * track_buffer));
        # with frame_rate=30 its buffer is exactly track_buffer frames, and a track hidden for
        # buffer + 1 frames is still re-found (it is removed only after that frame's matching).
        self.max_lost_frames = max(1, math.floor(lost_seconds * fps + 1e-9) - 1)
        common: dict[str, Any] = {
            "frame_rate": 30,
            "track_buffer": self.max_lost_frames,
            "min_hits": min_hits,
        }
        if kind == "botsort":
            from boxmot import BotSort

            self._tracker: Any = BotSort(
                track_high_thresh=high_thresh,
                track_low_thresh=low_thresh,
                new_track_thresh=new_track_thresh,
                match_thresh=match_thresh,
                use_embeddings=reid,
                use_cmc=cmc,
                variable_dt=True,
                **common,
                **extra,
            )
        else:
            from boxmot import ByteTrack

            self._tracker = ByteTrack(
                track_thresh=high_thresh,
                min_conf=low_thresh,
                match_thresh=match_thresh,
                variable_dt=True,
                **common,
                **extra,
            )

    def births(self, tracks: np.ndarray, pts: float) -> np.ndarray:
        """First observed boxes of the tracks in ``tracks`` that are output for the first time.

        A track is only output once confirmed, one sampled frame after the detection that
        started it; that first box tells the counter which side the person came from, which
        matters for people who appear close to the line (out of an occlusion, at low fps).
        Rows are ``x1, y1, x2, y2, id`` of the previous processed frame.
        """
        rows = []
        fresh = [int(t[4]) for t in tracks if int(t[4]) not in self._known]
        for tid in (int(t[4]) for t in tracks):
            self._known[tid] = pts
        if fresh:
            by_id = {int(t.id): t for t in self._tracker.active_tracks}
            for tid in fresh:
                track = by_id.get(tid)
                history = getattr(track, "history_observations", None)
                if history is not None and len(history) >= 2:
                    rows.append([*history[0][:4], tid])
        horizon = pts - self.lost_seconds - 1.0
        if len(self._known) > 64:
            self._known = {k: v for k, v in self._known.items() if v >= horizon}
        return np.asarray(rows, dtype=np.float32).reshape(-1, 5)

    def update(self, detections: np.ndarray, image: np.ndarray | None, pts: float) -> np.ndarray:
        """Advance by one (sampled) frame. ``detections``: ``(N, 6)`` rows ``x1, y1, x2, y2, conf, cls``."""
        if detections.size == 0:
            detections = np.empty((0, 6), dtype=np.float32)
        out = self._tracker.update(detections, image, timestamp_s=pts)
        if out.size == 0:
            return np.empty((0, 6), dtype=np.float32)
        # boxmot rows: x1, y1, x2, y2, id, conf, cls, det_index
        return np.ascontiguousarray(out[:, :6], dtype=np.float32)
