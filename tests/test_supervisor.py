"""The supervisor with real camera processes: crash and hang recovery, manual restarts, config changes.

Cameras are real: KITTI-17 looped at real time (a demo camera) or served over RTSP by GStreamer, with
the real yolo11n model; rates are low (2 fps) to keep the CPU cost small.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from metrica.actors.supervisor import Supervisor
from metrica.events import ActorInfo, ActorState, CameraStatus, CrossingEvent, Event
from metrica.site import Camera, Line
from tests.gst_rtsp_server import RtspServer, free_port, system_gst_available

pytestmark = pytest.mark.slow


class Recorder:
    """The sink: keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def states(self, camera_id: int, since: float = 0.0) -> list[ActorState]:
        return [
            e.state
            for e in self.events
            if isinstance(e, CameraStatus) and e.camera_id == camera_id and e.ts.timestamp() >= since
        ]


async def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


def info(sup: Supervisor, camera_id: int) -> ActorInfo:
    return next(a for a in sup.status() if a.camera_id == camera_id)


def running(sup: Supervisor, *ids: int) -> Callable[[], bool]:
    return lambda: all(info(sup, i).state == "running" for i in ids)


def line(camera_id: int, y: float = 333.0) -> Line:
    return Line(id=camera_id * 10, camera_id=camera_id, name="h", segment=(61, y, 1163, y))


def demo_camera(kitti: Path, camera_id: int, **kw: object) -> Camera:
    fields: dict[str, object] = {
        "id": camera_id,
        "store_id": 1,
        "name": f"cam{camera_id}",
        "source": str(kitti / "video.mp4"),
        "fps": 2.0,
        "loop": True,
        "lines": [line(camera_id)],
    }
    fields.update(kw)
    return Camera(**fields)  # type: ignore[arg-type]


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_kill9_restarts_only_that_camera_and_restart_is_targeted(kitti: Path, yolo11n: Path) -> None:
    rec = Recorder()
    sup = Supervisor(
        rec, default_model=str(yolo11n), backoff_initial=0.5, backoff_max=2.0, status_interval=1.0
    )
    await sup.start([demo_camera(kitti, 1), demo_camera(kitti, 2)])
    try:
        await wait_until(running(sup, 1, 2), 180, "both cameras running")
        pid1, pid2 = info(sup, 1).pid, info(sup, 2).pid
        assert pid1 and pid2 and pid1 != pid2 and alive(pid1) and alive(pid2)
        frame2 = info(sup, 2).last_frame_at
        assert frame2 is not None

        killed_at = time.time()
        with capture_logs() as logs:
            os.kill(pid1, signal.SIGKILL)
            await wait_until(
                lambda: info(sup, 1).state == "running" and info(sup, 1).pid not in (None, pid1),
                180,
                "camera 1 running again in a new process",
            )
        new1 = info(sup, 1)
        assert new1.restarts == 1 and alive(new1.pid) and not alive(pid1)
        exited = [x for x in logs if x["event"] == "actor.exited" and x["camera_id"] == 1]
        assert exited and exited[0]["signal"] == "SIGKILL"
        restarting = [x for x in logs if x["event"] == "actor.restarting"]
        assert [x["camera_id"] for x in restarting] == [1] and restarting[0]["backoff"] == 0.5
        assert rec.states(1, since=killed_at)[:3] == ["backing_off", "starting", "running"]
        # Camera 2 never noticed: same process, no restart, still reporting and counting frames.
        other = info(sup, 2)
        assert (other.pid, other.restarts, other.state) == (pid2, 0, "running")
        assert other.last_frame_at is not None and other.last_frame_at > frame2
        assert rec.states(2, since=killed_at).count("running") >= 2  # periodic reports meanwhile

        # An admin's restart: exactly that actor gets a new process, at once.
        await sup.restart(2)
        assert info(sup, 2).pid not in (None, pid2) and info(sup, 2).restarts == 1
        assert not alive(pid2)
        assert (info(sup, 1).pid, info(sup, 1).restarts) == (new1.pid, 1)
        await wait_until(running(sup, 2), 180, "camera 2 running after its restart")
        with pytest.raises(KeyError):
            await sup.restart(99)
    finally:
        await sup.stop()
    pids = [pid1, pid2, new1.pid]
    assert all(a.state == "stopped" and a.pid is None for a in sup.status())
    assert not any(alive(p) for p in pids)


