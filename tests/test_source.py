"""VideoSource against real video: files written with PyAV, a real (minimal) RTSP server, real footage.

Every test frame draws its own number as 8 black/white squares, so a decoded image tells which frame it
is, and a test can check that the frame reported as index k really is frame k.
"""

from __future__ import annotations

import functools
import http.server
import math
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from structlog.testing import capture_logs

from metrica.vision.source import Frame, SourceError, VideoSource, redact_uri

W, H = 192, 128
KITTI = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sequences" / "KITTI-17" / "video.mp4"
)
# x264 with B-frames in a pyramid: the non-reference b-frames are what sampling may skip decoding.
X264_BFRAMES = {"x264-params": "bframes=3:b-adapt=0:b-pyramid=normal:keyint=30", "crf": "20"}
X265_BFRAMES = {"x265-params": "bframes=4:b-adapt=0:b-pyramid=1:keyint=30:log-level=error"}


def pattern(k: int) -> npt.NDArray[np.uint8]:
    """Frame number k drawn as bits (white = 1) over a textured background with a moving red box."""
    rng = np.random.default_rng(7)
    img = rng.integers(90, 150, (H, W, 1), dtype=np.uint8).repeat(3, axis=2)
    for b in range(8):
        img[8:24, 8 + b * 22 : 24 + b * 22] = 255 if (k >> b) & 1 else 0
    x = 8 + (k * 6) % (W - 40)
    img[60:90, x : x + 24] = (0, 0, 255)  # BGR red
    return img


def number(img: npt.NDArray[np.uint8]) -> int:
    """Read back the frame number drawn by `pattern`."""
    return sum(1 << b for b in range(8) if img[12:20, 12 + b * 22 : 20 + b * 22].mean() > 127)


def write_video(
    path: Path,
    n: int,
    *,
    fps: int = 10,
    codec: str = "libx264",
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    pts_ms: list[int] | None = None,
    first: int = 0,
) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if codec == "mpeg4":
            stream.codec_context.max_b_frames = 2
            stream.bit_rate = 2_000_000
        if options:
            stream.options = options
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(first + i), format="bgr24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "h264": write_video(d / "h264.mp4", 40, options=X264_BFRAMES),
        "h265": write_video(d / "h265.mp4", 40, codec="libx265", options=X265_BFRAMES),
        "mpeg4": write_video(d / "mpeg4.mp4", 40, codec="mpeg4"),
        "ts": write_video(d / "stream.ts", 60, fmt="mpegts", options=X264_BFRAMES),
        "short": write_video(d / "short.mp4", 10, options=X264_BFRAMES),
        "vfr": write_video(d / "vfr.mp4", len(VFR_MS), options=X264_BFRAMES, pts_ms=VFR_MS),
    }


def expected_indices(n: int, fps: int, target: float) -> list[int]:
    """First frame of every 1/target-second cell, for a constant-rate file (exact arithmetic).
    The cells start half a source frame early, so the frame nearest to each due time is kept."""
    cell = [math.floor(Fraction(2 * i + 1, 2 * fps) * Fraction(target)) for i in range(n)]
    return [i + 1 for i in range(n) if i == 0 or cell[i] > cell[i - 1]]


def check_frames(frames: list[Frame]) -> None:
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.shape == (H, W, 3) and f.image.flags.c_contiguous
        assert number(f.image) == f.index - 1, (
            f"frame reported as index {f.index} shows {number(f.image) + 1}"
        )


# ---------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("kind", ["h264", "h265", "mpeg4", "ts"])
def test_reads_every_frame_with_exact_index_and_pts(videos: dict[str, Path], kind: str) -> None:
    before = time.time()
    with VideoSource(str(videos[kind])) as src:
        assert not src.is_live and src.native_fps == 10.0 and (src.width, src.height) == (W, H)
        assert src.frame_count == (None if kind == "ts" else 40)
        frames = list(src)
    n = 60 if kind == "ts" else 40
    assert [f.index for f in frames] == list(range(1, n + 1))
    assert [f.pts for f in frames] == pytest.approx([i / 10 for i in range(n)], abs=1e-6)
    assert {f.session for f in frames} == {0}
    check_frames(frames)
    # BGR order: the red box is red in channel 2
    box = frames[0].image[75, 20]
    assert box[2] > 200 and box[0] < 60
    assert before <= frames[0].wall_time <= time.time()
    assert frames[-1].wall_time - frames[0].wall_time == pytest.approx(frames[-1].pts)


