"""Who am I (the dashboard's role check) and an admin's on-demand camera snapshot for drawing lines.

A snapshot is one frame decoded from the camera's own source with the project's PyAV reader, encoded as
JPEG in memory and sent; it is never written to disk or cached (privacy: no stored images). Decoding runs
in a thread with a deadline so the event loop never waits on FFmpeg: a camera that does not answer in
time is a 504, one that refuses or fails a 502, each with a sentence that says so.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import structlog
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter

from metrica.api.auth import admin_guard, authorize, token_from, viewer_guard
from metrica.api.errors import ApiError
from metrica.api.services import Services
from metrica.db import site
from metrica.vision.source import SourceError, VideoSource, redact_uri

__all__ = ["ROUTERS", "SNAPSHOT_TIMEOUT", "Whoami", "grab_jpeg"]

log = structlog.get_logger(__name__)

Id = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
SNAPSHOT_TIMEOUT = 8.0  # seconds for the camera to hand over a first frame
_JPEG_QUALITY = 80
_MAX_WIDTH = 1920  # larger frames are scaled down: the phone draws on it, it does not need 4K
# Each snapshot holds a decoder (and for RTSP a camera connection): a few at a time is plenty.
_CONCURRENT = asyncio.Semaphore(2)


class Whoami(msgspec.Struct, kw_only=True):
    role: Literal["viewer", "admin"]


def _encode(image: npt.NDArray[np.uint8]) -> tuple[bytes, int, int]:
    import cv2

    h, w = image.shape[:2]
    if w > _MAX_WIDTH:
        scale = _MAX_WIDTH / w
        small = cv2.resize(image, (_MAX_WIDTH, round(h * scale)), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    else:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise SourceError("the frame could not be encoded as JPEG")
    return bytes(buf), w, h


def grab_jpeg(uri: str, timeout: float, cancel: threading.Event | None = None) -> tuple[bytes, int, int]:
    """(JPEG bytes, source width, source height) of the first frame of ``uri``; SourceError on failure.

    ``cancel`` set by another thread closes the source, so a caller that gave up frees the thread promptly.
    """
    source = VideoSource(uri, open_timeout=timeout, read_timeout=timeout, reconnect=False, max_reconnects=0)
    if cancel is not None:

        def close_on_cancel() -> None:
            cancel.wait()
            source.close()

        threading.Thread(target=close_on_cancel, name="snapshot-cancel", daemon=True).start()
    try:
        for frame in source:
            return _encode(frame.image)
        raise SourceError(f"{redact_uri(uri)}: the source ended before a frame")
    finally:
        source.close()
        if cancel is not None:
            cancel.set()


@get(
    "/api/whoami", summary="The role of the token sent (viewer or admin)", tags=["auth"], sync_to_thread=False
)
def whoami(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Whoami:
    admin = authorize(token_from(request), "admin", services.settings) is None
    return Whoami(role="admin" if admin else "viewer")


@get(
    "/api/admin/cameras/{camera_id:int}/snapshot",
    summary="One JPEG frame from the camera, decoded now (never stored)",
    description="504 when the camera gives no frame in time, 502 when it refuses or fails.",
    tags=["admin"],
)
async def snapshot(services: NamedDependency[Services], camera_id: Id) -> Response[bytes]:
    camera = await site.get_camera(services.pool, camera_id)
    cancel = threading.Event()
    started = time.monotonic()
    async with _CONCURRENT:
        try:
            # The reader has its own open/read time-outs; the outer deadline also covers a slow decode.
            data, width, height = await asyncio.wait_for(
                asyncio.to_thread(grab_jpeg, camera.source, SNAPSHOT_TIMEOUT, cancel), SNAPSHOT_TIMEOUT + 2
            )
        except TimeoutError:
            cancel.set()
            log.warning("snapshot.timeout", camera_id=camera_id)
            raise ApiError(
                504, f"camera {camera_id} ({camera.name}) gave no frame within {SNAPSHOT_TIMEOUT:g} s"
            ) from None
        except SourceError as exc:
            log.warning("snapshot.failed", camera_id=camera_id, error=str(exc))
            message = str(exc)
            if any(word in message.lower() for word in ("no answer", "timed out", "timeout")):
                raise ApiError(504, f"camera {camera_id} ({camera.name}) did not answer: {message}") from None
            raise ApiError(502, f"camera {camera_id} ({camera.name}) could not be read: {message}") from None
    log.info(
        "snapshot.served", camera_id=camera_id, bytes=len(data), ms=round((time.monotonic() - started) * 1000)
    )
    return Response(
        data,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Width": str(width),
            "X-Frame-Height": str(height),
        },
    )


ROUTERS = [
    Router(path="/", guards=[viewer_guard], route_handlers=[whoami], security=[{"BearerToken": []}]),
    Router(path="/", guards=[admin_guard], route_handlers=[snapshot], security=[{"BearerToken": []}]),
]
