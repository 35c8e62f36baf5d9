"""Video input: files, RTSP/HTTP streams and USB cameras, decoded with PyAV.

`VideoSource` is a plain synchronous iterator of `Frame`s (BGR ``uint8`` images), sampled down to a
target frame rate by presentation time: time is cut into cells of ``1/target_fps`` seconds and the first
frame of each cell is kept. The cells start half a source frame early, so each kept frame is the one
nearest to its due time and timestamp jitter cannot flip a decision. It never converts a frame it does
not keep, and when sampling down it has the decoder skip non-reference frames that are not due
(B-frames and the like): no other frame depends on them, so the kept frames decode bit-identically.

Frame indices are exact: every packet's presentation timestamp is counted, whether its frame is decoded,
skipped or dropped by sampling, so `Frame.index` is the frame's position in the stream (for a
constant-rate file, frame ``k`` in 0-based numbering has index ``k + 1``, even when packets were lost
to damage).

Live sources (RTSP, HTTP, USB) reconnect on failure or end of stream with capped exponential backoff;
their presentation times stay monotonic across reconnects and `Frame.session` tells the connections
apart. Credentials in URLs never reach a log line or an error message (see `redact_uri`).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import structlog
from av.video.reformatter import VideoReformatter

__all__ = ["Frame", "SourceError", "VideoSource", "redact_uri"]

log = structlog.get_logger(__name__)

# Schemes read as live streams (reconnect on failure). Anything else with a "scheme://" is refused.
_LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp"})
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_USB_RE = re.compile(r"^usb:(\d+)$")
# Query parameters that carry secrets (some cameras take ?user=..&password=..).
_SECRET_QUERY_KEYS = frozenset(
    ("user", "username", "password", "pass", "passwd", "pwd", "token", "auth", "key")
)

_BACKOFF_START = 0.5  # seconds before the first reconnect attempt; doubles up to max_backoff
_CAMERA_CLOCK_MAX_SKEW = 30.0  # a camera clock further than this from ours is not trusted
_LOCAL_CLOCK_RESYNC = 2.0  # re-anchor the pts-based wall clock when it drifts this far from time.time()
_WARN_INTERVAL = 5.0  # at most one warning of a kind per this many seconds (the rest are counted)
_DECODE_THREADS = min(4, os.cpu_count() or 1)
_PROBE_SECONDS = 1  # of a live stream, to find its parameters when opening
_MAX_FPS = 1000  # a stream claiming more frames per second than this does not know its rate
_MAX_PENDING = 256  # packets in the decoder with no frame out: beyond this, count them as lost
_REGULAR_STREAK = 8  # equal pts steps in a row before a file counts as constant-rate


@dataclass(slots=True)
class Frame:
    """One decoded, kept video frame."""

    index: int  # 1-based position of the frame in the source, counting every frame (kept or not)
    pts: float  # seconds since the start of the source; monotonic across reconnects and loops
    image: npt.NDArray[np.uint8]  # H x W x 3, BGR, C-contiguous
    wall_time: float  # UTC epoch seconds when the frame was captured
    session: int  # 0 for the first connection, +1 after each reconnect


class SourceError(Exception):
    """A video source cannot be opened or read. The message names the source (credentials masked)."""


def redact_uri(uri: str) -> str:
    """Mask credentials in a URI: ``rtsp://user:pass@host/x`` becomes ``rtsp://***@host/x``.

    Secrets passed as query parameters (``?user=..&password=..``) are masked as well. Paths without a
    scheme are returned unchanged. When in doubt (an ``@`` in a password), more is masked, never less.
    """
    m = _SCHEME_RE.match(uri)
    if m is None:
        return uri
    head, rest = uri[: m.end()], uri[m.end() :]
    q = rest.find("?")
    at = rest.rfind("@", 0, q) if q >= 0 else -1
    if at < 0:
        at = rest.rfind("@")
    if at >= 0:
        rest = "***" + rest[at:]
    q = rest.find("?")
    if q >= 0:
        params = rest[q + 1 :].split("&")
        for i, param in enumerate(params):
            key, sep, _ = param.partition("=")
            if sep and key.lower() in _SECRET_QUERY_KEYS:
                params[i] = key + "=***"
        rest = rest[: q + 1] + "&".join(params)
    return head + rest


def _reason(exc: BaseException) -> str:
    """A human-readable reason without the URL (FFmpeg errors carry it in ``filename``)."""
    if isinstance(exc, OSError | av.FFmpegError) and getattr(exc, "strerror", None):
        return str(exc.strerror)
    return type(exc).__name__


class _Throttle:
    """Log a warning at most once per interval, counting the ones held back."""

    __slots__ = ("event", "last", "suppressed")

    def __init__(self, event: str) -> None:
        self.event = event
        self.last = -1e18
        self.suppressed = 0

    def warn(self, **fields: Any) -> None:
        now = time.monotonic()
        if now - self.last < _WARN_INTERVAL:
            self.suppressed += 1
            return
        log.warning(self.event, suppressed=self.suppressed, **fields)
        self.last = now
        self.suppressed = 0


class _Pass:
    """Timestamp bookkeeping for one connection to a source (or one pass over a looping file)."""

    __slots__ = (
        "cd",
        "cn",
        "delta",
        "dur_raw",
        "fill_gaps",
        "frames_out",
        "grid",
        "half",
        "heap",
        "index",
        "last_cell",
        "last_counted",
        "last_pts",
        "last_raw",
        "origin",
        "pts_offset",
        "start",
        "streak",
        "tb",
    )

    def __init__(
        self,
        tb: Fraction,
        origin: int | None,
        index_base: int,
        pts_offset: float,
        rate: Fraction | None,
        fps: float,
        fill_gaps: bool,
    ) -> None:
        self.tb = float(tb)
        self.dur_raw = max(1, round(1.0 / (fps * self.tb))) if fps > 0 else max(1, round(0.04 / self.tb))
        # Sampling cells start half a source frame before the origin, so that the boundaries fall
        # between frames and jittery timestamps cannot flip a frame from one cell to the next.
        self.half = self.dur_raw // 2 if fps > 0 else 0
        self.origin: int | None = None  # raw pts of pts_offset
        self.grid = 0  # raw pts where sampling cell 0 starts
        if origin is not None:
            self.set_origin(origin)
        self.start = index_base  # index of the last frame before this pass
        self.index = index_base  # index of the last frame that came out of the decoder
        self.pts_offset = pts_offset
        # Sampling: a frame is kept when it is the first one in its cell of 1/target_fps seconds,
        # cell = floor((raw - grid) * tb * target_fps), computed exactly in integers.
        self.cn = tb.numerator * rate.numerator if rate is not None else 0
        self.cd = tb.denominator * rate.denominator if rate is not None else 0
        self.heap: list[int] = []  # raw pts of packets whose frame has not come out of the decoder yet
        self.last_cell: int | None = None
        self.last_raw: int | None = None
        self.last_pts: float | None = None
        self.frames_out = 0
        # Files: frames lost to damage still count when the timestamps are regular (see `count`).
        self.fill_gaps = fill_gaps
        self.last_counted: int | None = None
        self.delta = 0  # the regular pts step, once seen
        self.streak = 0  # how many steps in a row were exactly that

    def count(self, raw: int) -> int:
        """How far the index advances for the next counted pts: 1, plus the frames missing before it
        when a constant-rate file skips a whole number of steps (packets lost to damage)."""
        last, self.last_counted = self.last_counted, raw
        if not self.fill_gaps or last is None or raw <= last:
            return 1
        d, step = raw - last, self.delta
        tol = step // 64 + 1  # time bases that cannot hold the exact step round it (33/34 ms at 30 fps)
        if step and abs(d - step) <= tol:
            self.streak += 1
            return 1
        m = round(d / step) if step else 0
        if m >= 2 and abs(d - m * step) <= tol and self.streak >= _REGULAR_STREAK:
            return m
        self.delta, self.streak = d, 1
        return 1

    def set_origin(self, raw: int) -> None:
        self.origin = raw
        self.grid = raw - self.half

    def skippable(self, raw: int) -> bool:
        """True when the frame with this pts will certainly not be kept: an earlier frame of its cell
        was already kept, or is still pending in the decoder (and so comes out first)."""
        if self.origin is None:
            return False
        c = ((raw - self.grid) * self.cn) // self.cd
        if c == self.last_cell:
            return True
        lo = self.grid - (-c * self.cd // self.cn)  # smallest raw pts in cell c
        return any(lo <= q < raw for q in self.heap)

    def end_index(self) -> int:
        """Index of the last frame of this pass, counting frames the decoder never returned."""
        return self.index + len(self.heap)


class VideoSource:
    """Synchronous PyAV reader for a video file, an RTSP/HTTP stream or a USB (v4l2) camera.

    ``uri`` is a file path (or ``file://``), ``rtsp://``, ``rtsps://``, ``http(s)://`` (also ``rtmp``,
    ``srt``, ``udp``, ``tcp``, ``rtp``), ``/dev/videoN`` or ``usb:N``. Iterate it (once) for `Frame`s;
    ``close()`` may be called from another thread and makes the iteration end promptly: at once during a
    backoff sleep or between packets, and within ``open_timeout``/``read_timeout`` when FFmpeg is blocked
    on the network (PyAV gives no way to interrupt it sooner). Note that FFmpeg reports a stalled stream
    only after about two read time-outs (its parser hands out the last buffered packet first).

    Counters for metrics: ``frames_read`` (frames seen in the source, kept or not), ``frames_decoded``
    (frames the decoder produced) and ``frames_kept`` (frames yielded).

    ``reconnect`` (default: True for live sources) re-opens a live source after a failure or an end of
    stream, waiting 0.5 s, 1 s, 2 s, ... up to ``max_backoff``; the wait resets once frames flow again.
    More than ``max_reconnects`` consecutive attempts without a frame raise `SourceError`. Files never
    reconnect (a file that failed will fail the same way again); ``loop=True`` restarts a file at its end.

    A live URL that reports a duration (a file served over HTTP, a VOD playlist) ends at its end.
    RTSP/RTSPS go over TCP. ``Frame.wall_time`` is, for RTSP, the camera's clock from its RTCP sender
    reports when that is within 30 s of ours; otherwise the local receive time, kept in step with the
    stream's pts (re-anchored when the two drift more than 2 s apart); for files, open time + pts.

    If a live source cannot be opened at construction and ``reconnect`` is on, the constructor only logs
    it (``source.open_failed``) and iteration keeps retrying; ``width``/``height`` are 0 and
    ``native_fps`` is None until a connection succeeds. Otherwise the constructor raises `SourceError`.
    """

    is_live: bool
    native_fps: float | None
    frame_count: int | None
    width: int
    height: int

    def __init__(
        self,
        uri: str,
        target_fps: float | None = None,
        *,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        reconnect: bool | None = None,
        max_backoff: float = 30.0,
        max_reconnects: int | None = None,
        loop: bool = False,
    ) -> None:
        self.name = redact_uri(uri)
        if target_fps is not None and not target_fps > 0:
            raise ValueError(f"target_fps must be positive, got {target_fps!r}")
        if not (open_timeout > 0 and read_timeout > 0):
            raise ValueError("open_timeout and read_timeout must be positive")
        if max_backoff < 0 or (max_reconnects is not None and max_reconnects < 0):
            raise ValueError("max_backoff and max_reconnects must not be negative")
        self._uri = uri
        self._url, self._format, self.is_live, self._scheme = self._resolve(uri)
        self.target_fps = target_fps
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.reconnect = self.is_live if reconnect is None else (reconnect and self.is_live)
        self.max_backoff = max_backoff
        self.max_reconnects = max_reconnects
        self.loop = loop and not self.is_live
        self.native_fps = None
        self.frame_count = None
        self.width = 0
        self.height = 0
        self.frames_decoded = 0
        self.frames_kept = 0

        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._iterating = False
        self._container: Any = None  # av.container.InputContainer while connected
        self._stream: Any = None  # its av.video.stream.VideoStream
        self._pass: _Pass | None = None
        self._session = -1
        self._next_index = 0  # index of the last frame of the previous pass/session
        self._last_pts: float | None = None  # pts of the last frame yielded (any session)
        self._last_mono = 0.0  # time.monotonic() when it was yielded
        self._open_wall = time.time()  # files: wall_time = this + pts
        self._camera_offset: float | None = None  # live: camera wall clock - raw pts seconds (RTCP)
        self._local_anchor: tuple[float, float] | None = None  # live: (wall, pts) of the local clock
        self._skew_logged = False
        self._reformatter = VideoReformatter()
        self._warn_corrupt = _Throttle("source.corrupt_packet")
        self._warn_decode = _Throttle("source.decode_error")
        self._warn_jump = _Throttle("source.timestamp_jump")
        self._open_error: str | None = None
        self._finite = False

        if not self.is_live:
            path = Path(self._url)
            if not path.exists():
                raise SourceError(f"{self.name}: no such file")
            if path.is_dir():
                raise SourceError(f"{self.name}: is a directory, not a video file")
        try:
            self._connect()
        except SourceError as exc:
            if not self.reconnect:
                raise
            self._open_error = str(exc).removeprefix(f"{self.name}: ")
            log.warning("source.open_failed", source=self.name, error=self._open_error, will_retry=True)

    # ------------------------------------------------------------------ public API

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if self._iterating:
                raise RuntimeError(f"{self.name} is already being iterated")
            if self._stop.is_set():
                return
            self._iterating = True
        try:
            yield from self._run()
        finally:
            with self._lock:
                self._iterating = False
                self._stop.set()  # a source is iterated once
                self._disconnect()

    def close(self) -> None:
        """Stop iteration (also from another thread) and release the source."""
        self._stop.set()
        with self._lock:
            if not self._iterating:
                self._disconnect()

    @property
    def frames_read(self) -> int:
        """Frames read from the source so far, kept or not: the index of the latest frame seen."""
        p = self._pass
        return p.end_index() if p is not None and self._container is not None else self._next_index

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSource({self.name!r}, target_fps={self.target_fps!r})"

    # ------------------------------------------------------------------ connection

    @staticmethod
    def _resolve(uri: str) -> tuple[str, str | None, bool, str]:
        """(url for FFmpeg, forced format, is_live, scheme) for a source URI."""
        m = _USB_RE.match(uri)
        if m is not None:
            return f"/dev/video{m.group(1)}", "v4l2", True, "v4l2"
        if re.match(r"^/dev/video\d+$", uri):
            return uri, "v4l2", True, "v4l2"
        m = _SCHEME_RE.match(uri)
        if m is None:
            return uri, None, False, "file"
        scheme = m.group(1).lower()
        if scheme == "file":
            return uri[m.end() :], None, False, "file"
        if scheme in _LIVE_SCHEMES:
            return uri, None, True, scheme
        raise SourceError(
            f"{redact_uri(uri)}: unsupported source type {scheme}:// (expected a file path, rtsp://, "
            "rtsps://, http(s)://, /dev/videoN or usb:N)"
        )

    def _connect(self) -> None:
        """Open the container and its first video stream; set the public properties."""
        options: dict[str, str] = {}
        if self.is_live and self._scheme != "v4l2":
            # Probe 1 s of stream (FFmpeg's default is 5 s) before the first frame: faster (re)connects.
            options["analyzeduration"] = str(_PROBE_SECONDS * 1_000_000)
        if self._scheme in ("rtsp", "rtsps"):
            options.update(rtsp_transport="tcp", allowed_media_types="video")
        timeout = (self.open_timeout, self.read_timeout) if self.is_live else None
        started = time.monotonic()
        try:
            container: Any = av.open(
                self._url, format=self._format, container_options=options, timeout=timeout
            )
        except (av.FFmpegError, OSError, ValueError) as exc:
            # "from None": the FFmpeg exception's text carries the raw URL, credentials included.
            raise SourceError(
                f"{self.name}: cannot open: {self._explain(exc, started, self.open_timeout)}"
            ) from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.name}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = _DECODE_THREADS
        self._container, self._stream = container, stream
        self.width = stream.codec_context.width or self.width
        self.height = stream.codec_context.height or self.height
        # FFmpeg falls back to the time base (e.g. 90000) when it could not measure a rate: ignore that.
        rates = (stream.average_rate, stream.guessed_rate, stream.base_rate)
        fps = next((float(r) for r in rates if r and 0 < r <= _MAX_FPS), None)
        self.native_fps = fps or self.native_fps
        if not self.is_live:
            self.frame_count = stream.frames or None
        # A live URL with a known duration is a file served over the network (or a VOD playlist): its
        # end is the end, not a dropped connection.
        self._finite = self.is_live and container.duration is not None
        self._open_error = None

    def _disconnect(self) -> None:
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                container.close()

    def _explain(self, exc: BaseException, started: float, timeout: float) -> str:
        text = _reason(exc)
        if self.is_live and time.monotonic() - started >= 0.9 * timeout:
            text = f"no answer within {timeout:g} s ({text})"
        return text.replace(self._uri, self.name)

    def _new_pass(self, new_session: bool) -> _Pass:
        """Bookkeeping for the connection just opened: indices and pts continue from the last one."""
        stream = self._stream
        if new_session:
            self._session += 1
            self._camera_offset = None
            self._skew_logged = False
            self._local_anchor = None
        gap = 0.0
        if self._last_pts is not None:
            dur = 1.0 / self.native_fps if self.native_fps else 0.04
            # a reconnect: keep pts roughly in step with the time the stream was away
            gap = max(dur, time.monotonic() - self._last_mono) if new_session else dur
        rate = None  # sampling rate; None keeps every frame
        if self.target_fps is not None and (self.native_fps is None or self.target_fps < self.native_fps):
            rate = Fraction(self.target_fps).limit_denominator(1_000_000)
        origin = stream.start_time if not self.is_live else None
        return _Pass(
            stream.time_base,
            origin,
            self._next_index,
            (self._last_pts + gap) if self._last_pts is not None else 0.0,
            rate,
            self.native_fps or 0.0,
            fill_gaps=not self.is_live,
        )

    # ------------------------------------------------------------------ iteration

    def _run(self) -> Iterator[Frame]:
        failures = 0  # consecutive reconnect attempts without a frame
        delay = min(_BACKOFF_START, self.max_backoff)
        error = self._open_error or "not connected"
        new_session = True
        while not self._stop.is_set():
            if self._container is None:
                if not self.reconnect:
                    return
                failures += 1
                if self.max_reconnects is not None and failures > self.max_reconnects:
                    raise SourceError(
                        f"{self.name}: giving up after {failures - 1} reconnect attempt(s); last error: {error}"
                    )
                log.warning("source.reconnect", source=self.name, attempt=failures, delay=delay, error=error)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.max_backoff)
                try:
                    self._connect()
                except SourceError as exc:
                    error = str(exc).removeprefix(f"{self.name}: ")
                    continue
                log.info("source.reconnected", source=self.name, attempt=failures, session=self._session + 1)
            self._pass = self._new_pass(new_session)
            new_session = False
            read_error: str | None = None
            try:
                for frame in self._read_pass(self._pass):
                    if failures or delay != min(_BACKOFF_START, self.max_backoff):
                        failures, delay = 0, min(_BACKOFF_START, self.max_backoff)
                    yield frame
            except _ReadError as exc:
                read_error = str(exc)
            finally:
                self._next_index = self._pass.end_index()
                self._disconnect()
            if self._stop.is_set():
                return
            if not self.is_live:
                self._end_of_file(self._pass, read_error)
                if self.loop and self._pass.frames_out > 0:
                    self._connect()
                    continue
                return
            error = f"stream failed: {read_error}" if read_error else "end of stream"
            if self._finite and not read_error:
                return
            if not self.reconnect:
                if read_error:
                    raise SourceError(f"{self.name}: {error}")
                return
            new_session = True

    def _end_of_file(self, p: _Pass, read_error: str | None) -> None:
        frames = p.end_index() - p.start
        if read_error is not None:
            log.warning("source.read_error", source=self.name, error=read_error, frames=frames)
        elif self.frame_count is not None and frames < self.frame_count:
            log.warning("source.truncated", source=self.name, frames=frames, expected=self.frame_count)

    def _read_pass(self, p: _Pass) -> Iterator[Frame]:
        """Decode one connection (or one pass over a file), yielding the kept frames."""
        container, stream = self._container, self._stream
        cc = stream.codec_context
        stop = self._stop
        sampling = p.cd != 0
        want_prft = self._scheme in ("rtsp", "rtsps")
        skipping = False  # current decoder setting: skip non-reference frames
        packets = container.demux(stream)
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    packet = next(packets)
                except StopIteration:
                    return
                except (av.FFmpegError, OSError) as exc:
                    reason = self._explain(exc, started, self.read_timeout)
                    yield from self._flush(p)
                    raise _ReadError(reason) from None
                raw = packet.pts
                skip = False
                if raw is not None:
                    heapq.heappush(p.heap, raw)
                    if len(p.heap) > _MAX_PENDING:  # the decoder returns nothing: count, don't hoard
                        heapq.heappop(p.heap)
                        p.index += 1
                    if want_prft and packet.has_sidedata("prft"):
                        self._camera_clock(packet, p)
                    # Not due and nobody refers to it: the decoder parses its header and drops it.
                    skip = sampling and p.skippable(raw)
                if packet.is_corrupt:
                    self._warn_corrupt.warn(source=self.name, pts=raw)
                if skip is not skipping:
                    cc.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
                try:
                    frames = packet.decode()
                except (av.FFmpegError, ValueError) as exc:
                    self._warn_decode.warn(source=self.name, error=_reason(exc), pts=raw)
                    continue
                for vf in frames:
                    out = self._on_frame(p, vf)
                    if out is not None:
                        yield out
        finally:
            packets.close()

    def _flush(self, p: _Pass) -> Iterator[Frame]:
        """Drain frames still in the decoder after a read error."""
        cc = self._stream.codec_context
        try:
            cc.skip_frame = "DEFAULT"
            frames = cc.decode(None)
        except (av.FFmpegError, ValueError):
            return
        for vf in frames:
            out = self._on_frame(p, vf)
            if out is not None:
                yield out

    def _on_frame(self, p: _Pass, vf: av.VideoFrame) -> Frame | None:
        """Index, timestamp and sample one decoded frame; convert it only if it is kept."""
        self.frames_decoded += 1
        raw: int | None = vf.pts
        heap = p.heap
        if raw is None:
            raw = p.last_raw + p.dur_raw if p.last_raw is not None else (p.origin or 0)
            if heap and heap[0] <= raw:
                heapq.heappop(heap)
            p.index += 1
        else:
            n = 0
            while heap and heap[0] <= raw:
                n += p.count(heapq.heappop(heap))
            p.index += n or 1
            if p.last_raw is not None and raw < p.last_raw:
                self._timestamp_jump(p, raw)
        p.last_raw = raw
        if p.origin is None:
            p.set_origin(raw)
            assert p.origin is not None
        if p.cd:
            cell = ((raw - p.grid) * p.cn) // p.cd
            if p.last_cell is not None and cell <= p.last_cell:
                return None
            p.last_cell = cell
        pts = p.pts_offset + (raw - p.origin) * p.tb
        image = cast("npt.NDArray[np.uint8]", self._reformatter.reformat(vf, format="bgr24").to_ndarray())
        if not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
        self.height, self.width = image.shape[:2]
        wall = self._live_wall(raw * p.tb, pts) if self.is_live else self._open_wall + pts
        p.last_pts = pts
        p.frames_out += 1
        self._last_pts = pts
        self._last_mono = time.monotonic()
        self.frames_kept += 1
        return Frame(p.index, pts, image, wall, self._session)

    def _timestamp_jump(self, p: _Pass, raw: int) -> None:
        """The stream's clock went backwards (a discontinuity): continue pts from where they were."""
        assert p.last_raw is not None and p.origin is not None
        self._warn_jump.warn(source=self.name, back_s=round((p.last_raw - raw) * p.tb, 3))
        last_pts = p.pts_offset + (p.last_raw - p.origin) * p.tb
        p.pts_offset = last_pts + p.dur_raw * p.tb
        p.heap = [q for q in p.heap if q < p.last_raw]
        heapq.heapify(p.heap)
        p.set_origin(raw)
        p.last_cell = None
        self._camera_offset = None

    def _camera_clock(self, packet: Any, p: _Pass) -> None:
        """RTSP: the camera's wall clock for this packet (from RTCP sender reports), if plausible."""
        data = bytes(packet.get_sidedata("prft"))
        if len(data) < 8:
            return
        wallclock = struct.unpack_from("=q", data)[0] / 1e6
        skew = wallclock - time.time()
        if abs(skew) > _CAMERA_CLOCK_MAX_SKEW:
            if not self._skew_logged:
                log.warning("source.camera_clock_ignored", source=self.name, skew_s=round(skew, 1))
                self._skew_logged = True
            self._camera_offset = None
            return
        self._camera_offset = wallclock - packet.pts * p.tb

    def _live_wall(self, raw_seconds: float, pts: float) -> float:
        if self._camera_offset is not None:
            return raw_seconds + self._camera_offset
        now = time.time()
        anchor = self._local_anchor
        if anchor is not None:
            wall = anchor[0] + (pts - anchor[1])
            if abs(wall - now) <= _LOCAL_CLOCK_RESYNC:
                return wall
        self._local_anchor = (now, pts)
        return now


class _ReadError(Exception):
    """Internal: reading a connection failed (message already redacted)."""
