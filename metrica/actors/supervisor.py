"""The supervisor: one camera process per enabled camera, kept alive.

One asyncio task per camera starts its process (`CameraProcess`), watches its heartbeats and restarts
it when it crashes (a non-zero exit, a signal such as ``kill -9``) or is stuck (alive, but no heartbeat,
or no frame and no reconnect attempt, for ``stuck_seconds``), after a capped exponential backoff
(``backoff_initial``, doubling, at most ``backoff_max``; back to the start once a process has run
healthily for ``healthy_seconds``). A permanent error (a missing model or video file) is state
``failed``: it is retried at ``backoff_max`` until the configuration changes.

States: starting → running ⇄ reconnecting; backing_off (waiting to restart); failed; stopped (disabled,
removed, or a file source that ended). Every state change, and every ``status_interval`` while running,
goes to the sink as a `CameraStatus`; every crossing as a `CrossingEvent`.

Messages are read from the pipes as they arrive (health is updated at once); events go to the sink
through one in-order queue drained by its own task, so a slow sink delays delivery but never stalls
the reading or the stuck detection, and no crossing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import msgspec
import structlog

from metrica.actors.camera import (
    ActorOptions,
    CameraProcess,
    ChildError,
    Ended,
    Heartbeat,
    Hello,
    Message,
)
from metrica.events import ActorInfo, ActorState, CameraStatus, CrossingEvent, Event, utc_from_timestamp
from metrica.site import Camera
from metrica.vision.pipeline import PipelineConfig

__all__ = ["Supervisor"]

log = structlog.get_logger(__name__)

_TICK = 0.25  # seconds between health checks of a running actor
_BACKLOG_WARN = 1000  # sink queue length that is worth a warning (then each time it doubles)


def _now() -> datetime:
    return datetime.now(UTC)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class _Actor:
    """The supervisor's record of one camera (enabled or not)."""

    def __init__(self, camera: Camera, backoff: float) -> None:
        self.camera = camera
        self.state: ActorState = "stopped"
        self.since = _now()
        self.fps = 0.0
        self.last_error: str | None = None
        self.restarts = 0
        self.starts = 0
        self.pid: int | None = None
        self.last_frame_at: datetime | None = None
        self.backoff = backoff
        self.task: asyncio.Task[None] | None = None
        self.proc: CameraProcess | None = None
        self.started = asyncio.Event()  # set once the current process has been spawned
        self._reset_health()

    def _reset_health(self) -> None:
        self.hello: Hello | None = None
        self.heartbeat: Heartbeat | None = None
        self.heartbeat_at = time.monotonic()
        self.child_error: ChildError | None = None
        self.ended = False
        self.first_frame_at: float | None = None  # monotonic

    def info(self) -> ActorInfo:
        return ActorInfo(
            camera_id=self.camera.id,
            store_id=self.camera.store_id,
            name=self.camera.name,
            state=self.state,
            fps=self.fps,
            last_error=self.last_error,
            restarts=self.restarts,
            pid=self.pid,
            since=self.since,
            last_frame_at=self.last_frame_at,
        )


