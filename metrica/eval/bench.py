"""``metrica bench``: what one camera pipeline costs here, stage by stage, and how many fit."""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable

import msgspec
import psutil

from metrica.vision.counter import Line
from metrica.vision.pipeline import CountingPipeline, PipelineConfig, StageTimes, percentile
from metrica.vision.source import VideoSource


class StageCost(msgspec.Struct):
    median_ms: float
    p95_ms: float


class BenchResult(msgspec.Struct):
    source: str
    model: str
    frames: int  # processed (sampled) frames
    seconds: float
    fps: float  # processed frames per wall-clock second, end to end
    cpu_percent: float  # process CPU time / wall time (100 = one core)
    peak_rss_mb: float
    stages: dict[str, StageCost]


def _middle_line(width: int, height: int) -> Line:
    return Line("bench", width * 0.1, height * 0.5, width * 0.9, height * 0.5)


def bench_once(
    source_uri: str,
    config: PipelineConfig,
    max_frames: int | None = None,
    warmup: int = 3,
    on_frame: Callable[[], None] | None = None,
) -> BenchResult:
    proc = psutil.Process()
    with VideoSource(source_uri, target_fps=config.fps, loop=max_frames is not None) as source:
        pipeline = CountingPipeline(
            [_middle_line(source.width, source.height)], config, source_fps=source.native_fps
        )
        frames = iter(source)
        # Warm-up frames load the model and fill caches; they are not timed.
        for frame in (next(frames, None) for _ in range(warmup)):
            if frame is not None:
                pipeline.process(frame)
        pipeline.times = StageTimes()
        cpu0 = proc.cpu_times()
        t0 = time.perf_counter()
        done = 0
        while max_frames is None or done < max_frames:
            d0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            pipeline.times.decode.append((time.perf_counter() - d0) * 1e3)
            pipeline.process(frame)
            done += 1
            if on_frame:
                on_frame()
        wall = time.perf_counter() - t0
        cpu1 = proc.cpu_times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    times = pipeline.times
    stages = {
        name: StageCost(round(percentile(v, 50), 2), round(percentile(v, 95), 2))
        for name, v in (
            ("decode", times.decode),
            ("detect", times.detect),
            ("track", times.track),
            ("count", times.count),
        )
    }
    return BenchResult(
        source=source_uri,
        model=pipeline.detector.model_name,
        frames=done,
        seconds=round(wall, 3),
        fps=round(done / wall, 2) if wall else 0.0,
        cpu_percent=round(100 * cpu / wall, 1) if wall else 0.0,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        stages=stages,
    )


def _bench_worker(args: tuple[str, PipelineConfig, int | None]) -> BenchResult:
    return bench_once(*args)


def bench_cameras(
    source_uri: str, config: PipelineConfig, cameras: int, max_frames: int | None
) -> list[BenchResult]:
    """Run ``cameras`` pipelines at once, each in its own process as the camera actors do."""
    ctx = multiprocessing.get_context("spawn")  # torch and ONNX Runtime do not survive fork
    with ctx.Pool(cameras) as pool:
        return pool.map(_bench_worker, [(source_uri, config, max_frames)] * cameras)
