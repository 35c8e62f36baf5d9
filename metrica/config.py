"""Settings (from the environment) and the site configuration (stores, cameras, lines, zones).

A YAML file bootstraps the site configuration; the database is the source of truth afterwards. The
Structs here validate both: `load_site_config` reports a mistake with its path and reason, e.g.
``stores[0].cameras[2].lines[0].segment: expected 4 numbers``.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "CameraConfig",
    "ConfigError",
    "LineConfig",
    "Settings",
    "SiteConfig",
    "StoreConfig",
    "ZoneConfig",
    "load_site_config",
    "parse_site_config",
]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
Coordinate = Annotated[float, msgspec.Meta(ge=0, le=100_000)]
Segment = Annotated[tuple[Coordinate, Coordinate, Coordinate, Coordinate], msgspec.Meta()]
Point = tuple[Coordinate, Coordinate]


class ConfigError(ValueError):
    """A site configuration that does not validate; the message names the path and the reason."""


class LineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A counting line: a directed segment in image pixels.

    ``inside`` says which side of the segment is inside the store, by the sign of
    ``s(p) = (x2-x1)*(py-y1) - (y2-y1)*(px-x1)``: "positive" (default) makes a move from the negative to
    the positive side an "in". ``footfall``: whether this line's crossings count as store visits.
    """

    name: Name
    segment: Segment
    inside: Literal["positive", "negative"] = "positive"
    footfall: bool = True

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.segment
        if x1 == x2 and y1 == y2:
            raise ValueError("segment: the two end points are the same")


class ZoneConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A polygon in image pixels, for occupancy and dwell inside an area of the shop."""

    name: Name
    polygon: Annotated[list[Point], msgspec.Meta(min_length=3, max_length=64)]


class CameraConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A camera: ``source`` is a file path, rtsp://user:pass@host/..., /dev/videoN or usb:N.

    ``model``: detector weights (name or path); None uses the service default. ``loop`` replays a file
    forever at its own pace, as if it were a live camera (demos, tests).
    """

    name: Name
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    fps: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    model: str | None = None
    enabled: bool = True
    loop: bool = False
    lines: list[LineConfig] = []
    zones: list[ZoneConfig] = []

    def __post_init__(self) -> None:
        _unique("lines", [line.name for line in self.lines])
        _unique("zones", [zone.name for zone in self.zones])


class StoreConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A store: days, hours and reports are computed in ``timezone`` (IANA), from ``day_start_hour``."""

    name: Name
    timezone: str = "Africa/Tunis"
    day_start_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 0
    occupancy_limit: Annotated[int, msgspec.Meta(ge=1)] | None = None
    cameras: list[CameraConfig] = []

    def __post_init__(self) -> None:
        check_timezone(self.timezone)
        _unique("cameras", [camera.name for camera in self.cameras])


class SiteConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    stores: list[StoreConfig] = []

    def __post_init__(self) -> None:
        _unique("stores", [store.name for store in self.stores])


def check_timezone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timezone: unknown IANA time zone {name!r}") from exc


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind}: the name {name!r} is used twice")
        seen.add(name)


_PATH_RE = re.compile(r" - at `\$(.*)`$")
_ARRAY_LEN_RE = re.compile(r"^Expected `array` of length (\d+)")


def explain_validation_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """msgspec's "Expected `array` of length 4, got 3 - at `$.stores[0]...`" → "stores[0]...: expected 4 numbers"."""
    text = str(exc)
    match = _PATH_RE.search(text)
    path = match.group(1).lstrip(".") if match else ""
    reason = text[: match.start()] if match else text
    length = _ARRAY_LEN_RE.match(reason)
    if length and path.endswith("segment"):
        reason = f"expected {length.group(1)} numbers"
    elif reason.startswith("Object contains unknown field"):
        reason = "unknown field " + reason.removeprefix("Object contains unknown field ")
    elif reason.startswith("Object missing required field"):
        field = reason.removeprefix("Object missing required field ").strip("`")
        path, reason = (f"{path}.{field}" if path else field), "is required"
    else:
        reason = reason[:1].lower() + reason[1:]
    # A __post_init__ ValueError carries its own "field: reason"; join it to the object's path.
    if ": " in reason and not reason.startswith(("expected", "unknown", "is required")):
        field, _, rest = reason.partition(": ")
        if re.fullmatch(r"[a-z_]+", field):
            path, reason = (f"{path}.{field}" if path else field), rest
    return f"{path}: {reason}" if path else reason


