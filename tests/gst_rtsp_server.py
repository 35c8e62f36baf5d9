"""A live RTSP camera for tests: GStreamer's gst-rtsp-server serving a video file as live footage.

Run it with the SYSTEM python (``/usr/bin/python3``: ``gi`` with GstRtspServer 1.0 from Debian's
``gir1.2-gst-rtsp-server-1.0`` and the gstreamer1.0-plugins-{base,good,bad,ugly}/gstreamer1.0-libav
packages), not the project's venv::

    /usr/bin/python3 tests/gst_rtsp_server.py VIDEO --port 8554 [--mount /cam] [--offset 35.5]
        [--user U --password P] [--loop]

The footage plays at real time from the moment the server starts, whether anybody watches or not, like
a real camera: a client that connects later sees the footage where the clock says it is, and a server
restarted with ``--offset`` (seconds into the file) resumes where the wall clock says the footage would
be, so a client truly misses the outage window. One decoding pipeline paces the file by the clock; each
RTSP session gets a live ``appsrc`` fed from it and its own H.264 encoder (x264, zerolatency, a key
frame every second), so a client (re)connecting gets a picture at once. Being live, the media cannot be
seeked: a client's ``Range: npt=0-`` does not rewind the camera.

It prints one JSON line when it listens: ``{"event": "ready", "url": ..., "offset": ..., "wall": ...}``
where ``wall`` is the UTC epoch time at which the footage was at ``offset`` seconds (so footage time
``t`` was on air at ``wall + t - offset``), and ``{"event": "eos", ...}`` when the file has ended
(without ``--loop``); it then ends the sessions and exits.

The helper half (`RtspServer`, imported by the tests with the project's python) starts it as a
subprocess, waits until it accepts connections and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).resolve()


# ---------------------------------------------------------------------------------------------- server


def _serve(args: argparse.Namespace) -> int:  # pragma: no cover - runs under the system python
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstApp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    video = Path(args.video).resolve()
    if not video.is_file():
        print(json.dumps({"event": "error", "error": f"no such file: {video}"}), flush=True)
        return 2

    loop = GLib.MainLoop()
    # The "camera": decode the file at real time (appsink sync=true paces it by the pipeline clock).
    player: Any = Gst.parse_launch(
        f'filesrc location="{video}" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert '
        "! video/x-raw,format=I420 ! appsink name=sink sync=true emit-signals=true max-buffers=4 drop=false"
    )
    sink = player.get_by_name("sink")
    clients: list[Any] = []  # the appsrc of every prepared session
    state: dict[str, Any] = {"caps": None}

    def on_sample(appsink: Any) -> Any:
        sample = appsink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        state["caps"] = sample.get_caps()
        buf = sample.get_buffer()
        for src in list(clients):
            copy = buf.copy()  # shares the memory; only the metadata is per session
            copy.pts = copy.dts = Gst.CLOCK_TIME_NONE  # appsrc do-timestamp stamps it with its own clock
            copy.duration = Gst.CLOCK_TIME_NONE
            if src.get_property("caps") is None:
                src.set_property("caps", state["caps"])
            if src.emit("push-buffer", copy) != Gst.FlowReturn.OK:
                clients.remove(src)
        return Gst.FlowReturn.OK

    sink.connect("new-sample", on_sample)

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( appsrc name=src is-live=true format=time do-timestamp=true block=false max-bytes=20000000 "
        "! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast pass=quant quantizer={args.quantizer} "
        f"key-int-max={args.keyint} bframes=0 threads=1 "
        # (quantizer 0: x264 first tries the payloader's preferred baseline profile, logs that it cannot
        # be lossless, then settles on High 4:4:4 Predictive: frames arrive bit-exact)
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)

    def on_configure(_factory: Any, media: Any) -> None:
        src = media.get_element().get_child_by_name("src")
        if state["caps"] is not None:
            src.set_property("caps", state["caps"])
        clients.append(src)

        def on_unprepared(_media: Any) -> None:
            if src in clients:
                clients.remove(src)

        media.connect("unprepared", on_unprepared)

    factory.connect("media-configure", on_configure)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", args.user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(args.user, "media.factory.access", True)
        perms.add_permission_for_role(args.user, "media.factory.construct", True)
        factory.set_permissions(perms)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(json.dumps({"event": "error", "error": f"cannot listen on port {args.port}"}), flush=True)
        return 2

    # Preroll, seek to the offset (decoding from the key frame before it), then play.
    player.set_state(Gst.State.PAUSED)
    player.get_state(Gst.CLOCK_TIME_NONE)
    if args.offset > 0:
        player.seek_simple(
            Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE, int(args.offset * Gst.SECOND)
        )
        player.get_state(Gst.CLOCK_TIME_NONE)
    player.set_state(Gst.State.PLAYING)
    wall = time.time()
    url = f"rtsp://127.0.0.1:{args.port}{args.mount}"
    print(json.dumps({"event": "ready", "url": url, "offset": args.offset, "wall": wall}), flush=True)

    def on_message(_bus: Any, msg: Any) -> None:
        if msg.type == Gst.MessageType.EOS:
            if args.loop:
                player.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH, 0)
                return
            print(json.dumps({"event": "eos", "wall": time.time()}), flush=True)
            for src in list(clients):
                src.emit("end-of-stream")
            GLib.timeout_add(1000, loop.quit)
        elif msg.type == Gst.MessageType.ERROR:
            err, _ = msg.parse_error()
            print(json.dumps({"event": "error", "error": str(err)}), flush=True)
            loop.quit()

    bus = player.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, lambda: loop.quit() or False)
    loop.run()
    player.set_state(Gst.State.NULL)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Serve a video file as a live RTSP camera.")
    p.add_argument("video")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mount", default="/cam")
    p.add_argument("--offset", type=float, default=0.0, help="start this many seconds into the file")
    p.add_argument("--user", help="require RTSP basic auth with this user")
    p.add_argument("--password")
    p.add_argument("--loop", action="store_true", help="start again at the end of the file")
    p.add_argument(
        "--quantizer",
        type=int,
        default=0,
        help="x264 constant quantizer: 0 (default) is lossless, so the camera's frames are the file's",
    )
    p.add_argument("--keyint", type=int, default=7, help="frames between key frames")
    return _serve(p.parse_args(argv))


# ---------------------------------------------------------------------------------------------- helper


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def system_gst_available() -> bool:
    """Whether the system python has GStreamer's RTSP server bindings (Debian packages)."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst; Gst.init(None);"
        "assert all(Gst.ElementFactory.find(e) for e in ('x264enc', 'avdec_h264', 'qtdemux', 'rtph264pay'))"
    )
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=60).returncode == 0


