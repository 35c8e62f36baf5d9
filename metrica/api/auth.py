"""Bearer tokens: a viewer token for reads and the live WebSocket, an admin token for changes.

Both tokens are required to build the app (`check_tokens`): an API that starts without them would be open
to anyone on the network, so the service refuses instead (``metrica demo`` generates them). A missing token
is 401, a wrong or insufficient one 403. Tokens are compared in constant time and never logged. Only the
WebSocket accepts ``?token=`` (browsers cannot set its headers); HTTP takes the header only, so tokens do
not end up in proxy logs.
"""

from __future__ import annotations

import hmac
from typing import Literal

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from metrica.config import ConfigError, Settings

__all__ = ["Role", "admin_guard", "authorize", "check_tokens", "token_from", "viewer_guard"]

Role = Literal["viewer", "admin"]
MIN_TOKEN_LENGTH = 8


def check_tokens(settings: Settings) -> tuple[str, str]:
    """(admin token, viewer token), or ConfigError when one is missing, too short, or both are the same."""
    admin, viewer = settings.admin_token, settings.viewer_token
    for name, token in (("admin_token", admin), ("viewer_token", viewer)):
        if not token:
            raise ConfigError(
                f"settings.{name}: is required (METRICA_{name.upper()}); the API does not run unauthenticated"
            )
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"settings.{name}: must be at least {MIN_TOKEN_LENGTH} characters")
    assert admin is not None and viewer is not None
    if admin == viewer:
        raise ConfigError("settings.viewer_token: must differ from the admin token")
    return admin, viewer


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def token_from(connection: ASGIConnection, *, allow_query: bool = False) -> str | None:
    """The bearer token of a request; "" when an Authorization header is there but is not a bearer token."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    if allow_query:
        return connection.query_params.get("token")
    return None


def authorize(token: str | None, role: Role, settings: Settings) -> tuple[int, str] | None:
    """None when ``token`` grants ``role``, else (HTTP status, reason)."""
    admin, viewer = settings.admin_token or "", settings.viewer_token or ""
    if token is None:
        return 401, "missing token: send Authorization: Bearer <token>"
    if token == "":
        return 401, "malformed Authorization header: expected Bearer <token>"
    if admin and _same(token, admin):
        return None
    if role == "viewer" and viewer and _same(token, viewer):
        return None
    if role == "admin" and viewer and _same(token, viewer):
        return 403, "this endpoint needs the admin token"
    return 403, "invalid token"


def _guard(connection: ASGIConnection, role: Role) -> None:
    settings: Settings = connection.app.state["services"].settings
    failure = authorize(token_from(connection), role, settings)
    if failure is None:
        return
    status, reason = failure
    if status == 401:
        raise NotAuthorizedException(reason, headers={"WWW-Authenticate": "Bearer"})
    raise PermissionDeniedException(reason)


def viewer_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    _guard(connection, "viewer")


def admin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    _guard(connection, "admin")
