"""Every error answer is JSON ``{"status_code": N, "detail": "a sentence a person can act on"}``.

Bad input is a 4xx naming the field and the reason; database errors the caller can fix map to 404/409/400;
an unreachable database is a 503 that says so; anything else is a 500 with no stack trace in the body
(it goes to the log).
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from metrica.config import ConfigError
from metrica.db.errors import ConflictError, DatabaseUnavailable, NotFoundError
from metrica.db.pool import is_unavailable

__all__ = ["ApiError", "error_response", "exception_handlers"]

log = structlog.get_logger(__name__)


class ApiError(HTTPException):
    """An HTTP error with a chosen status and detail, raised by the routes."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail=detail, status_code=status_code)


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        content={"status_code": status_code, "detail": detail},
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")


def _validation_detail(exc: ValidationException) -> str:
    """Litestar's "Validation failed for POST /x" + extra [{key, message, source}] → "fps: expected ≤ 60"."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts: list[str] = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "")).strip()
        key = str(item.get("key", ""))
        source = getattr(item.get("source"), "value", item.get("source"))
        m = _MSGSPEC_PATH.search(message)
        if m:
            message = message[: m.start()]
            key = (key + m.group(1)) if key else m.group(1).lstrip(".")
        if key == "data" or (source == "body" and key.startswith("data")):
            key = "body" + key.removeprefix("data")
        elif source == "body" and key:
            key = f"body.{key}"
        elif source in ("query", "path", "header") and key:
            key = f"{source} parameter {key}"
        message = message[:1].lower() + message[1:]
        # A __post_init__ ValueError reads "field: reason": join the field to the object's path.
        field, sep, rest = message.partition(": ")
        if sep and re.fullmatch(r"[a-z_]+", field):
            key, message = f"{key}.{field}" if key else field, rest
        parts.append(f"{key}: {message}" if key else message)
    if not parts:
        detail = str(exc.detail)
        return detail if detail and not detail.startswith("Validation failed") else "invalid request"
    return "; ".join(parts)


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        detail = _validation_detail(exc)
    elif exc.status_code == 404 and exc.detail == "Not Found":
        detail = f"no such resource: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    else:
        detail = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code >= 500:
        log.error(
            "http.error", method=request.method, path=request.url.path, status=exc.status_code, detail=detail
        )
    return error_response(exc.status_code, detail, headers)


def _not_found(_: Request[Any, Any, Any], exc: NotFoundError) -> Response[Any]:
    return error_response(404, str(exc) or "not found")


def _conflict(_: Request[Any, Any, Any], exc: ConflictError) -> Response[Any]:
    return error_response(409, str(exc) or "conflict")


def _config_error(_: Request[Any, Any, Any], exc: ConfigError) -> Response[Any]:
    return error_response(400, str(exc) or "invalid configuration")


def _unavailable_detail(exc: BaseException) -> str:
    if isinstance(exc, DatabaseUnavailable) and str(exc):
        return str(exc)
    reason = "timed out" if isinstance(exc, TimeoutError) else (type(exc).__name__)
    return f"the database is unavailable ({reason}); try again shortly"


def _other(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_unavailable(exc):
        log.warning("http.database_unavailable", path=request.url.path, error=type(exc).__name__)
        return error_response(503, _unavailable_detail(exc), {"Retry-After": "5"})
    log.exception("http.unhandled", method=request.method, path=request.url.path, error=type(exc).__name__)
    return error_response(500, "internal error: the service logged the details")


exception_handlers: ExceptionHandlersMap = {
    HTTPException: _http_exception,
    NotFoundError: _not_found,
    ConflictError: _conflict,
    ConfigError: _config_error,
    Exception: _other,
}
