"""The per-camera counting pipeline: frames → persons → tracks → crossings.

Shared by ``metrica count``, ``metrica eval``, ``metrica bench`` and the camera actors, so
all of them count exactly the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np

from metrica.vision.counter import Crossing, Line, LineCounter
from metrica.vision.detector import PersonDetector
from metrica.vision.source import Frame, VideoSource
from metrica.vision.tracker import PersonTracker, TrackerKind


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that decides how a camera is counted (defaults are the evaluated ones)."""

    model: str | None = None  # name or path; None → METRICA_MODEL or the bundled default
    fps: float | None = None  # sample the source down to this rate; None = every frame
    conf: float = 0.25  # detector confidence floor (low scores still help the tracker's second pass)
    imgsz: int | None = None  # detector input size; None = the model's own
    threads: int | None = None  # CPU threads for the detector; None = library default
    tracker: TrackerKind = "botsort"
    track_high: float = 0.3  # first-pass association score (BoT-SORT's track_high_thresh)
    track_new: float = 0.3  # a detection this sure may start a track (late starts miss crossings)
    match_thresh: float = 0.9
    lost_seconds: float = 3.0  # how long a lost track may be re-found
    band_ratio: float = 0.07  # hysteresis half-width, as a fraction of the box height (docs/ACCURACY.md)


@dataclass(slots=True)
class StageTimes:
    """Milliseconds spent per processed frame in each stage."""

    decode: list[float] = field(default_factory=list)
    detect: list[float] = field(default_factory=list)
    track: list[float] = field(default_factory=list)
    count: list[float] = field(default_factory=list)


class CountingPipeline:
    """Detector + tracker + line counter for one stream. Not thread-safe: one per camera."""

    def __init__(
        self,
        lines: Sequence[Line],
        config: PipelineConfig,
        *,
        source_fps: float | None = None,
        detector: PersonDetector | None = None,
    ) -> None:
        self.config = config
        self.detector = detector or PersonDetector(
            config.model, conf=config.conf, imgsz=config.imgsz, threads=config.threads
        )
        self.lines = list(lines)
        self.rate = config.fps if config.fps and (not source_fps or config.fps < source_fps) else source_fps
        self.tracker, self.counter = self._fresh_state()
        self._previous: tuple[int, float] | None = None  # (index, pts) of the last processed frame
        self.times = StageTimes()
        self.processed = 0

    def _fresh_state(self) -> tuple[PersonTracker, LineCounter]:
        config = self.config
        tracker = PersonTracker(
            config.tracker,
            fps=self.rate or 10.0,
            lost_seconds=config.lost_seconds,
            high_thresh=config.track_high,
            low_thresh=config.conf,
            new_track_thresh=config.track_new,
            match_thresh=config.match_thresh,
        )
        counter = LineCounter(
            self.lines,
            band_ratio=config.band_ratio,
            track_ttl=config.lost_seconds + 1.0,
        )
        return tracker, counter

    def reset(self, source_fps: float | None = None) -> None:
        """Start a new stream session (a reconnect): a fresh tracker (track ids restart) and counter.

        The detector (the loaded model) is kept. ``source_fps``, when given, is the new connection's rate.
        Stage times are cleared too, so a 24/7 actor does not accumulate them.
        """
        if source_fps is not None:
            fps = self.config.fps
            self.rate = fps if fps and (not source_fps or fps < source_fps) else source_fps
        self.tracker, self.counter = self._fresh_state()
        self._previous = None
        self.times = StageTimes()

    def process(self, frame: Frame) -> list[Crossing]:
        t0 = time.perf_counter()
        dets = self.detector.detect(frame.image)
        t1 = time.perf_counter()
        tracks = self.tracker.update(dets, frame.image, frame.pts)
        births = self.tracker.births(tracks, frame.pts)
        t2 = time.perf_counter()
        crossings: list[Crossing] = []
        if len(births) and self._previous is not None:
            # Where confirmed tracks were first seen, one processed frame ago.
            crossings += self.counter.update(*self._previous, births)
        crossings += self.counter.update(frame.index, frame.pts, tracks)
        self._previous = (frame.index, frame.pts)
        t3 = time.perf_counter()
        self.times.detect.append((t1 - t0) * 1e3)
        self.times.track.append((t2 - t1) * 1e3)
        self.times.count.append((t3 - t2) * 1e3)
        self.processed += 1
        return crossings

    def run(self, source: VideoSource, on_frame: Callable[[Frame], None] | None = None) -> Iterator[Crossing]:
        """Process every (sampled) frame of ``source``, yielding crossings as they are counted."""
        frames = iter(source)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            self.times.decode.append((time.perf_counter() - t0) * 1e3)
            yield from self.process(frame)
            if on_frame is not None:
                on_frame(frame)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0
