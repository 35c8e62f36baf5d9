"""Throwaway PostgreSQL for tests: scratch databases on the shared server, and a private cluster to kill.

* `temp_database(admin_dsn)` / `create_database` / `drop_database`: a uniquely named database
  (``metrica_t_<hex>``) on the shared server, so parallel test runs never collide.
* `PrivateCluster`: initdb + pg_ctl on a free port under a temp dir, for tests that stop the server
  (``stop("fast")``, ``stop("immediate")``) and start it again. Run as root, the binaries run as the
  ``postgres`` OS user (initdb refuses root). ``private_cluster`` is a module-scoped fixture around it;
  other modules can use it once ``tests/conftest.py`` has ``pytest_plugins = ["tests.pgcluster"]``, or
  build their own fixture from the class.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import asyncpg
import pytest

__all__ = [
    "ADMIN_DSN",
    "PrivateCluster",
    "create_database",
    "drop_database",
    "private_cluster",
    "temp_database",
]

ADMIN_DSN = os.environ.get("METRICA_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _with_database(dsn: str, database: str) -> str:
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


async def _create(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database(admin_dsn: str = ADMIN_DSN, prefix: str = "metrica_t") -> str:
    """Create ``<prefix>_<hex>`` and return its DSN (blocking; call it from a sync fixture)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create(admin_dsn, name))
    return _with_database(admin_dsn, name)


def drop_database(dsn: str, admin_dsn: str = ADMIN_DSN) -> None:
    name = dsn.partition("?")[0].rsplit("/", 1)[1]
    assert name.startswith("metrica_"), f"refusing to drop {name!r}: not a test database"
    asyncio.run(_drop(admin_dsn, name))


@contextlib.contextmanager
def temp_database(admin_dsn: str = ADMIN_DSN, prefix: str = "metrica_t") -> Iterator[str]:
    dsn = create_database(admin_dsn, prefix)
    try:
        yield dsn
    finally:
        drop_database(dsn, admin_dsn)


def _bindir() -> Path | None:
    env = os.environ.get("METRICA_PG_BINDIR")
    candidates = [Path(env)] if env else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(Path(which).parent)
    for path in candidates:
        if (path / "pg_ctl").exists() and (path / "initdb").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """A PostgreSQL server of our own: ``start()``, ``stop(mode)``, ``start()`` again, ``destroy()``."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or _bindir()
        if found is None:
            raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl); set METRICA_PG_BINDIR")
        self.bindir = found
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="metrica-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> str:
        cmd = [str(self.bindir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{log}")
        return done.stdout

    def start(self) -> None:
        # fsync off: a stop -m immediate is not an OS crash, the page cache survives it; commits stay
        # synchronous, so what the server acknowledged is in its WAL and survives crash recovery.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=40 -c shared_buffers=32MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    def create_database(self, name: str) -> str:
        asyncio.run(_create(self.dsn, name))
        return self.dsn_for(name)

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[PrivateCluster]:
    try:
        cluster = PrivateCluster()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with cluster:
        yield cluster
