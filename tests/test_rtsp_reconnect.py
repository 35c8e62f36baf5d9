"""The issue's acceptance test: a camera that drops off the network mid-stream and comes back.

A real GStreamer RTSP server plays PETS09-S2L1 (7 fps, 113 s) as a live camera, with basic auth. The
actor counts it at 7 fps. Mid-stream the server is killed (SIGKILL: no goodbye) and restarted a few
seconds later where the footage would be by then, so the camera truly misses that window. The actor
must reconnect by itself (same process; reconnecting → running), and the crossings it delivered must be
the offline reference (`CountingPipeline` over the file at the same rate) minus only the crossings in
the windows the camera could not see (before its first frame and during the outage, with a 2 s band at
the edges where a track was cut), each counted once.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from metrica.actors.supervisor import Supervisor
from metrica.events import ActorInfo, CameraStatus, CrossingEvent, Event
from metrica.site import Camera, Line
from metrica.vision.pipeline import CountingPipeline, PipelineConfig
from metrica.vision.source import VideoSource
from tests.gst_rtsp_server import RtspServer, system_gst_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not system_gst_available(), reason="GStreamer RTSP server (Debian packages) not installed"
    ),
]

FPS = 7.0
USER, PASSWORD = "installer", "Pa55-w0rd!x"
EDGE = 2.0  # seconds around the edges of an unseen window where a cut track may count differently
MATCH = 1.5  # seconds between a live crossing and its reference (stream latency, timestamp jitter)
KILL_AT = 45.0  # footage seconds when the camera drops off
OUTAGE = 5.0  # seconds before it is back


def pets_lines(pets: Path) -> list[Line]:
    spec = json.loads((pets / "lines.json").read_text())["lines"]
    return [
        Line(id=i + 1, camera_id=1, name=name, segment=tuple(s["segment"]))  # type: ignore[arg-type]
        for i, (name, s) in enumerate(spec.items())
    ]


def reference(video: Path, lines: list[Line], config: PipelineConfig) -> list[tuple[str, str, float]]:
    """(line, direction, footage seconds) of every crossing counted offline over the whole file."""
    with VideoSource(str(video), target_fps=config.fps) as source:
        pipeline = CountingPipeline([ln.vision_line() for ln in lines], config, source_fps=source.native_fps)
        return [(c.line, c.direction, c.pts) for c in pipeline.run(source)]


async def wait_for(pred: object, timeout: float, what: str) -> None:
    assert callable(pred)
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


def match(
    live: list[tuple[str, str, float]], ref: list[tuple[str, str, float]]
) -> tuple[dict[int, int], list[int]]:
    """One-to-one matching of live to reference crossings (same line and direction, within MATCH s).

    Earliest-first greedy per (line, direction): optimal for one-dimensional tolerance matching.
    Returns {live index: reference index} and the live indices left unmatched."""
    pairs: dict[int, int] = {}
    free: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j in sorted(range(len(ref)), key=lambda j: ref[j][2]):
        free[ref[j][:2]].append(j)
    unmatched = []
    for i in sorted(range(len(live)), key=lambda i: live[i][2]):
        cands = free[live[i][:2]]
        # drop references too early to match this or any later live crossing
        while cands and ref[cands[0]][2] < live[i][2] - MATCH:
            cands.pop(0)
        if cands and abs(ref[cands[0]][2] - live[i][2]) <= MATCH:
            pairs[i] = cands.pop(0)
        else:
            unmatched.append(i)
    return pairs, unmatched


async def test_camera_reconnects_by_itself_and_loses_only_the_outage(
    pets: Path, yolo11n: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    video = pets / "video.mp4"
    lines = pets_lines(pets)
    config = PipelineConfig(model=str(yolo11n), fps=FPS, threads=1)
    ref = await asyncio.to_thread(reference, video, lines, config)
    duration = 795 / FPS
    assert len(ref) > 40, "the reference sees the people of PETS09-S2L1 crossing"

    events: list[Event] = []

    async def sink(ev: Event) -> None:
        events.append(ev)

    snapshots: list[tuple[float, ActorInfo]] = []
    sup = Supervisor(sink, default_model=str(yolo11n), status_interval=2.0)
    server1 = RtspServer(video, user=USER, password=PASSWORD).start()
    server2: RtspServer | None = None
    with capture_logs() as logs:
        try:
            camera = Camera(id=1, store_id=3, name="pets", source=server1.url, fps=FPS, lines=lines)
            await sup.start([camera])

            def now_info() -> ActorInfo:
                info = sup.status()[0]
                snapshots.append((time.time(), info))
                return info

            await wait_for(lambda: now_info().last_frame_at is not None, 120, "the first frame")
            pid = snapshots[-1][1].pid

            await wait_for(lambda: server1.footage_time(time.time()) >= KILL_AT, 120, "mid-stream")
            server1.kill()
            t_kill = time.time()
            await wait_for(lambda: now_info().state == "reconnecting", 30, "state reconnecting")
            await asyncio.sleep(max(0.0, OUTAGE - (time.time() - t_kill)))
            server2 = RtspServer(
                video,
                port=server1.port,
                user=USER,
                password=PASSWORD,
                offset=server1.footage_time(time.time()),
            ).start()

            def resumed() -> bool:
                info = now_info()
                return (
                    info.state == "running"
                    and info.last_frame_at is not None
                    and info.last_frame_at.timestamp() > t_kill
                )

            await wait_for(resumed, 60, "running again after the outage")
            resumed_info = snapshots[-1][1]
            assert (resumed_info.pid, resumed_info.restarts) == (pid, 0), (
                "reconnected inside the same process"
            )

            srv2 = server2
            await wait_for(
                lambda: srv2.footage_time(time.time()) > duration + 1.0, 120, "the end of the footage"
            )
            # let the actor finish what it has received: until no new frame for 3 s
            last = (now_info().last_frame_at, time.monotonic())
            while time.monotonic() - last[1] < 3.0:
                await asyncio.sleep(0.5)
                if (lf := now_info().last_frame_at) != last[0]:
                    last = (lf, time.monotonic())
        finally:
            await sup.stop()
            server1.stop()
            if server2 is not None:
                server2.stop()
    assert server2 is not None

    # --- the state went running → reconnecting → running, in one process
    states = [e.state for e in events if isinstance(e, CameraStatus)]
    flow = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert flow[:5] == ["starting", "running", "reconnecting", "running", "stopped"] or flow[:4] == [
        "starting",
        "running",
        "reconnecting",
        "running",
    ], flow
    assert not [x for x in logs if x["event"] in ("actor.restarting", "actor.stuck")]

    # --- crossings: two stream sessions of one process, each on its server's footage clock
    out, err = capfd.readouterr()
    crossings = [e for e in events if isinstance(e, CrossingEvent)]
    assert len({e.id for e in crossings}) == len(crossings), "an event id was delivered twice"
    sessions = sorted({e.session for e in crossings}, key=lambda s: int(s.rsplit(".", 1)[1]))
    assert len(sessions) == 2 and len({s.rsplit(".", 1)[0] for s in sessions}) == 1, sessions
    clock = {sessions[0]: server1, sessions[1]: server2}
    # Footage time from frame numbers, which are exact: the wall clock of a session's first seconds is
    # the local receive time (until the camera's first RTCP sender report), late by up to the source's
    # 2 s resync bound, and the actor's status reports its last frame only every status_interval. Each
    # session's offset is the median of (wall-clock footage time - frame / FPS) over its crossings.
    by_wall = {e.id: clock[e.session].footage_time(e.ts.timestamp()) for e in crossings}
    offset = {
        s: statistics.median(by_wall[e.id] - e.frame / FPS for e in crossings if e.session == s)
        for s in sessions
    }
    live = [(e.line, e.direction, offset[e.session] + e.frame / FPS) for e in crossings]
    drift = max(abs(by_wall[e.id] - (offset[e.session] + e.frame / FPS)) for e in crossings)
    # the first frame of each connection, from the actor's log (it runs in its own process)
    started = {
        line["session"]: line["frame"]
        for line in (json.loads(x) for x in err.splitlines() if x.startswith("{"))
        if line.get("event") == "actor.session_started"
    }
    assert sorted(started) == [0, 1], started
    ft_first = offset[sessions[0]] + started[0] / FPS
    ft_kill = server1.footage_time(t_kill)  # the server could not send a frame after this
    ft_resume = offset[sessions[1]] + started[1] / FPS
    assert ft_first < ft_kill < ft_resume and ft_resume >= server2.offset - 0.5
    seen = [(ft_first, ft_kill), (ft_resume, duration)]

    def core(t: float) -> bool:  # well inside what the camera saw
        return any(a + EDGE <= t <= b - EDGE for a, b in seen)

    def unseen(t: float) -> bool:  # well inside what it could not see
        return t < ft_first - EDGE or ft_kill + EDGE < t < ft_resume - EDGE

    pairs, unmatched = match(live, ref)
    matched_refs = set(pairs.values())
    missed = [ref[j] for j in range(len(ref)) if core(ref[j][2]) and j not in matched_refs]
    extra = [live[i] for i in unmatched if core(live[i][2])]
    ghosts = [x for x in live if unseen(x[2])]
    with capfd.disabled():
        print(
            f"\nreference {len(ref)} crossings; live {len(live)} in {len(sessions)} sessions; "
            f"seen {ft_first:.1f}-{ft_kill:.1f} s and {ft_resume:.1f}-{duration:.1f} s of footage; "
            f"reference crossings in the seen core {sum(core(r[2]) for r in ref)}, matched {len(pairs)}; "
            f"wall clock vs frame clock at most {drift:.2f} s apart"
        )
    assert not missed, f"crossings the camera saw but did not deliver: {missed}"
    assert not extra, (
        f"crossings delivered with no reference (or counted twice): {extra}; "
        f"reference on those lines: {[r for r in ref if any(r[0] == x[0] and abs(r[2] - x[2]) < 6 for x in extra)]}; "
        f"live on those lines: {[x for x in live if any(x[0] == e[0] and abs(x[2] - e[2]) < 6 for e in extra)]}"
    )
    assert not ghosts, f"crossings delivered from footage the camera could not see: {ghosts}"
    assert sum(core(r[2]) for r in ref) >= 30  # the test has something to check on both sides of the outage
    assert any(core(r[2]) and r[2] < ft_kill for r in ref) and any(
        core(r[2]) and r[2] > ft_resume for r in ref
    )

    # --- the credentials never left the process
    everything = out + err + repr(logs) + repr(events) + repr(sup.status())
    assert PASSWORD not in everything and f"{USER}:" not in everything
    assert f"rtsp://***@127.0.0.1:{server1.port}/cam" in everything
