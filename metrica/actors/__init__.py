"""asyncio actors: the supervisor and its camera actors, the event writer and the live hub."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from metrica.events import ActorInfo
from metrica.site import Camera


class ActorControl(Protocol):
    """What the API needs of the supervisor."""

    def status(self) -> list[ActorInfo]: ...

    async def restart(self, camera_id: int) -> None:
        """Restart that camera's actor (a new process); KeyError if no actor runs for it."""
        ...

    async def apply(self, cameras: Sequence[Camera]) -> None:
        """Converge to this configuration: start new/enabled, stop removed/disabled, restart changed."""
        ...
