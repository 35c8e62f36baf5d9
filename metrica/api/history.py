"""TODO(history): routes filled in by issue 4/5 work. Export ROUTERS: the Routers app.py mounts."""

from __future__ import annotations

from typing import Any

ROUTERS: list[Any] = []
