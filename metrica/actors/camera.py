"""The camera actor: one OS process per camera runs source → detector → tracker → counter.

The heavy part (decoding, the model) lives in a child process started with the multiprocessing
*spawn* context (the parent runs asyncio and threads: fork would copy their locks mid-flight). The
child talks to the parent over a one-way pipe of msgspec/msgpack messages: every `CrossingEvent` as it
is counted, a `Heartbeat` every second (frames processed, fps, whether frames flow, how long the main
loop has made no progress), `Hello` once the model is loaded, `ChildError` before a failing exit and
`Ended` when a (non-looping) file is done.

Events are idempotent across restarts and reconnects: a crossing's session is
``f"{process_token}.{frame.session}"`` (the token is new for every process start, ``frame.session``
counts the source's reconnects), and its id is ``crossing_id(camera, session, line, track, seq)``
with ``seq`` counting that track's crossings of that line in the session. A reconnect starts a fresh
tracker and counter, so track ids restart with the session.

`CameraProcess` is the parent's handle: it starts the child, reads the pipe from the event loop
(``loop.add_reader``: never blocks it) and hands each message to a callback, and kills the child
(SIGTERM, then SIGKILL after a grace period), draining what the child sent before it died.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Literal

import msgspec
import structlog

from metrica.events import CrossingEvent, crossing_id, utc_from_timestamp
from metrica.site import Camera
from metrica.vision.pipeline import PipelineConfig

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_MODEL",
    "EXIT_SOURCE",
    "ActorOptions",
    "CameraProcess",
    "ChildError",
    "Ended",
    "Heartbeat",
    "Hello",
    "Message",
    "run_camera",
]

log = structlog.get_logger(__name__)

EXIT_INTERNAL = 1  # an unexpected exception
EXIT_SOURCE = 2  # the source failed (SourceError)
EXIT_MODEL = 3  # the model could not be loaded (ModelError)

_SEQ_KEEP_SECONDS = 600.0  # forget a track's crossing sequence this long after its last crossing


class ActorOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How every camera process runs (the per-camera part is the `Camera` itself)."""

    default_model: str | None = None  # when the camera names none (None: METRICA_MODEL / bundled)
    pipeline: PipelineConfig = PipelineConfig()  # base config; model, fps and threads are set per camera
    threads: int = 1  # detector threads per camera: N cameras share the box fairly
    heartbeat: float = 1.0  # seconds between heartbeats
    max_reconnects: int | None = 5  # live source: attempts without a frame before the process gives up
    max_backoff: float = 30.0  # live source: cap of the source's own reconnect backoff
    open_timeout: float = 10.0
    read_timeout: float = 10.0
    log_level: str = "info"
    log_json: bool | None = None


# ---------------------------------------------------------------------------------------------- messages


class Hello(msgspec.Struct, frozen=True, kw_only=True, tag="hello"):
    """The child is up: model loaded, source about to be read."""

    pid: int
    token: str  # this process start's token (the first half of every session string)
    startup: float  # seconds from the child's start to the model being ready


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, tag="heartbeat"):
    frames: int  # frames processed since the process started
    fps: float  # processed frames per second since the previous heartbeat
    connected: bool  # frames are flowing (False while the source reconnects or before the first frame)
    idle: float  # seconds since the main loop last made progress (a frame, a reconnect attempt)
    ready: bool  # the model is loaded (before that, ``idle`` measures the start-up and means nothing)
    last_frame_wall: float | None  # UTC epoch seconds of the last processed frame
    error: str | None = None  # why the source is not connected (redacted)
    session: int = 0  # the source's session (reconnect count)


class ChildError(msgspec.Struct, frozen=True, kw_only=True, tag="error"):
    kind: Literal["source", "model", "internal"]
    message: str  # credentials redacted
    permanent: bool  # retrying will not help until the configuration changes (missing model or file)


class Ended(msgspec.Struct, frozen=True, kw_only=True, tag="ended"):
    """A file source (not looping) reached its end: the actor is done, not crashed."""

    frames: int


Message = CrossingEvent | Hello | Heartbeat | ChildError | Ended

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


# ---------------------------------------------------------------------------------------------- child


