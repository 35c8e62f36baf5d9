"""Migrations against the real PostgreSQL: once each, recorded, safe to run twice or at once, edits caught."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from metrica.db.errors import DatabaseUnavailable, MigrationError
from metrica.db.migrate import (
    default_sql_dir,
    find_migrations,
    migrate,
    timescale_available,
    timescale_installed,
)
from metrica.db.pool import create_pool, describe_dsn
from tests.pgcluster import create_database, drop_database


@pytest.fixture
def dsn() -> Iterator[str]:
    dsn = create_database()
    try:
        yield dsn
    finally:
        drop_database(dsn)


async def test_applies_each_migration_once_and_records_it(dsn: str) -> None:
    names = [m.name for m in find_migrations()]
    assert names[:2] == ["001_schema.sql", "002_timescale.sql"]
    assert await migrate(dsn) == names
    assert await migrate(dsn) == []  # up to date: nothing applied

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
        )
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        # Plain PostgreSQL: 002 was recorded but left the time series as plain tables.
        available = await timescale_available(conn)
        installed = await timescale_installed(conn)
    finally:
        await conn.close()
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in find_migrations()]
    assert [r["name"] for r in rows][:2] == ["001_schema.sql", "002_timescale.sql"]
    assert all(len(r["checksum"]) == 64 and r["applied_at"] is not None for r in rows)
    assert {
        "stores",
        "cameras",
        "lines",
        "zones",
        "crossings",
        "occupancy_samples",
        "camera_status",
    } <= tables
    assert not available and not installed


async def test_migrate_takes_a_connection_or_a_pool(dsn: str) -> None:
    pool = await create_pool(dsn, max_size=2)
    try:
        assert len(await migrate(pool)) >= 2
        async with pool.acquire() as conn:
            assert await migrate(conn) == []
    finally:
        await pool.close()


async def test_two_processes_migrating_at_once_take_turns(dsn: str) -> None:
    a = await asyncpg.connect(dsn)
    b = await asyncpg.connect(dsn)
    try:
        first, second = await asyncio.gather(migrate(a), migrate(b))
        versions = await a.fetch("SELECT version FROM schema_migrations")
    finally:
        await a.close()
        await b.close()
    # One of them applied everything, the other found it done; nothing failed, nothing ran twice.
    assert sorted([first, second], key=len) == [[], [m.name for m in find_migrations()]]
    assert len(versions) == len(find_migrations())


async def test_an_applied_migration_edited_afterwards_is_reported(dsn: str, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql)
    await migrate(dsn, sql_dir=sql)
    (sql / "001_schema.sql").write_text((sql / "001_schema.sql").read_text() + "\n-- an afterthought\n")
    (sql / "900_more.sql").write_text("CREATE TABLE more_stuff (id integer);")
    with pytest.raises(MigrationError, match=r"001_schema.sql: checksum mismatch"):
        await migrate(dsn, sql_dir=sql)
    conn = await asyncpg.connect(dsn)
    try:  # nothing after the mismatch was applied
        assert await conn.fetchval("SELECT to_regclass('more_stuff')") is None
    finally:
        await conn.close()


async def test_a_failing_migration_is_rolled_back_and_named(dsn: str, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql)
    (sql / "900_broken.sql").write_text("CREATE TABLE half_done (id integer);\nSELECT * FROM no_such_table;")
    with pytest.raises(MigrationError, match=r"900_broken.sql: UndefinedTableError"):
        await migrate(dsn, sql_dir=sql)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None  # its own transaction
        assert (
            await conn.fetchval("SELECT max(version) FROM schema_migrations") == find_migrations()[-1].version
        )
    finally:
        await conn.close()
    (sql / "900_broken.sql").write_text("CREATE TABLE half_done (id integer);")
    assert await migrate(dsn, sql_dir=sql) == ["900_broken.sql"]


def test_two_files_with_one_version_are_refused(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "001_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="share version 1"):
        find_migrations(tmp_path)
    with pytest.raises(MigrationError, match="no migrations directory"):
        find_migrations(tmp_path / "missing")


async def test_an_unreachable_database_is_named_without_its_password() -> None:
    dsn = "postgresql://metrica:hunter2@127.0.0.1:1/metrica"
    with pytest.raises(DatabaseUnavailable) as caught:
        await migrate(dsn)
    assert "127.0.0.1:1/metrica" in str(caught.value) and "hunter2" not in str(caught.value)
    with pytest.raises(DatabaseUnavailable) as caught:
        await create_pool(dsn, timeout=2)
    assert "127.0.0.1:1" in str(caught.value) and "hunter2" not in str(caught.value)
    assert (
        describe_dsn("postgresql://u:pw@/db?host=/run/postgresql&password=pw") == "u@/run/postgresql:5432/db"
    )