@pytest.mark.parametrize("kind", ["h264", "h265", "mpeg4", "ts"])
@pytest.mark.parametrize("target", [5.0, 3.0, 2.5])
def test_sampling_by_pts_keeps_the_right_frames(videos: dict[str, Path], kind: str, target: float) -> None:
    n = 60 if kind == "ts" else 40
    with VideoSource(str(videos[kind]), target_fps=target) as src:
        frames = list(src)
    assert [f.index for f in frames] == expected_indices(n, 10, target)
    assert [f.pts for f in frames] == pytest.approx([(f.index - 1) / 10 for f in frames], abs=1e-6)
    check_frames(frames)
    # frames not kept are never converted, and non-reference ones are not even decoded
    assert src.frames_kept == len(frames)
    if kind in ("h264", "ts") and target == 5.0:
        # with this pyramid every frame not due is a non-reference b-frame; only the first few, before
        # the decoder returns its first frame, cannot be known to be skippable
        assert n // 2 <= src.frames_decoded <= n // 2 + 8, "frames not due should not be decoded"
    elif kind == "h265":
        assert src.frames_decoded < n


def test_sampling_is_robust_to_timestamp_jitter(tmp_path: Path) -> None:
    """Camera timestamps wobble; a frame a few ms early must not be taken for the previous cell."""
    jitter = [0, 4, -4, 3, -5, 2, -3, 5, -2, 0] * 4
    path = write_video(
        tmp_path / "jitter.mp4", 40, options=X264_BFRAMES, pts_ms=[100 * i + j for i, j in enumerate(jitter)]
    )
    with VideoSource(str(path), target_fps=5.0) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(1, 41, 2))
    check_frames(frames)


def test_target_at_or_above_native_rate_keeps_every_frame(videos: dict[str, Path]) -> None:
    for target in (10.0, 30.0):
        with VideoSource(str(videos["h264"]), target_fps=target) as src:
            assert [f.index for f in src] == list(range(1, 41))


VFR_MS = [0, 30, 150, 210, 220, 500, 610, 790, 800, 1000, 1400, 1410, 1590, 1600, 2000]


def test_variable_frame_rate_is_sampled_by_presentation_time(videos: dict[str, Path]) -> None:
    with VideoSource(str(videos["vfr"])) as src:
        every = list(src)
    assert [f.index for f in every] == list(range(1, len(VFR_MS) + 1))
    assert [f.pts for f in every] == pytest.approx([t / 1000 for t in VFR_MS], abs=1e-6)
    check_frames(every)
    with VideoSource(str(videos["vfr"]), target_fps=5.0) as src:
        sampled = list(src)
    # first frame in each 200 ms cell, the cells starting half a frame (of the 8.15 fps average,
    # 61 ms) early: [-61, 139) [139, 339) [339, 539) [539, 739) [739, 939) [939, 1139) ...
    assert src.native_fps == pytest.approx(8.152, abs=1e-3)
    assert [round(f.pts * 1000) for f in sampled] == [0, 150, 500, 610, 790, 1000, 1400, 1590, 2000]
    assert [f.index for f in sampled] == [1, 3, 6, 7, 8, 10, 11, 13, 15]
    check_frames(sampled)


def test_loop_restarts_with_increasing_pts_and_index(videos: dict[str, Path]) -> None:
    frames: list[Frame] = []
    with VideoSource(str(videos["short"]), loop=True) as src:
        for f in src:
            frames.append(f)
            if len(frames) == 25:
                break
    assert [f.index for f in frames] == list(range(1, 26))
    assert [f.pts for f in frames] == pytest.approx([i / 10 for i in range(25)], abs=1e-6)
    assert [number(f.image) for f in frames] == [i % 10 for i in range(25)]
    with VideoSource(str(videos["short"]), target_fps=5.0, loop=True) as src:
        sampled = [f for f, _ in zip(src, range(8), strict=False)]
    assert [f.index for f in sampled] == [1, 3, 5, 7, 9, 11, 13, 15]
    assert [number(f.image) for f in sampled] == [0, 2, 4, 6, 8, 0, 2, 4]


