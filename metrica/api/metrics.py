"""Prometheus metrics at /metrics and structlog request logging, with a registry per app.

Camera, writer and hub figures are read when Prometheus scrapes (a custom collector), so nothing has to
push them. Request latency is labelled by route template (``/api/stores/{store_id:int}``), never by raw
path: ids would make unbounded label sets, and a query string may carry a token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from metrica.api.services import Services
from metrica.events import ActorState

__all__ = ["AppRuntime", "RequestMetricsMiddleware", "ServiceCollector"]

log = structlog.get_logger(__name__)

_STATES: tuple[ActorState, ...] = ("starting", "running", "reconnecting", "backing_off", "stopped", "failed")


@dataclass
class AppRuntime:
    """Per-app mutable state: the metrics registry and the live WebSocket count."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    ws_subscribers: int = 0
    latency: Histogram = field(init=False)

    def __post_init__(self) -> None:
        self.latency = Histogram(
            "metrica_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )


class ServiceCollector(Collector):
    """Reads the supervisor, the writer and the hub at scrape time."""

    def __init__(self, services: Services, runtime: AppRuntime) -> None:
        self.services = services
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        fps = GaugeMetricFamily(
            "metrica_camera_fps", "Processed frames per second", labels=["camera_id", "camera"]
        )
        state = GaugeMetricFamily(
            "metrica_camera_state", "1 for the actor's current state", labels=["camera_id", "camera", "state"]
        )
        restarts = CounterMetricFamily(
            "metrica_camera_restarts",
            "Actor restarts since the service started",
            labels=["camera_id", "camera"],
        )
        try:
            actors = self.services.actors.status()
        except Exception:  # a scrape must not fail because the supervisor is busy
            log.exception("metrics.actors_failed")
            actors = []
        for a in actors:
            labels = [str(a.camera_id), a.name]
            fps.add_metric(labels, a.fps)
            restarts.add_metric(labels, a.restarts)
            for s in _STATES:
                state.add_metric([*labels, s], 1.0 if a.state == s else 0.0)
        yield fps
        yield state
        yield restarts

        writer = self.services.writer
        if writer is not None:
            yield _counter(
                "metrica_events_written", "Events stored in the database", getattr(writer, "written", 0)
            )
            yield _counter(
                "metrica_events_duplicates",
                "Events already stored (replays)",
                getattr(writer, "duplicates", 0),
            )
            yield _gauge(
                "metrica_outbox_depth", "Events waiting in the outbox", getattr(writer, "outbox_depth", 0)
            )
            yield _gauge(
                "metrica_db_up", "1 when the writer reaches the database", bool(getattr(writer, "db_up", 0))
            )
        yield _gauge("metrica_ws_subscribers", "Open live WebSocket connections", self.runtime.ws_subscribers)
        hub = self.services.hub
        yield _counter("metrica_live_events", "Crossings applied by the live hub", hub.events)
        yield _counter(
            "metrica_live_duplicates", "Crossings the live hub had already counted", hub.duplicates
        )


def _gauge(name: str, doc: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: Any) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))


class RequestMetricsMiddleware:
    """Times each HTTP request, observes the latency histogram and logs method, path, status and ms."""

    def __init__(self, app: ASGIApp, runtime: AppRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", ""))
            self.runtime.latency.labels(method, route, str(status)).observe(elapsed)
            # The path only: the query string may hold a token (WebSocket) or be long.
            log.info(
                "http.request", method=method, path=scope["path"], status=status, ms=round(elapsed * 1000, 2)
            )
