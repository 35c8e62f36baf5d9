"""asyncpg connections with the codecs the service expects, and errors that name the server, not the password.

``jsonb``/``json`` values are decoded with msgspec, so a zone's polygon comes back as a list of lists.
A DSN is a URI (``postgresql://user:pass@host:port/db``, or ``...?host=/run/postgresql`` for a socket);
`describe_dsn` is the only form of it that may reach a log or an error message.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import msgspec

from metrica.db.errors import DatabaseUnavailable

__all__ = ["BAD_DATA", "connect", "create_pool", "describe_dsn", "is_unavailable"]

_json_encoder = msgspec.json.Encoder()

# asyncpg prepares every statement; after five runs PostgreSQL may switch it to a generic plan that cannot see
# the parameters, and for the time-range queries here (a year of one store, the late rows since a watermark)
# that plan walks the store's whole history: the 1-year traffic report went from 12 ms to 80-110 ms on its
# sixth run (`metrica bench-rollups`). JIT compilation costs more than it saves on these short queries.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}


def _encode_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("jsonb", "json"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_encode_json, decoder=msgspec.json.decode, format="text"
        )


def describe_dsn(dsn: str) -> str:
    """``user@host:port/database`` of a DSN, without its password (or any other query secret)."""
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host") or ["localhost"])[0]
        port = parts.port or int((query.get("port") or ["5432"])[0])
        database = parts.path.lstrip("/") or (query.get("dbname") or [""])[0]
        user = parts.username or (query.get("user") or [""])[0]
    except ValueError:
        return "<unparsable database URL>"
    return f"{user + '@' if user else ''}{host}:{port}/{database}"


# What a lost or refused connection looks like: the server is down, restarting, shutting us out, or too
# busy. Retrying later may succeed. Bad data (class 22/23) and bugs (class 42) are not in this list.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, DNS
    TimeoutError,  # connect or statement timeout (asyncio.TimeoutError is TimeoutError in 3.11)
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin/crash shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.InvalidCatalogNameError,  # the database is not there (yet)
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # class 28: auth refused
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing"
    DatabaseUnavailable,
)


# asyncpg's client-side "invalid input for query argument" is an InterfaceError too, but it is bad data.
BAD_DATA: tuple[type[BaseException], ...] = (
    asyncpg.DataError,  # class 22, from the server
    asyncpg.IntegrityConstraintViolationError,  # class 23: CHECK, NOT NULL, ...
    asyncpg.exceptions._base.DataError,  # from the client, before anything is sent
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database cannot be reached now" (retry later) rather than "bad query"."""
    return isinstance(exc, _UNAVAILABLE) and not isinstance(exc, BAD_DATA)


def _unavailable(dsn: str, exc: BaseException) -> DatabaseUnavailable:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        reason = "timed out"
    return DatabaseUnavailable(f"database {describe_dsn(dsn)} is unavailable: {reason}")


async def connect(
    dsn: str, *, timeout: float = 10.0, command_timeout: float | None = 60.0
) -> asyncpg.Connection:
    """One connection with the service's codecs; `DatabaseUnavailable` when the server cannot be reached."""
    try:
        conn = await asyncpg.connect(
            dsn, timeout=timeout, command_timeout=command_timeout, server_settings=SERVER_SETTINGS
        )
    except Exception as exc:
        if is_unavailable(exc):
            raise _unavailable(dsn, exc) from None
        raise
    try:
        await _init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0
) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb with msgspec.

    ``timeout`` bounds each connection attempt (and the whole start-up), so an unreachable server fails fast
    with `DatabaseUnavailable` naming host, port and database.
    """
    pool = asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        command_timeout=60.0,
        init=_init_connection,
        server_settings=SERVER_SETTINGS,
    )
    try:
        # create_pool's own connect timeout covers one attempt; this one covers all of them.
        async with asyncio.timeout(timeout + 1.0):
            await pool
    except Exception as exc:
        pool.terminate()
        if is_unavailable(exc):
            raise _unavailable(dsn, exc) from None
        raise
    return pool