class _Progress:
    """What the heartbeat thread reports about the main loop (written by the main thread)."""

    def __init__(self) -> None:
        self.frames = 0
        self.ready = False
        self.connected = False
        self.error: str | None = None
        self.session = 0
        self.last_progress = time.monotonic()
        self.last_frame_wall: float | None = None

    def frame(self, wall: float, session: int) -> None:
        self.frames += 1
        self.connected = True
        self.error = None
        self.session = session
        self.last_frame_wall = wall
        self.last_progress = time.monotonic()

    def disconnected(self, error: str | None) -> None:
        self.connected = False
        self.error = error
        self.last_progress = time.monotonic()


class _Sender:
    """Sends messages to the parent from two threads; exits the process when the parent is gone."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, msg: Message) -> None:
        data = _encoder.encode(msg)
        try:
            with self._lock:
                self._conn.send_bytes(data)
        except (BrokenPipeError, OSError):
            os._exit(EXIT_INTERNAL)  # the parent is gone: nobody to count for


def _hook_source_logs(progress: _Progress) -> structlog.typing.Processor:
    """A structlog processor that watches VideoSource's reconnect events (its only public signal)."""

    def processor(
        _logger: Any, _method: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        event = event_dict.get("event")
        if event in ("source.reconnect", "source.open_failed"):
            progress.disconnected(str(event_dict.get("error") or "disconnected"))
        elif event == "source.reconnected":
            progress.last_progress = time.monotonic()
        return event_dict

    return processor


def _configure_child_logging(options: ActorOptions, camera_id: int, progress: _Progress) -> None:
    from metrica.logs import configure_logging

    configure_logging(options.log_level, json=options.log_json)
    processors = list(structlog.get_config()["processors"])
    structlog.configure(processors=[_hook_source_logs(progress), *processors])
    structlog.contextvars.bind_contextvars(camera_id=camera_id, pid=os.getpid())


def _heartbeats(sender: _Sender, progress: _Progress, interval: float, stop: threading.Event) -> None:
    parent = os.getppid()
    last_frames, last_t = 0, time.monotonic()
    while not stop.wait(interval):
        if os.getppid() != parent:
            os._exit(EXIT_INTERNAL)  # orphaned: the supervisor died without killing us
        ready = progress.ready  # read before last_progress: the main thread writes them in the other order
        now = time.monotonic()
        frames = progress.frames
        fps = (frames - last_frames) / (now - last_t) if now > last_t else 0.0
        last_frames, last_t = frames, now
        sender.send(
            Heartbeat(
                frames=frames,
                fps=round(fps, 2),
                connected=progress.connected,
                idle=round(now - progress.last_progress, 3),
                ready=ready,
                last_frame_wall=progress.last_frame_wall,
                error=progress.error,
                session=progress.session,
            )
        )


def _is_live(source: str) -> bool:
    return ("://" in source and not source.startswith("file://")) or source.startswith(("usb:", "/dev/video"))


def _redact(text: str, camera: Camera) -> str:
    return text.replace(camera.source, camera.public_source) if camera.source else text


def run_camera(conn: Connection, camera_raw: bytes, options_raw: bytes) -> None:
    """The child process's entry point (a module-level function, so that spawn can import it)."""
    started = time.monotonic()
    camera = msgspec.msgpack.decode(camera_raw, type=Camera)
    options = msgspec.msgpack.decode(options_raw, type=ActorOptions)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the supervisor's to handle
    sender = _Sender(conn)
    progress = _Progress()
    _configure_child_logging(options, camera.id, progress)
    stop = threading.Event()
    # Heartbeats start before the heavy imports, so a slow model load is not mistaken for a hang.
    threading.Thread(
        target=_heartbeats, args=(sender, progress, options.heartbeat, stop), daemon=True, name="heartbeat"
    ).start()
    code = 0
    try:
        code = _count(camera, options, sender, progress, started)
    except BaseException as exc:  # report any failure cleanly, then exit non-zero
        code = _report(exc, camera, sender)
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (ONNX Runtime/torch threads can make it slow)


def _report(exc: BaseException, camera: Camera, sender: _Sender) -> int:
    from metrica.vision.detector import ModelError
    from metrica.vision.source import SourceError

    kind: Literal["source", "model", "internal"]
    if isinstance(exc, SourceError):
        kind, code = "source", EXIT_SOURCE
        # A missing or unreadable file stays so; a live source may come back.
        permanent = not _is_live(camera.source) or "unsupported source type" in str(exc)
        message = str(exc)
    elif isinstance(exc, ModelError):
        kind, code, permanent = "model", EXIT_MODEL, True
        message = str(exc)
    elif isinstance(exc, KeyboardInterrupt | SystemExit):
        return EXIT_INTERNAL
    else:
        kind, code, permanent = "internal", EXIT_INTERNAL, False
        message = f"{type(exc).__name__}: {exc}"
    message = _redact(message, camera)
    log.error("actor.error", kind=kind, error=message)
    sender.send(ChildError(kind=kind, message=message, permanent=permanent))
    return code


def _count(
    camera: Camera, options: ActorOptions, sender: _Sender, progress: _Progress, started: float
) -> int:
    import numpy as np

    from metrica.vision.detector import PersonDetector
    from metrica.vision.pipeline import CountingPipeline, StageTimes
    from metrica.vision.source import VideoSource

    token = uuid.uuid4().hex[:12]
    base = options.pipeline
    config = msgspec.structs.replace(
        base,
        model=camera.model or options.default_model or base.model,
        fps=camera.fps,
        threads=options.threads,
    )
    lines = {line.name: line for line in camera.lines}
    if not _is_live(camera.source):
        VideoSource(camera.source).close()  # a missing or broken file: say so before loading the model
    detector = PersonDetector(config.model, conf=config.conf, imgsz=config.imgsz, threads=config.threads)
    # One inference before the source opens: a live stream is not left waiting on model set-up.
    detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))
    progress.last_progress = time.monotonic()
    progress.ready = True
    sender.send(Hello(pid=os.getpid(), token=token, startup=round(time.monotonic() - started, 3)))
    log.info("actor.model_ready", model=detector.model_name, startup_s=round(time.monotonic() - started, 2))

    source = VideoSource(
        camera.source,
        target_fps=camera.fps,
        loop=camera.loop,
        open_timeout=options.open_timeout,
        read_timeout=options.read_timeout,
        max_backoff=options.max_backoff,
        max_reconnects=options.max_reconnects,
    )
    with source:
        pipeline = CountingPipeline(
            [line.vision_line() for line in camera.lines],
            config,
            source_fps=source.native_fps,
            detector=detector,
        )
        pace = camera.loop and not source.is_live  # a demo camera runs at real time, like a live one
        clock: tuple[float, float] | None = None  # (monotonic, pts) pacing reference
        session_no: int | None = None
        session = ""
        seq: dict[tuple[str, int], tuple[int, float]] = {}  # (line, track) → (crossings so far, last pts)
        for frame in source:
            if frame.session != session_no:
                if session_no is not None:
                    pipeline.reset(source.native_fps)  # a reconnect: track ids restart
                # the first frame of each connection: when the camera's picture (re)started
                log.info("actor.session_started", session=frame.session, frame=frame.index)
                session_no = frame.session
                session = f"{token}.{frame.session}"
                seq.clear()
            if pace:
                now = time.monotonic()
                if clock is None or now - (clock[0] + frame.pts - clock[1]) > 1.0:
                    clock = (now, frame.pts)  # first frame, or far behind: don't race to catch up
                else:
                    delay = clock[0] + (frame.pts - clock[1]) - now
                    if delay > 0:
                        time.sleep(delay)
            # A replayed file stands in for a live camera: stamp its frames when they are "shown", not
            # at open time + pts, which falls behind real time each time the pacing re-anchors.
            wall = time.time() if pace else frame.wall_time
            for c in pipeline.process(frame):
                key = (c.line, c.track)
                n = seq.get(key, (0, 0.0))[0]
                seq[key] = (n + 1, c.pts)
                line = lines[c.line]
                sender.send(
                    CrossingEvent(
                        id=crossing_id(camera.id, session, c.line, c.track, n),
                        ts=utc_from_timestamp(wall + (c.pts - frame.pts)),
                        store_id=camera.store_id,
                        camera_id=camera.id,
                        line_id=line.id,
                        line=line.name,
                        direction=c.direction,
                        footfall=line.footfall,
                        track=c.track,
                        session=session,
                        frame=c.frame,
                    )
                )
            progress.frame(wall, frame.session)
            if pipeline.processed % 1000 == 0:
                pipeline.times = StageTimes()  # stage times are for benchmarks: keep them bounded here
                horizon = frame.pts - _SEQ_KEEP_SECONDS
                for key in [k for k, (_, pts) in seq.items() if pts < horizon]:
                    del seq[key]
    sender.send(Ended(frames=progress.frames))
    log.info("actor.source_ended", frames=progress.frames)
    return 0


