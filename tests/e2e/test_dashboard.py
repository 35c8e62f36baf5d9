"""The dashboard in a real browser: Debian's Chromium driven by playwright-core (frontend/e2e/dashboard.mjs)
at a phone viewport, against the real app over a real PostgreSQL and Redis (tests/e2e/harness.py).

The script asks for server-side happenings on stdout ("@@ask crossing-in") and this test makes them happen
in the server's own event loop, so the browser sees exactly what a camera or the worker would cause. Checks
on both sides: the page (live number, stored hours, viewer refused, admin restart and line edit) and the
server (which camera was restarted, what line was stored). Screenshots land in test-output/e2e/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from metrica.db import site as site_db
from tests.api_helpers import ADMIN, VIEWER
from tests.e2e.harness import DWELL_MINUTES, REDIS_URL, REPO, YESTERDAY_HOURS, Dashboard, dashboard_server

pytestmark = pytest.mark.asyncio(loop_scope="function")

SCRIPT = REPO / "frontend" / "e2e" / "dashboard.mjs"
OUT_DIR = REPO / "test-output" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
ALERT_LAST_RUNNING = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)


def _preflight() -> str:
    node = shutil.which("node")
    assert node, "node (Node.js 20+) is needed for the browser tests"
    assert CHROMIUM.exists(), "Debian's chromium is needed: bash scripts/system-deps.sh installs it"
    assert (REPO / "frontend" / "node_modules" / "playwright-core").is_dir(), (
        "run bash scripts/setup.sh (npm ci)"
    )
    return node


async def _answer(dashboard: Dashboard, what: str, redis: Redis) -> None:
    if what == "crossing-in":
        await dashboard.ingest("in")
    elif what in ("camera-failed", "camera-running"):
        dashboard.camera_state("failed" if what == "camera-failed" else "running")
    elif what in ("alert-fired", "alert-resolved"):
        # What the alert job publishes on the store's channel (metrica.jobs.alerts: AlertView).
        alert = {
            "id": 77,
            "store_id": dashboard.store.id,
            "kind": "camera_offline",
            "subject": f"camera:{dashboard.camera.id}",
            "camera_id": dashboard.camera.id,
            "message": "Camera Entrance has not been counting for 10 min (reconnecting: timeout)",
            "details": {
                "camera": dashboard.camera.name,
                "state": "reconnecting",
                "error": "timeout",
                "last_running": ALERT_LAST_RUNNING.isoformat(),
            },
            "opened_at": datetime.now(UTC).isoformat(),
            "resolved_at": None if what == "alert-fired" else datetime.now(UTC).isoformat(),
            "resolved_message": None,
        }
        event = "fired" if what == "alert-fired" else "resolved"
        await redis.publish(dashboard.channel, json.dumps({"type": "alert", "event": event, "alert": alert}))
    elif what == "alert-while-away":
        # opened while the phone was offline: stored, its push missed; the app must fetch it on reconnect
        await dashboard.pool.execute(
            """INSERT INTO alerts (id, store_id, kind, message, details)
               VALUES (78, $1, 'occupancy', '9 people inside: above the limit of 8', $2)""",
            dashboard.store.id,
            {"inside": 9, "limit": 8},
        )
    elif what == "alert-while-away-resolved":
        row = await dashboard.pool.fetchrow("UPDATE alerts SET resolved_at = now() WHERE id = 78 RETURNING *")
        alert = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(row).items()}
        await redis.publish(
            dashboard.channel, json.dumps({"type": "alert", "event": "resolved", "alert": alert})
        )
    else:
        raise AssertionError(f"the browser script asked for something unknown: {what}")


async def _drive(dashboard: Dashboard, node: str) -> tuple[dict[str, Any], list[str]]:
    env = {
        **os.environ,
        "BASE_URL": dashboard.url,
        "ADMIN_TOKEN": ADMIN,
        "VIEWER_TOKEN": VIEWER,
        "OUT_DIR": str(OUT_DIR),
        "YESTERDAY": dashboard.yesterday.isoformat(),
        "YESTERDAY_HOURS": json.dumps(YESTERDAY_HOURS),
        "CAMERA_ID": str(dashboard.camera.id),
        "DWELL_MINUTES": str(DWELL_MINUTES),
    }
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        cwd=REPO / "frontend",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    output: list[str] = []
    result: dict[str, Any] = {}
    redis = Redis.from_url(REDIS_URL)
    try:
        async with asyncio.timeout(150):
            while raw := await proc.stdout.readline():
                line = raw.decode(errors="replace").rstrip()
                output.append(line)
                if line.startswith("@@ask "):
                    await _answer(dashboard, line.removeprefix("@@ask "), redis)
                    proc.stdin.write(b"ok\n")
                    await proc.stdin.drain()
                elif line.startswith("@@result "):
                    result = json.loads(line.removeprefix("@@result "))
            code = await proc.wait()
    finally:
        await redis.aclose()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, "\n".join(output[-40:])
    return result, output


async def test_dashboard_in_chromium(tmp_path: Path, pets: Path) -> None:
    node = _preflight()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUT_DIR.glob("*.png"):
        old.unlink()
    async with dashboard_server(tmp_path, pets / "video.mp4") as dashboard:
        line_before = dashboard.camera.lines[0]
        result, _ = await _drive(dashboard, node)
        cameras = await site_db.list_cameras(dashboard.pool)
    # Budget: the Live page rendered a live number within 1.5 s of navigation; a crossing within 1 s.
    assert 0 < result["first_render_ms"] < 1500, result
    assert result["crossing_to_screen_ms"] < 1000, result
    assert result["viewer_admin_status"] == [403, 403, 403]
    assert result["missed_alert_text"] == "Alert: 9 people inside: above the limit of 8"
    # the banner is written by the client from the alert's numbers, on the store's clock
    local = ALERT_LAST_RUNNING.astimezone(ZoneInfo(dashboard.store.timezone))
    assert result["alert_text"] == f"Alert: Camera {dashboard.camera.name} stopped counting at {local:%H:%M}"
    assert {int(h): n for h, n in result["history_hours"].items() if n} == YESTERDAY_HOURS
    # The admin's restart reached exactly that camera's actor.
    assert dashboard.actors.restarts == [dashboard.camera.id]
    # The line was moved and its inside side flipped, and the change restarted the camera (a new runtime key).
    line = cameras[0].lines[0]
    assert line.id == line_before.id and line.name == line_before.name
    assert line.inside == ("negative" if line_before.inside == "positive" else "positive")
    assert line.segment[:2] == line_before.segment[:2]
    x2, y2 = line.segment[2:]
    assert abs(x2 - 768 * 0.5) <= 3 and abs(y2 - 576 * 0.75) <= 3, line.segment
    # Started: at first, after the line change, after being enabled again; stopped for the change and the disable.
    assert dashboard.actors.started.count(dashboard.camera.id) == 3
    assert dashboard.actors.stopped.count(dashboard.camera.id) == 2
    assert cameras[0].enabled
    shots = sorted(p.name for p in OUT_DIR.glob("*.png"))
    for page in (
        "live",
        "history",
        "reports",
        "cameras-admin",
        "cameras-viewer",
        "cameras-line-editor",
        "signin",
    ):
        assert f"{page}.png" in shots, shots
    print(
        json.dumps(
            {"first_render_ms": result["first_render_ms"], "crossing_ms": result["crossing_to_screen_ms"]}
        )
    )