def test_frames_missing_from_a_constant_rate_file_keep_their_place(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    """Packets lost from a file (here: two non-reference b-frames left out when remuxing) do not shift
    the index of the frames after them."""
    lost = tmp_path / "lost.mp4"
    dropped = {21, 23}  # 0-based frame numbers
    with av.open(str(videos["h264"])) as inp, av.open(str(lost), "w") as out:
        src_stream = inp.streams.video[0]
        dst_stream = out.add_stream_from_template(src_stream)
        for packet in inp.demux(src_stream):
            if packet.pts is None or round(packet.pts * packet.time_base * 10) in dropped:
                continue
            packet.stream = dst_stream
            out.mux(packet)
    for target in (None, 5.0):
        with VideoSource(str(lost), target_fps=target) as src:
            frames = list(src)
        want = [i for i in range(1, 41) if i - 1 not in dropped]
        assert [f.index for f in frames] == (want if target is None else [i for i in want if i % 2])
        check_frames(frames)


def test_missing_file(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="no such file") as err:
        VideoSource(str(tmp_path / "nope.mp4"))
    assert "nope.mp4" in str(err.value)
    assert time.monotonic() - started < 1.0
    with pytest.raises(SourceError, match="directory"):
        VideoSource(str(tmp_path))


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError, match=r"notes\.mp4: cannot open"):
        VideoSource(str(path))


def test_truncated_mp4_fails_clearly_at_open(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["h264"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: nothing can be read
    with pytest.raises(SourceError, match=r"cut\.mp4: cannot open"):
        VideoSource(str(cut))


def test_truncated_faststart_mp4_gives_frames_up_to_the_damage(tmp_path: Path) -> None:
    full = tmp_path / "fast.mp4"
    with av.open(str(full), "w", options={"movflags": "faststart"}) as out:
        stream: Any = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt, stream.options = W, H, "yuv420p", X264_BFRAMES
        for k in range(40):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pattern(k), format="bgr24")))
        out.mux(stream.encode(None))
    data = full.read_bytes()
    cut = tmp_path / "fast-cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with capture_logs() as logs, VideoSource(str(cut)) as src:
        frames = list(src)
    assert 5 <= len(frames) < 40
    check_frames(frames[:-1])  # the last one is decoded from a cut packet
    # B-frames after the cut are lost, the index still matches the timestamps
    assert [f.index for f in frames] == [round(f.pts * 10) + 1 for f in frames]
    assert any(e["event"] in ("source.truncated", "source.read_error") for e in logs), logs


def test_truncated_transport_stream_ends_cleanly(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["ts"].read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    with VideoSource(str(cut)) as src:
        frames = list(src)
    assert 15 <= len(frames) < 60
    assert [f.index for f in frames] == [round(f.pts * 10) + 1 for f in frames]
    check_frames(frames[:-1])  # the last one may be cut through


def test_garbage_in_the_middle_is_logged_and_skipped(videos: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(videos["ts"].read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.ts"
    bad.write_bytes(bytes(data))
    with capture_logs() as logs, VideoSource(str(bad)) as src:
        frames = list(src)
    indices = [f.index for f in frames]
    assert indices == [round(f.pts * 10) + 1 for f in frames] and 40 <= len(frames) <= 60
    assert frames[-1].index >= 55, "frames after the damage are read"
    check_frames([f for f in frames if f.index < 20])  # untouched part decodes exactly
    assert any(e["log_level"] == "warning" for e in logs), logs


# ------------------------------------------------------------------------------------- live sources


def test_file_served_over_http_ends_at_its_end(videos: dict[str, Path]) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(videos["h264"].parent))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as httpd:
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            uri = f"http://127.0.0.1:{httpd.server_address[1]}/h264.mp4"
            with VideoSource(uri, target_fps=5.0, open_timeout=5, read_timeout=5) as src:
                assert src.is_live
                frames = list(src)
        finally:
            httpd.shutdown()
    assert [f.index for f in frames] == list(range(1, 41, 2))
    check_frames(frames)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection_reconnects_then_gives_up() -> None:
    uri = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/stream"
    started = time.monotonic()
    with capture_logs() as logs:
        src = VideoSource(uri, reconnect=True, max_reconnects=2, open_timeout=2, read_timeout=2)
        with pytest.raises(SourceError, match="giving up after 2 reconnect") as err:
            list(src)
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 5, elapsed  # waited 0.5 s + 1.0 s
    assert src.is_live and src.width == 0 and src.native_fps is None
    reconnects = [e for e in logs if e["event"] == "source.reconnect"]
    assert [(e["attempt"], e["delay"]) for e in reconnects] == [(1, 0.5), (2, 1.0)]
    assert "Connection refused" in str(err.value)
    assert "s3cret" not in str(err.value) and "admin" not in str(err.value)
    assert "s3cret" not in repr(logs) and "rtsp://***@127.0.0.1" in str(err.value)
    assert "last error: cannot open: Connection refused" in str(err.value)
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)


def test_refused_connection_without_reconnect_raises_at_once() -> None:
    with pytest.raises(SourceError, match="cannot open: Connection refused"):
        VideoSource(f"rtsp://127.0.0.1:{free_port()}/x", reconnect=False)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()
    for conn in accepted:
        conn.close()


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_server_that_never_answers_times_out(silent_server: int, scheme: str) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="no answer within 1 s"):
        VideoSource(f"{scheme}://127.0.0.1:{silent_server}/x", open_timeout=1.0, reconnect=False)
    assert time.monotonic() - started < 3.0