# ---------------------------------------------------------------------------------------------- parent


class CameraProcess:
    """The parent's handle on one camera process. Create and use it on the event loop's thread."""

    def __init__(self, camera: Camera, options: ActorOptions, on_message: Callable[[Message], None]) -> None:
        self.camera = camera
        self.options = options
        self._on_message = on_message
        self._proc: Any = None  # multiprocessing.context.SpawnProcess
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.exited = asyncio.Event()  # the process is gone (reaped)
        self.drained = asyncio.Event()  # and everything it sent has been read
        self.started_at = 0.0  # time.monotonic() at spawn

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode if self._proc is not None else None

    async def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=run_camera,
            args=(child_conn, msgspec.msgpack.encode(self.camera), msgspec.msgpack.encode(self.options)),
            name=f"metrica-camera-{self.camera.id}",
            daemon=True,  # killed if the supervisor's process exits normally without stopping us
        )
        self.started_at = time.monotonic()
        # Spawning writes the child's preparation data (a short block): off the loop. If we are cancelled
        # meanwhile, the process still starts: finish setting it up, then kill it.
        spawning = asyncio.ensure_future(asyncio.to_thread(proc.start))
        cancelled = False
        try:
            await asyncio.shield(spawning)
        except asyncio.CancelledError:
            cancelled = True
            await spawning
        finally:
            child_conn.close()  # ours closed, EOF on the pipe means the child is gone
        self._proc, self._conn = proc, parent_conn
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(parent_conn.fileno(), self._readable)
        self._loop.add_reader(proc.sentinel, self._reap)
        if cancelled:
            await self.kill()
            self.close()
            raise asyncio.CancelledError

    def _readable(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while conn.poll():
                data = conn.recv_bytes()
                try:
                    msg = _decoder.decode(data)
                except msgspec.DecodeError as exc:
                    log.error("actor.bad_message", camera_id=self.camera.id, error=str(exc))
                    continue
                self._on_message(msg)
        except (EOFError, OSError):
            self._close_pipe()

    def _close_pipe(self) -> None:
        if self._conn is not None and self._loop is not None:
            self._loop.remove_reader(self._conn.fileno())
            self._conn.close()
        self._conn = None
        self.drained.set()

    def _reap(self) -> None:
        assert self._loop is not None and self._proc is not None
        self._loop.remove_reader(self._proc.sentinel)
        self._try_reap()

    def _try_reap(self) -> None:
        # The sentinel fires as the child's fds close, an instant before it can be waited for.
        assert self._loop is not None and self._proc is not None
        self._proc.join(0)
        if self._proc.exitcode is None:
            self._loop.call_later(0.01, self._try_reap)
            return
        self.exited.set()

    def signal(self, signum: int) -> None:
        if self._proc is not None and not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signum)

    async def wait(self) -> int | None:
        """Wait for the process to end and its pipe to be drained; its exit code (−N: killed by signal N)."""
        await self.exited.wait()
        try:
            # A grandchild could hold the pipe open; don't wait on it forever.
            await asyncio.wait_for(self.drained.wait(), 5.0)
        except TimeoutError:
            self._readable()
            self._close_pipe()
        return self.exitcode

    async def kill(self, grace: float = 3.0) -> int | None:
        """SIGTERM, SIGKILL after ``grace`` seconds; returns the exit code once everything sent is read."""
        if self._proc is None:
            return None
        if not self.exited.is_set():
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.exited.wait(), grace)
            except TimeoutError:
                self.signal(signal.SIGKILL)
        return await self.wait()

    def close(self) -> None:
        """Release the loop's readers (after `wait`/`kill`; the process must be gone)."""
        if self._proc is not None and self._loop is not None and not self.exited.is_set():
            self._loop.remove_reader(self._proc.sentinel)
        self._close_pipe()