async def test_apply_restarts_changed_stops_disabled_starts_new(kitti: Path, yolo11n: Path) -> None:
    rec = Recorder()
    sup = Supervisor(rec, default_model=str(yolo11n), backoff_initial=0.5, backoff_max=2.0)
    cam1, cam2 = demo_camera(kitti, 1), demo_camera(kitti, 2)
    await sup.start([cam1, cam2])
    try:
        await wait_until(running(sup, 1, 2), 180, "both cameras running")
        pid1, pid2 = info(sup, 1).pid, info(sup, 2).pid

        # A moved line restarts camera 1 only.
        cam1b = demo_camera(kitti, 1, lines=[line(1, y=300.0)])
        await sup.apply([cam1b, cam2])
        assert info(sup, 1).pid not in (None, pid1) and info(sup, 1).restarts == 1
        assert (info(sup, 2).pid, info(sup, 2).restarts) == (pid2, 0)
        await wait_until(running(sup, 1), 180, "camera 1 running with its new line")
        pid1b = info(sup, 1).pid

        # Disabling camera 2 stops it; a new camera 3 starts; camera 1 is untouched.
        cam2off = demo_camera(kitti, 2, enabled=False)
        await sup.apply([cam1b, cam2off, demo_camera(kitti, 3)])
        assert info(sup, 2).state == "stopped" and info(sup, 2).pid is None and not alive(pid2)
        assert rec.states(2)[-1] == "stopped"
        assert info(sup, 1).pid == pid1b
        await wait_until(running(sup, 3), 180, "new camera 3 running")
        with pytest.raises(KeyError):
            await sup.restart(2)  # a disabled camera has no actor to restart

        # A rename needs no restart; cameras left out are removed.
        pid3 = info(sup, 3).pid
        await sup.apply([demo_camera(kitti, 1, name="entrance", lines=[line(1, y=300.0)])])
        assert [a.camera_id for a in sup.status()] == [1]
        assert (info(sup, 1).pid, info(sup, 1).name) == (pid1b, "entrance")
        assert not alive(pid3) and rec.states(3)[-1] == "stopped"
    finally:
        await sup.stop()


@pytest.mark.skipif(
    not system_gst_available(), reason="GStreamer RTSP server (Debian packages) not installed"
)
async def test_stuck_actor_is_killed_and_restarted(kitti: Path, yolo11n: Path) -> None:
    rec = Recorder()
    sup = Supervisor(rec, default_model=str(yolo11n), stuck_seconds=4.0, backoff_initial=0.5, backoff_max=1.0)
    with RtspServer(kitti / "video.mp4", loop=True) as server:
        cam = Camera(id=5, store_id=1, name="frozen", source=server.url, fps=2.0, lines=[line(5)])
        await sup.start([cam])
        try:
            await wait_until(running(sup, 5), 180, "the RTSP camera running")
            pid = info(sup, 5).pid
            with capture_logs() as logs:
                server.pause()  # the camera freezes: its TCP connection stays open, nothing comes
                try:
                    await wait_until(lambda: info(sup, 5).restarts >= 1, 60, "a restart of the stuck actor")
                finally:
                    server.resume()
            stuck = [x for x in logs if x["event"] == "actor.stuck"]
            assert stuck and stuck[0]["pid"] == pid and stuck[0]["idle_s"] >= 4.0  # rounded to 0.1 s
            assert not alive(pid)
            await wait_until(running(sup, 5), 120, "running again once the camera answers")
            assert info(sup, 5).pid != pid
            assert "backing_off" in rec.states(5)
        finally:
            await sup.stop()


async def test_backoff_doubles_up_to_its_cap_and_bad_model_is_failed(kitti: Path, yolo11n: Path) -> None:
    rec = Recorder()
    sup = Supervisor(
        rec, default_model=str(yolo11n), backoff_initial=0.2, backoff_max=0.8, source_reconnects=0
    )
    refused = Camera(id=6, store_id=1, name="refused", source=f"rtsp://127.0.0.1:{free_port()}/cam", fps=2.0)
    no_model = demo_camera(kitti, 7, model="/nonexistent/model.onnx")
    with capture_logs() as logs:
        await sup.start([refused, no_model])
        try:

            def restarting(cid: int) -> list[float]:
                return [
                    x["backoff"] for x in logs if x["event"] == "actor.restarting" and x["camera_id"] == cid
                ]

            await wait_until(lambda: len(restarting(6)) >= 5, 240, "five restarts of the refused camera")
            await wait_until(lambda: len(restarting(7)) >= 2, 120, "two restarts of the bad-model camera")
            bad = info(sup, 7)
        finally:
            await sup.stop()
    assert restarting(6)[:5] == [0.2, 0.4, 0.8, 0.8, 0.8]
    assert rec.states(6).count("backing_off") >= 5 and "failed" not in rec.states(6)
    assert info(sup, 6).restarts >= 4
    # A missing model will not fix itself: "failed", retried at the longest backoff.
    assert restarting(7)[:2] == [0.8, 0.8]
    assert bad.state == "failed" or "failed" in rec.states(7)
    assert bad.last_error is not None and "model file not found: /nonexistent/model.onnx" in bad.last_error
    assert not any(isinstance(e, CrossingEvent) for e in rec.events)
