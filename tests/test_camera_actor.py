"""The camera actor's child process on real footage with the real model, and its failures.

The child must count exactly what `CountingPipeline` counts over the same file at the same rate (the
same lines, the same config), with deterministic ids; a broken source or model must give a clear,
credential-free error and the supervisor a failed/backing-off state.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from metrica.actors.camera import (
    EXIT_MODEL,
    EXIT_SOURCE,
    ActorOptions,
    CameraProcess,
    ChildError,
    Ended,
    Heartbeat,
    Hello,
    Message,
)
from metrica.actors.supervisor import Supervisor
from metrica.events import CameraStatus, CrossingEvent, Event, crossing_id
from metrica.site import Camera, Line
from metrica.vision.counter import Crossing
from metrica.vision.counter import Line as VisionLine
from metrica.vision.pipeline import CountingPipeline, PipelineConfig
from metrica.vision.source import VideoSource
from tests.gst_rtsp_server import free_port

PASSWORD = "s3cr3t-Pa55"

# KITTI-17's lines (lines.json), one of them with its inside flipped so the actor's direction mapping
# is checked against the counter's raw direction.
KITTI_LINES = [
    Line(id=11, camera_id=1, name="h333", segment=(61, 333, 1163, 333), footfall=True),
    Line(id=12, camera_id=1, name="v612", segment=(612, 18, 612, 366), inside="negative", footfall=False),
]


async def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


def reference_crossings(video: Path, lines: list[Line], config: PipelineConfig) -> list[Crossing]:
    """What `metrica count --line NAME=x1,y1,x2,y2` counts: the pipeline over the file at the same rate,
    with the segments as written (not oriented by ``inside``)."""
    raw = [VisionLine(ln.name, *ln.segment) for ln in lines]
    with VideoSource(str(video), target_fps=config.fps) as source:
        pipeline = CountingPipeline(raw, config, source_fps=source.native_fps)
        return list(pipeline.run(source))


async def run_child(
    camera: Camera, options: ActorOptions, timeout: float = 240.0
) -> tuple[list[Message], int | None]:
    messages: list[Message] = []
    proc = CameraProcess(camera, options, messages.append)
    await proc.start()
    try:
        await asyncio.wait_for(proc.exited.wait(), timeout)
    finally:
        code = await proc.kill()
        proc.close()
    return messages, code


@pytest.mark.slow
async def test_child_counts_exactly_like_the_pipeline(kitti: Path, yolo11n: Path) -> None:
    fps = 5.0  # KITTI-17 is 10 fps: the child samples it down like `metrica count --fps 5`
    config = PipelineConfig(model=str(yolo11n), fps=fps, threads=1)
    camera = Camera(
        id=1, store_id=7, name="kitti", source=str(kitti / "video.mp4"), fps=fps, lines=KITTI_LINES
    )
    expected = await asyncio.to_thread(reference_crossings, kitti / "video.mp4", KITTI_LINES, config)
    assert len(expected) >= 6, "the reference should see people crossing both lines"

    t0 = time.monotonic()
    messages, code = await run_child(camera, ActorOptions(default_model=str(yolo11n)))
    elapsed = time.monotonic() - t0

    assert code == 0, messages[-3:]
    hello = next(m for m in messages if isinstance(m, Hello))
    assert isinstance(messages[-1], Ended) and messages[-1].frames == 73  # 145 frames at 10 → 5 fps
    events = [m for m in messages if isinstance(m, CrossingEvent)]
    session = f"{hello.token}.0"
    # Same crossings (line, raw direction, track, frame) as the pipeline, in the same order.
    flip = {"in": "out", "out": "in"}
    got = [(e.line, e.direction if e.line == "h333" else flip[e.direction], e.track, e.frame) for e in events]
    assert got == [(c.line, c.direction, c.track, c.frame) for c in expected]
    # Deterministic ids: the n-th crossing of a line by a track in this session.
    seen: Counter[tuple[str, int]] = Counter()
    for e in events:
        assert e.id == crossing_id(1, session, e.line, e.track, seen[(e.line, e.track)])
        seen[(e.line, e.track)] += 1
        assert e.session == session and e.camera_id == 1 and e.store_id == 7
        assert (e.line_id, e.footfall) == ((11, True) if e.line == "h333" else (12, False))
    assert len({e.id for e in events}) == len(events)
    # Timestamps are the frames' wall clock: in order, within the run.
    stamps = [e.ts.timestamp() for e in events]
    assert stamps == sorted(stamps) and time.time() - elapsed - 5 < stamps[0] <= stamps[-1] < time.time() + 30
    beats = [m for m in messages if isinstance(m, Heartbeat)]
    assert beats and any(b.connected and b.frames > 0 for b in beats)
    print(f"child startup (spawn → model ready): {hello.startup:.2f} s; whole run {elapsed:.1f} s")


@pytest.mark.slow
async def test_looped_file_is_paced_at_real_time(kitti: Path, yolo11n: Path) -> None:
    camera = Camera(id=2, store_id=1, name="demo", source=str(kitti / "video.mp4"), fps=4.0, loop=True)
    beats: list[tuple[float, Heartbeat]] = []

    def on_message(m: Message) -> None:
        if isinstance(m, Heartbeat) and m.frames > 0:
            beats.append((time.monotonic(), m))

    proc = CameraProcess(camera, ActorOptions(default_model=str(yolo11n)), on_message)
    await proc.start()
    try:
        await wait_until(lambda: len(beats) >= 7, 120, "7 heartbeats with frames")
    finally:
        await proc.kill()
        proc.close()
    (t1, b1), (t2, b2) = beats[1], beats[-1]
    rate = (b2.frames - b1.frames) / (t2 - t1)
    assert 2.5 < rate < 5.0, f"a looped 4 fps demo camera processed {rate:.2f} frames/s"


async def test_missing_file_and_model_give_clear_errors(tmp_path: Path, kitti: Path, yolo11n: Path) -> None:
    missing = tmp_path / "nope.mp4"
    cam = Camera(id=3, store_id=1, name="gone", source=str(missing), fps=5)
    messages, code = await run_child(cam, ActorOptions(default_model=str(yolo11n)))
    err = next(m for m in messages if isinstance(m, ChildError))
    assert code == EXIT_SOURCE
    assert (err.kind, err.permanent) == ("source", True)
    assert err.message == f"{missing}: no such file"

    video = str(kitti / "video.mp4")
    cam = Camera(id=3, store_id=1, name="gone", source=video, fps=5, model=str(tmp_path / "no.onnx"))
    messages, code = await run_child(cam, ActorOptions())
    err = next(m for m in messages if isinstance(m, ChildError))
    assert code == EXIT_MODEL
    assert (err.kind, err.permanent) == ("model", True)
    assert "model file not found" in err.message and "no.onnx" in err.message


async def test_refused_rtsp_backs_off_without_leaking_credentials(
    yolo11n: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    source = f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam?password={PASSWORD}"
    cam = Camera(id=4, store_id=1, name="door", source=source, fps=5)
    events: list[Event] = []

    async def sink(ev: Event) -> None:
        events.append(ev)

    sup = Supervisor(
        sink, default_model=str(yolo11n), backoff_initial=5.0, backoff_max=5.0, source_reconnects=1
    )
    with capture_logs() as logs:
        await sup.start([cam])
        try:
            await wait_until(lambda: sup.status()[0].state == "backing_off", 120, "backing_off")
            info = sup.status()[0]
        finally:
            await sup.stop()
    assert info.last_error is not None
    assert f"rtsp://***@127.0.0.1:{port}/cam" in info.last_error
    assert "cannot open" in info.last_error and "Connection refused" in info.last_error
    states = [e.state for e in events if isinstance(e, CameraStatus)]
    # (it may report "reconnecting" in between, if a heartbeat falls between its two attempts)
    assert states[0] == "starting" and "backing_off" in states and states[-1] == "stopped", states
    out, err = capfd.readouterr()
    everything = repr(logs) + repr(events) + repr(sup.status()) + out + err
    assert "***@127.0.0.1" in everything
    assert PASSWORD not in everything
    assert any(log["event"] == "actor.exited" and log.get("exit_code") == EXIT_SOURCE for log in logs)
