"""`create_app(services)`: the Litestar application (REST, WebSocket, admin, metrics, OpenAPI, frontend)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import structlog
from litestar import Litestar, Request, Response, get
from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from metrica.api import alerts, history, reports, snapshot
from metrica.api.auth import check_tokens
from metrica.api.errors import exception_handlers
from metrica.api.metrics import AppRuntime, RequestMetricsMiddleware, ServiceCollector
from metrica.api.routes import admin_router, public_router, viewer_router
from metrica.api.services import Services
from metrica.api.ws import live_socket

__all__ = ["create_app"]

log = structlog.get_logger(__name__)

_DEFAULT_FRONTEND = Path(__file__).resolve().parents[2] / "frontend" / "dist"


def _channels_backend(services: Services) -> ChannelsBackend:
    if services.channels_backend is not None:
        return services.channels_backend
    if services.settings.redis_url:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        return RedisChannelsPubSubBackend(redis=Redis.from_url(services.settings.redis_url))
    return MemoryChannelsBackend()


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime: AppRuntime = request.app.state["runtime"]
    return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(services: Services, *, debug: bool = False) -> Litestar:
    """The API over ``services``. Raises `metrica.config.ConfigError` when the tokens are missing or weak.

    While the app runs it wires ``services.hub.publish`` to the channel ``store.{id}`` and ticks the hub
    every ``services.tick_interval`` seconds (day rollover, inflow window). The pool, the actors and the
    writer stay the caller's: the app neither starts nor closes them.
    """
    check_tokens(services.settings)
    runtime = AppRuntime()
    runtime.registry.register(ServiceCollector(services, runtime))
    channels = ChannelsPlugin(
        backend=_channels_backend(services),
        arbitrary_channels_allowed=True,
        # Only the newest state matters to a slow phone: drop the oldest queued ones.
        subscriber_max_backlog=64,
        subscriber_backlog_strategy="dropleft",
    )
    ticker: list[asyncio.Task[None]] = []

    def publish(store_id: int, data: bytes) -> None:
        channels.publish(data, services.channel(store_id))

    async def on_startup() -> None:
        services.hub.publish = publish
        ticker.append(asyncio.create_task(services.hub.run(services.tick_interval)))
        log.info("api.started", stores=services.hub.store_ids)

    async def on_shutdown() -> None:
        if services.hub.publish is publish:
            services.hub.publish = None
        for task in ticker:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ticker.clear()

    route_handlers: list[Any] = [public_router, viewer_router, admin_router, live_socket, metrics]
    for module in (history, reports, alerts, snapshot):  # one module per feature, each with its own guards
        route_handlers.extend(module.ROUTERS)
    frontend = services.frontend_dir or _DEFAULT_FRONTEND
    if (frontend / "index.html").is_file():
        route_handlers.append(
            create_static_files_router(
                path="/", directories=[frontend], html_mode=True, include_in_schema=False, name="frontend"
            )
        )

    app = Litestar(
        route_handlers=route_handlers,
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        plugins=[channels],
        exception_handlers=exception_handlers,
        middleware=[DefineMiddleware(RequestMetricsMiddleware, runtime=runtime)],
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        openapi_config=OpenAPIConfig(
            title="Metrica",
            version="0.1.0",
            description="Anonymous foot-traffic counts from a shop's cameras. Send Authorization: Bearer <token>.",
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        signature_namespace={"Services": Services},
        debug=debug,
    )
    app.state["services"] = services
    app.state["runtime"] = runtime
    return app