class Supervisor:
    """Runs and heals the camera actors; implements `metrica.actors.ActorControl`."""

    def __init__(
        self,
        sink: Callable[[Event], Awaitable[None]],
        *,
        default_model: str | None = None,
        stuck_seconds: float = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        status_interval: float = 5.0,
        healthy_seconds: float = 30.0,
        stop_grace: float = 3.0,
        pipeline: PipelineConfig | None = None,
        source_reconnects: int | None = 5,
        log_level: str = "info",
    ) -> None:
        if not (stuck_seconds > 0 and status_interval > 0 and 0 < backoff_initial <= backoff_max):
            raise ValueError("stuck_seconds, status_interval and 0 < backoff_initial <= backoff_max required")
        self._sink = sink
        self.stuck_seconds = stuck_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.status_interval = status_interval
        self.healthy_seconds = healthy_seconds
        self.stop_grace = stop_grace
        self.options = ActorOptions(
            default_model=default_model,
            pipeline=pipeline or PipelineConfig(),
            max_reconnects=source_reconnects,
            max_backoff=min(30.0, backoff_max),
            log_level=log_level,
        )
        self._actors: dict[int, _Actor] = {}
        self._lock = asyncio.Lock()  # one configuration change at a time
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._delivery: asyncio.Task[None] | None = None
        self._backlog_warn = _BACKLOG_WARN
        self._closed = False

    # ------------------------------------------------------------------ ActorControl

    async def start(self, cameras: Sequence[Camera]) -> None:
        """Start an actor for every enabled camera (disabled ones are listed as stopped)."""
        await self.apply(cameras)

    async def apply(self, cameras: Sequence[Camera]) -> None:
        """Converge to this configuration: start new/enabled, stop removed/disabled, restart changed."""
        by_id = {c.id: c for c in cameras}
        if len(by_id) != len(cameras):
            raise ValueError("camera ids must be unique")
        async with self._lock:
            if self._closed:
                raise RuntimeError("the supervisor is stopped")
            self._ensure_delivery()
            stops = []
            for cid in [cid for cid in self._actors if cid not in by_id]:
                stops.append(self._remove(cid))
            for cam in by_id.values():
                actor = self._actors.get(cam.id)
                if actor is None:
                    actor = self._actors[cam.id] = _Actor(cam, self.backoff_initial)
                    if cam.enabled:
                        self._launch(actor)
                    else:
                        self._set_state(actor, "stopped")
                elif not cam.enabled:
                    actor.camera = cam
                    if actor.task is not None:
                        stops.append(self._halt(actor, "stopped"))
                elif actor.task is None:
                    ended = actor.camera.enabled and actor.camera.runtime_key() == cam.runtime_key()
                    actor.camera = cam
                    if not ended:  # a file that ended stays ended until its configuration changes
                        self._launch(actor, count_restart=actor.starts > 0)
                elif cam.runtime_key() != actor.camera.runtime_key():
                    stops.append(self._replace(actor, cam))
                else:
                    actor.camera = cam  # name or store: no restart needed (events get the store below)
            await asyncio.gather(*stops)
            # Return once every new process exists (its pid is known), as `restart` does.
            await asyncio.gather(*(a.started.wait() for a in self._actors.values() if a.task is not None))

    async def restart(self, camera_id: int) -> None:
        """Kill that camera's process and start a new one at once (backoff reset)."""
        async with self._lock:
            actor = self._actors.get(camera_id)
            if actor is None or actor.task is None:
                raise KeyError(camera_id)
            log.info("actor.restart_requested", camera_id=camera_id)
            await self._cancel(actor)
            actor.backoff = self.backoff_initial
            self._launch(actor, count_restart=True)
            await actor.started.wait()

    def status(self) -> list[ActorInfo]:
        return [self._actors[cid].info() for cid in sorted(self._actors)]

    async def stop(self) -> None:
        """Stop every actor, then deliver what is still queued for the sink."""
        async with self._lock:
            self._closed = True
            await asyncio.gather(*(self._halt(a, "stopped") for a in self._actors.values() if a.task))
        if self._delivery is not None:
            try:
                await asyncio.wait_for(self._queue.join(), 30.0)
            except TimeoutError:
                log.error("supervisor.undelivered", events=self._queue.qsize())
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None

    # ------------------------------------------------------------------ lifecycle helpers

    def _launch(self, actor: _Actor, count_restart: bool = False) -> None:
        if count_restart:
            actor.restarts += 1
        actor.started = asyncio.Event()
        actor.task = asyncio.create_task(self._supervise(actor), name=f"camera-actor-{actor.camera.id}")

    async def _cancel(self, actor: _Actor) -> None:
        task, actor.task = actor.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _halt(self, actor: _Actor, state: ActorState) -> None:
        await self._cancel(actor)
        actor.fps = 0.0
        self._set_state(actor, state)

    async def _replace(self, actor: _Actor, camera: Camera) -> None:
        log.info("actor.config_changed", camera_id=camera.id)
        await self._cancel(actor)
        actor.camera = camera
        actor.backoff = self.backoff_initial
        self._launch(actor, count_restart=True)

    async def _remove(self, camera_id: int) -> None:
        actor = self._actors.pop(camera_id)
        await self._halt(actor, "stopped")
        log.info("actor.removed", camera_id=camera_id)

    def _set_state(self, actor: _Actor, state: ActorState, error: str | None = None) -> None:
        changed = state != actor.state or (error is not None and error != actor.last_error)
        if error is not None:
            actor.last_error = error
        if not changed:
            return
        actor.state = state
        actor.since = _now()
        if state != "running":
            actor.fps = 0.0
        self._emit_status(actor)

    def _emit_status(self, actor: _Actor) -> None:
        self._put(
            CameraStatus(
                ts=_now(),
                camera_id=actor.camera.id,
                state=actor.state,
                fps=actor.fps,
                error=actor.last_error,
                restarts=actor.restarts,
            )
        )

    # ------------------------------------------------------------------ one actor

    async def _supervise(self, actor: _Actor) -> None:
        """Run the camera's process until cancelled, restarting it when it dies or hangs."""
        cam_id = actor.camera.id
        while True:
            actor._reset_health()
            self._set_state(actor, "starting")
            proc = CameraProcess(actor.camera, self.options, functools.partial(self._on_message, actor))
            actor.proc = proc
            try:
                await proc.start()
            except Exception as exc:  # spawn itself failed (out of memory, too many processes)
                actor.proc = None
                actor.started.set()
                delay = self._next_backoff(actor, False)
                self._set_state(actor, "backing_off", f"cannot start the process: {exc}")
                log.error("actor.spawn_failed", camera_id=cam_id, error=str(exc), backoff=delay)
                await asyncio.sleep(delay)
                actor.restarts += 1
                continue
            actor.starts += 1
            actor.pid = proc.pid
            actor.started.set()
            log.info(
                "actor.started",
                camera_id=cam_id,
                pid=proc.pid,
                restarts=actor.restarts,
                source=actor.camera.public_source,
            )
            try:
                stuck = await self._watch(actor, proc)
                if stuck:
                    await proc.kill(self.stop_grace)
                code = await proc.wait()
            except asyncio.CancelledError:
                await proc.kill(self.stop_grace)  # drains the pipe: crossings already counted are kept
                proc.close()
                log.info("actor.exited", camera_id=cam_id, pid=proc.pid, reason="stopped", **self._code(proc))
                actor.pid = None
                actor.proc = None
                raise
            proc.close()
            actor.pid = None
            actor.proc = None
            log.info("actor.exited", camera_id=cam_id, pid=proc.pid, **self._code(proc))
            if actor.ended and code == 0:
                self._set_state(actor, "stopped", "the source ended")
                actor.task = None
                return
            healthy = (
                actor.first_frame_at is not None
                and time.monotonic() - actor.first_frame_at >= self.healthy_seconds
            )
            err = actor.child_error
            permanent = err is not None and err.permanent
            if stuck:
                error = actor.last_error
            elif err is not None:
                error = err.message
            else:
                error = f"camera process {_exit_text(code)}"
            delay = self._next_backoff(actor, healthy, permanent)
            self._set_state(actor, "failed" if permanent else "backing_off", error)
            log.warning(
                "actor.restarting", camera_id=cam_id, backoff=delay, error=error, restarts=actor.restarts
            )
            await asyncio.sleep(delay)
            actor.restarts += 1

    @staticmethod
    def _code(proc: CameraProcess) -> dict[str, object]:
        code = proc.exitcode
        if code is not None and code < 0:
            return {"signal": _exit_text(code).rsplit(" ", 1)[-1]}
        return {"exit_code": code}

    def _next_backoff(self, actor: _Actor, healthy: bool, permanent: bool = False) -> float:
        if permanent:
            return self.backoff_max
        if healthy:
            actor.backoff = self.backoff_initial  # it ran fine for a while: this is a fresh failure
        delay = actor.backoff
        actor.backoff = min(actor.backoff * 2, self.backoff_max)
        return delay

    async def _watch(self, actor: _Actor, proc: CameraProcess) -> bool:
        """Follow a live process until it exits (False) or is stuck (True); update the state meanwhile."""
        next_status = 0.0
        while not proc.exited.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.exited.wait(), _TICK)
            if proc.exited.is_set():
                break
            now = time.monotonic()
            hb = actor.heartbeat
            if actor.child_error is not None or actor.ended:
                continue  # it is on its way out
            if hb is not None and actor.hello is not None:
                if hb.connected:
                    if actor.first_frame_at is None:
                        actor.first_frame_at = now
                    if actor.state != "running":
                        log.info("actor.running", camera_id=actor.camera.id, after_s=self._since(proc))
                        actor.last_error = None
                    self._set_state(actor, "running")
                elif hb.error is not None:
                    self._set_state(actor, "reconnecting", hb.error)
                if actor.first_frame_at is not None and now - actor.first_frame_at >= self.healthy_seconds:
                    actor.backoff = self.backoff_initial
            if actor.state == "running" and now >= next_status:
                if next_status:  # the state change itself was just reported
                    self._emit_status(actor)
                next_status = now + self.status_interval
            elif actor.state != "running":
                next_status = 0.0
            silent = now - actor.heartbeat_at
            idle = hb.idle + silent if hb is not None and hb.ready else 0.0
            if silent > self.stuck_seconds or idle > self.stuck_seconds:
                what = "no heartbeat" if silent > self.stuck_seconds else "no frame and no reconnect attempt"
                actor.last_error = f"stuck: {what} for {max(silent, idle):.0f} s"
                log.warning(
                    "actor.stuck",
                    camera_id=actor.camera.id,
                    pid=proc.pid,
                    silent_s=round(silent, 1),
                    idle_s=round(idle, 1),
                )
                return True
        return False

    @staticmethod
    def _since(proc: CameraProcess) -> float:
        return round(time.monotonic() - proc.started_at, 2)

    def _on_message(self, actor: _Actor, msg: Message) -> None:
        """Called on the loop's thread for each message, as soon as it is read."""
        if isinstance(msg, CrossingEvent):
            if msg.store_id != actor.camera.store_id:  # the camera moved store without a restart
                msg = msgspec.structs.replace(msg, store_id=actor.camera.store_id)
            self._put(msg)
            return
        actor.heartbeat_at = time.monotonic()
        if isinstance(msg, Heartbeat):
            actor.heartbeat = msg
            actor.fps = msg.fps if msg.connected else 0.0
            if msg.last_frame_wall is not None:
                actor.last_frame_at = utc_from_timestamp(msg.last_frame_wall)
        elif isinstance(msg, Hello):
            actor.hello = msg
            log.info("actor.ready", camera_id=actor.camera.id, pid=msg.pid, startup_s=msg.startup)
        elif isinstance(msg, ChildError):
            actor.child_error = msg
            actor.last_error = msg.message
        elif isinstance(msg, Ended):
            actor.ended = True

    # ------------------------------------------------------------------ delivery to the sink

    def _ensure_delivery(self) -> None:
        if self._delivery is None:
            self._delivery = asyncio.create_task(self._deliver(), name="supervisor-sink")

    def _put(self, event: Event) -> None:
        self._queue.put_nowait(event)
        n = self._queue.qsize()
        if n >= self._backlog_warn:
            log.warning("supervisor.sink_backlog", events=n)
            self._backlog_warn *= 2
        elif n < _BACKLOG_WARN // 2:
            self._backlog_warn = _BACKLOG_WARN

    async def _deliver(self) -> None:
        while True:
            event = await self._queue.get()
            delay = 0.5
            try:
                while True:
                    try:
                        await self._sink(event)
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        if not isinstance(event, CrossingEvent):
                            log.error("supervisor.sink_failed", kind=type(event).__name__, error=repr(exc))
                            break  # a status is superseded by the next one
                        # A crossing is the product: keep it and retry.
                        log.error(
                            "supervisor.sink_failed", kind="CrossingEvent", error=repr(exc), retry_s=delay
                        )
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 10.0)
            finally:
                self._queue.task_done()
