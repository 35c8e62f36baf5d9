"""`metrica demo` as a new user runs it: no database or Redis URLs, everything embedded under a data dir."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import websockets

from tests.conftest import SEQUENCES

pytestmark = pytest.mark.slow

METRICA = str(Path(sys.executable).with_name("metrica"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _servers_under(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and ("postgres" in cmdline or "redis-server" in cmdline):
            found.append(proc)
    return found


async def _counts_move(port: int, token: str, timeout: float) -> tuple[int, int]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stores/1/live?token={token}") as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        before = first["visitors_in"] + first["visitors_out"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            after = state["visitors_in"] + state["visitors_out"]
            if after > before:
                return before, after
    raise AssertionError("no crossing reached the WebSocket")


def test_demo_serves_health_and_live_counts(tmp_path: Path) -> None:
    if not (SEQUENCES / "PETS09-S2L1" / "video.mp4").exists():
        pytest.skip("../shared footage is needed")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    port = _free_port()
    data_dir = tmp_path / "demo"
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [METRICA, "demo", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
    try:
        deadline = time.monotonic() + 120
        while "Metrica is running" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "demo did not start in 120 s"
            time.sleep(0.5)
        text = log_path.read_text()
        viewer = re.search(r"Viewer token\s+(\S+)", text)
        admin = re.search(r"Admin token\s+(\S+)", text)
        assert viewer and admin and viewer.group(1) != admin.group(1)
        assert f"http://127.0.0.1:{port}/api/health" in text

        health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()
        assert health["database"] is True
        assert [a["name"] for a in health["actors"]] == ["Entrance"]
        stores = httpx.get(
            f"http://127.0.0.1:{port}/api/stores",
            headers={"Authorization": f"Bearer {viewer.group(1)}"},
            timeout=10,
        ).json()
        assert stores[0]["name"] == "Demo shop"

        before, after = asyncio.run(_counts_move(port, viewer.group(1), timeout=90))
        assert after > before
        running = " ".join(" ".join(p.cmdline()) for p in _servers_under(data_dir))
        assert "postgres" in running and "redis-server" in running, running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log_path.read_text()[-3000:]
    time.sleep(1)
    assert not _servers_under(data_dir), "embedded PostgreSQL or Redis left running after the demo stopped"
    assert (data_dir / "tokens.json").stat().st_mode & 0o077 == 0