class RtspServer:
    """The server above as a subprocess: ``start()`` returns once it accepts connections."""

    def __init__(
        self,
        video: str | Path,
        *,
        port: int | None = None,
        mount: str = "/cam",
        offset: float = 0.0,
        user: str | None = None,
        password: str | None = None,
        loop: bool = False,
    ) -> None:
        self.video = Path(video)
        self.port = port or free_port()
        self.mount = mount
        self.offset = offset
        self.user = user
        self.password = password
        self.loop = loop
        self.proc: subprocess.Popen[str] | None = None
        self.wall: float = 0.0  # UTC epoch seconds when the footage was at `offset`

    @property
    def url(self) -> str:
        cred = f"{self.user}:{self.password}@" if self.user else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}{self.mount}"

    def footage_time(self, wall: float) -> float:
        """Where in the file the footage was at this wall-clock time."""
        return self.offset + (wall - self.wall)

    def start(self, timeout: float = 30.0) -> RtspServer:
        cmd = [SYSTEM_PYTHON, str(SCRIPT), str(self.video), "--port", str(self.port), "--mount", self.mount]
        cmd += ["--offset", f"{self.offset:.3f}"]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or ""]
        if self.loop:
            cmd.append("--loop")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "GST_DEBUG": "0"}
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()  # the ready (or error) line
        if not line:
            raise RuntimeError(f"RTSP server exited with {self.proc.wait()} before it was ready")
        msg = json.loads(line)
        if msg.get("event") != "ready":
            self.stop()
            raise RuntimeError(f"RTSP server failed: {msg}")
        self.wall = float(msg["wall"])
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"RTSP server not accepting connections on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the camera vanishes mid-stream (no RTSP TEARDOWN, no goodbye)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the camera freezes with its connections open."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
