"""What the API needs from the rest of the service, handed to `metrica.api.create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
from litestar.channels import ChannelsBackend

from metrica.actors import ActorControl
from metrica.actors.live import LiveHub
from metrica.config import Settings

__all__ = ["Services"]


@dataclass
class Services:
    """The parts the API drives; their lifecycles belong to the caller (the app never closes the pool).

    ``writer``: the `EventWriter`, read for metrics only (``written``, ``duplicates``, ``outbox_depth``,
    ``db_up``); None when this process writes no events. ``channels_backend``: where live states fan out;
    None picks `RedisChannelsPubSubBackend` when ``settings.redis_url`` is set (several API processes then
    push the same changes), else an in-memory backend. ``channel_prefix`` is put before ``store.{id}``
    (Redis pub/sub channels are server-wide: two deployments on one Redis need different prefixes).
    ``frontend_dir``: the built frontend served at ``/``; None looks for ``frontend/dist`` beside the
    package and serves nothing if it is not there.
    """

    settings: Settings
    pool: asyncpg.Pool
    actors: ActorControl
    hub: LiveHub
    writer: object | None = None
    channels_backend: ChannelsBackend | None = None
    channel_prefix: str = ""
    frontend_dir: Path | None = None
    tick_interval: float = 1.0  # how often the app calls hub.tick() (day rollover, inflow window)

    def channel(self, store_id: int) -> str:
        return f"{self.channel_prefix}store.{store_id}"