def test_close_from_another_thread_ends_iteration_promptly() -> None:
    src = VideoSource(f"rtsp://127.0.0.1:{free_port()}/x", open_timeout=1.0)  # keeps retrying
    outcome: list[object] = []

    def consume() -> None:
        try:
            outcome.append(list(src))
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            outcome.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.8)  # now in the 1 s backoff before attempt 2
    closed = time.monotonic()
    src.close()
    thread.join(timeout=2.0)
    assert not thread.is_alive() and time.monotonic() - closed < 0.3
    assert outcome == [[]]


class RtspServer:
    """Just enough of an RTSP server (TCP interleaved) to play pre-encoded H.264 RTP sessions.

    Each client connection plays the next session and then hangs up; when none are left the server
    stops listening, so further connections are refused.
    """

    SDP = (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"
        "a=control:trackID=0\r\n"
    )

    def __init__(self, sessions: list[list[tuple[int, bytes]]], stall: float = 0.0) -> None:
        self.sessions = sessions
        self.stall = stall  # after the last packet, keep the connection open this long
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            while True:
                line = f.readline()
                if not line:
                    return
                if not line.strip() or line.startswith(b"$"):
                    continue
                method, url = line.decode().split()[:2]
                headers = {}
                while header := f.readline().decode().strip():
                    key, _, value = header.partition(":")
                    headers[key.strip().lower()] = value.strip()
                f.read(int(headers.get("content-length", 0)))
                extra, body = "", ""
                if method == "DESCRIBE":
                    extra, body = f"Content-Base: {url}/\r\nContent-Type: application/sdp\r\n", self.SDP
                elif method == "SETUP":
                    extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 42\r\n"
                elif method in ("PLAY", "TEARDOWN"):
                    extra = "Session: 42\r\n"
                elif method == "OPTIONS":
                    extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n"
                reply = f"RTSP/1.0 200 OK\r\nCSeq: {headers.get('cseq', '0')}\r\n{extra}"
                conn.sendall(f"{reply}Content-Length: {len(body)}\r\n\r\n{body}".encode())
                if method == "PLAY":
                    if not self.sessions:
                        return
                    packets = self.sessions.pop(0)
                    if not self.sessions:  # refuse further connections
                        self.sock.shutdown(socket.SHUT_RDWR)
                        self.sock.close()
                    for channel, data in packets:
                        conn.sendall(b"$" + bytes([channel]) + struct.pack(">H", len(data)) + data)
                    time.sleep(self.stall or 0.05)
                    return


def rtp_session(first: int, n: int) -> list[tuple[int, bytes]]:
    """Frames first..first+n-1 at 10 fps as H.264 RTP packets (channel 0) after an RTCP sender
    report (channel 1), made by FFmpeg's RTP muxer sending to two local UDP sockets."""
    while True:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", rtp.getsockname()[1] + 1))
            break
        except OSError:
            rtp.close()
            rtcp.close()
    for s in (rtp, rtcp):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    with av.open(f"rtp://127.0.0.1:{rtp.getsockname()[1]}", "w", format="rtp") as out:
        stream: Any = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"x264-params": "bframes=0:keyint=10:repeat-headers=1"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(first + i), format="bgr24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    packets = []
    for channel, s in ((1, rtcp), (0, rtp)):
        s.setblocking(False)
        while True:
            try:
                packets.append((channel, s.recv(65536)))
            except BlockingIOError:
                break
        s.close()
    return packets


