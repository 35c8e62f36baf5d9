"""Apply the numbered SQL migrations (``sql/NNN_name.sql``) once each, in order.

Each file runs in its own transaction and is recorded in ``schema_migrations`` with its sha256, so a
second run applies nothing and a file edited after it was applied is reported (`MigrationError`) instead
of silently diverging. A session advisory lock makes two processes that migrate at once take turns: the
second one finds everything applied.

The files are read from ``sql/`` at the repository root (``Path(__file__).parents[2] / "sql"``), which is
where they are for a checkout or an editable install. An installed wheel does not carry them: pass
``sql_dir`` or set ``METRICA_SQL_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import asyncpg
import msgspec
import structlog

from metrica.db.errors import MigrationError
from metrica.db.pool import connect

__all__ = [
    "Migration",
    "default_sql_dir",
    "find_migrations",
    "migrate",
    "timescale_available",
    "timescale_installed",
]

log = structlog.get_logger(__name__)

# Any constant shared by every migrating process will do; this one spells "metrica".
_LOCK_KEY = 0x6D6574726963

_FILE_RE = re.compile(r"^(\d{3,})_[A-Za-z0-9_\-]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,          -- sha256 of the file as applied
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str  # the file name, e.g. "001_schema.sql"
    checksum: str
    sql: str


def default_sql_dir() -> Path:
    env = os.environ.get("METRICA_SQL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "sql"


def find_migrations(sql_dir: Path | None = None) -> list[Migration]:
    """The migrations in ``sql_dir``, by version; two files with one version number is an error."""
    sql_dir = sql_dir or default_sql_dir()
    if not sql_dir.is_dir():
        raise MigrationError(f"{sql_dir}: no migrations directory (set METRICA_SQL_DIR)")
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.iterdir()):
        match = _FILE_RE.match(path.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{sql_dir}: {found[version].name} and {path.name} share version {version}")
        data = path.read_bytes()
        found[version] = Migration(version, path.name, hashlib.sha256(data).hexdigest(), data.decode())
    return [found[v] for v in sorted(found)]


async def migrate(
    conn_or_dsn: asyncpg.Connection | asyncpg.Pool | str, *, sql_dir: Path | None = None
) -> list[str]:
    """Apply the pending migrations; return the names of those applied (empty when up to date)."""
    migrations = find_migrations(sql_dir)
    if isinstance(conn_or_dsn, str):
        conn = await connect(conn_or_dsn)
        try:
            return await _migrate(conn, migrations)
        finally:
            await conn.close()
    if isinstance(conn_or_dsn, asyncpg.Pool):
        async with conn_or_dsn.acquire() as pooled:
            return await _migrate(pooled, migrations)
    return await _migrate(conn_or_dsn, migrations)


async def _migrate(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    # Session lock, taken before CREATE TABLE: two concurrent CREATE TABLE IF NOT EXISTS can still collide.
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        applied = {row["version"]: row for row in rows}
        for m in migrations:
            row = applied.get(m.version)
            if row is not None and row["checksum"] != m.checksum:
                raise MigrationError(
                    f"{m.name}: checksum mismatch: the file changed after it was applied as {row['name']} "
                    "(write a new migration instead of editing an applied one)"
                )
        known = {m.version for m in migrations}
        for version, row in applied.items():
            if version not in known:
                log.warning("migrate.unknown_version", version=version, name=row["name"])
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                continue
            async with conn.transaction():
                try:
                    await conn.execute(m.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{m.name}: {type(exc).__name__}: {exc}") from exc
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("migrate.applied", version=m.version, name=m.name)
            done.append(m.name)
        return done
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def timescale_available(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether the server offers the timescaledb extension (002_timescale.sql then uses it)."""
    value = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
    )
    return bool(value)


async def timescale_installed(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether this database has the timescaledb extension created (hypertables are in use)."""
    value = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    return bool(value)