def parse_site_config(data: bytes | str, *, fmt: Literal["yaml", "json"] = "yaml") -> SiteConfig:
    """Validate a site configuration document (YAML or JSON); raise `ConfigError` naming path and reason."""
    if not data.strip():
        raise ConfigError("the document is empty (expected a mapping with a `stores` list)")
    try:
        if fmt == "json":
            return msgspec.json.decode(data, type=SiteConfig)
        return msgspec.yaml.decode(data, type=SiteConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain_validation_error(exc)) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"not valid {fmt.upper()}: {' '.join(str(exc).split())}") from None


def load_site_config(path: str | Path) -> SiteConfig:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        return parse_site_config(data, fmt="json" if path.suffix == ".json" else "yaml")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "metrica"


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError


class Settings(msgspec.Struct, kw_only=True):
    """Process settings from the environment (``METRICA_*``, ``DATABASE_URL``, ``REDIS_URL``).

    With no ``DATABASE_URL``/``REDIS_URL``, `metrica demo` starts embedded servers under ``data_dir``.
    Tokens: ``admin_token`` for admin endpoints, ``viewer_token`` for read endpoints and the WebSocket
    (an admin token is also accepted where a viewer token is).
    """

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = msgspec.field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    admin_token: str | None = None
    viewer_token: str | None = None
    site_config: Path | None = None  # YAML bootstrapped into an empty database
    model: str | None = None  # default detector weights for cameras that name none
    stuck_seconds: float = 30.0  # restart an actor that delivered no frame for this long
    log_format: Literal["auto", "json", "console"] = "auto"
    # Jobs (`metrica worker`): retention of raw events, alert thresholds, webhooks.
    retention_days: Annotated[int, msgspec.Meta(ge=1)] = (
        400  # raw crossings/samples; rollups and reports stay
    )
    alert_offline_minutes: Annotated[float, msgspec.Meta(gt=0)] = 10.0  # camera not running this long → alert
    alert_low_traffic_ratio: Annotated[float, msgspec.Meta(gt=0, lt=1)] = (
        0.3  # hour below ratio × usual → alert
    )
    webhook_urls: list[str] = msgspec.field(default_factory=list)  # alerts are POSTed to each (JSON)
    webhook_secret: str | None = None  # signs webhook bodies (HMAC-SHA256, X-Metrica-Signature)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        raw: dict[str, Any] = {
            "database_url": env.get("DATABASE_URL") or None,
            "redis_url": env.get("REDIS_URL") or None,
            "host": env.get("METRICA_HOST"),
            "port": env.get("METRICA_PORT"),
            "admin_token": env.get("METRICA_ADMIN_TOKEN") or None,
            "viewer_token": env.get("METRICA_VIEWER_TOKEN") or None,
            "site_config": env.get("METRICA_CONFIG") or None,
            "model": env.get("METRICA_MODEL") or None,
            "stuck_seconds": env.get("METRICA_STUCK_SECONDS"),
            "log_format": env.get("METRICA_LOG_FORMAT"),
            "retention_days": env.get("METRICA_RETENTION_DAYS"),
            "alert_offline_minutes": env.get("METRICA_ALERT_OFFLINE_MINUTES"),
            "alert_low_traffic_ratio": env.get("METRICA_ALERT_LOW_TRAFFIC_RATIO"),
            "webhook_secret": env.get("METRICA_WEBHOOK_SECRET") or None,
        }
        if env.get("METRICA_WEBHOOK_URLS"):  # comma- or space-separated
            raw["webhook_urls"] = env["METRICA_WEBHOOK_URLS"].replace(",", " ").split()
        if env.get("METRICA_DATA_DIR"):
            raw["data_dir"] = env["METRICA_DATA_DIR"]
        raw.update(overrides)
        raw = {k: v for k, v in raw.items() if v is not None and v != ""}
        try:
            return msgspec.convert(raw, cls, strict=False, dec_hook=_decode_path)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"settings: {explain_validation_error(exc)}") from None