def test_rtsp_stream_reconnects_with_monotonic_pts_and_sessions() -> None:
    server = RtspServer([rtp_session(0, 20), rtp_session(20, 20)])
    uri = f"rtsp://cam:pw@127.0.0.1:{server.port}/live"
    before = time.time()
    with capture_logs() as logs, VideoSource(uri, max_backoff=0.05, max_reconnects=1) as src:
        frames: list[Frame] = []
        with pytest.raises(SourceError, match="giving up after 1 reconnect"):
            for f in src:
                frames.append(f)
    assert src.is_live and src.native_fps == 10.0 and (src.width, src.height) == (W, H)
    assert [f.session for f in frames] == [0] * 20 + [1] * 20
    assert [f.index for f in frames] == list(range(1, 41))
    check_frames(frames)
    pts = [f.pts for f in frames]
    assert np.all(np.diff(pts) > 0)
    # The first packet of an RTSP session comes without a timestamp (FFmpeg's stream probing), so
    # its pts is an estimate; the RTP timestamps of the others are exact.
    assert pts[0] == 0.0 and np.diff(pts[1:20]) == pytest.approx(0.1, abs=1e-6)
    # wall clock from the RTCP sender reports: 0.1 s apart, although the frames arrived in a burst
    walls = [f.wall_time for f in frames[1:20]]
    assert np.diff(walls) == pytest.approx(0.1, abs=1e-3)
    assert before - 1 < frames[0].wall_time < time.time() + 5
    events = [(e["event"], e.get("attempt")) for e in logs if e["event"].startswith("source.reconnect")]
    # the count starts over once frames flow again; the third connection is refused, and a second
    # attempt in a row would exceed max_reconnects=1
    assert events == [("source.reconnect", 1), ("source.reconnected", 1), ("source.reconnect", 1)]
    assert "pw@" not in repr(logs)


def test_rtsp_stream_that_stalls_times_out_after_its_frames() -> None:
    server = RtspServer([rtp_session(0, 20)], stall=5.0)
    started = time.monotonic()
    frames: list[Frame] = []
    with pytest.raises(SourceError, match="stream failed: no answer within 1 s"):
        for f in VideoSource(f"rtsp://127.0.0.1:{server.port}/live", read_timeout=1.0, reconnect=False):
            frames.append(f)
    assert time.monotonic() - started < 4.0
    assert [f.index for f in frames] == list(range(1, 21))  # the frames still in the decoder too
    check_frames(frames)


def test_rtsp_sampling_without_reconnect_ends_at_end_of_stream() -> None:
    server = RtspServer([rtp_session(0, 20)])
    with VideoSource(f"rtsp://127.0.0.1:{server.port}/live", target_fps=5.0, reconnect=False) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(1, 21, 2))
    check_frames(frames)


# --------------------------------------------------------------------------------------------- misc


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("rtsp://user:pass@host/x", "rtsp://***@host/x"),
        ("rtsp://admin:p@ss@10.0.0.2:554/Streaming/101", "rtsp://***@10.0.0.2:554/Streaming/101"),
        ("rtsps://u:p/w?x@cam.local/live", "rtsps://***@cam.local/live"),
        (
            "http://host/video.cgi?user=admin&password=secret&res=1",
            "http://host/video.cgi?user=***&password=***&res=1",
        ),
        ("rtsp://host:554/live", "rtsp://host:554/live"),
        ("/videos/user:pass@x.mp4", "/videos/user:pass@x.mp4"),
        ("usb:0", "usb:0"),
    ],
)
def test_redact_uri(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted


def test_unsupported_scheme_and_bad_arguments(videos: dict[str, Path]) -> None:
    with pytest.raises(SourceError, match=r"ftp://\*\*\*@host/x: unsupported source type"):
        VideoSource("ftp://me:pw@host/x")
    with pytest.raises(ValueError, match="target_fps"):
        VideoSource(str(videos["h264"]), target_fps=0)


def test_iterates_once_and_close_is_idempotent(videos: dict[str, Path]) -> None:
    src = VideoSource(str(videos["h264"]))
    first = next(iter(src))
    assert first.index == 1
    src.close()
    src.close()
    assert list(src) == []


@pytest.mark.skipif(not KITTI.exists(), reason="KITTI-17 footage not available")
def test_real_footage_kitti17() -> None:
    with VideoSource(str(KITTI)) as src:
        assert (src.width, src.height, src.native_fps, src.frame_count) == (1224, 370, 10.0, 145)
        every = {f.index: f for f in src}
    assert sorted(every) == list(range(1, 146))
    assert every[145].pts == pytest.approx(14.4)
    with VideoSource(str(KITTI), target_fps=5.0) as src:
        sampled = list(src)
    assert [f.index for f in sampled] == list(range(1, 146, 2))
    # skipping the decode of frames that are not due leaves the kept frames bit-identical
    for f in sampled:
        assert np.array_equal(f.image, every[f.index].image), f.index
    assert src.frames_decoded < 100
