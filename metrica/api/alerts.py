"""Alert routes: a store's alerts, open ones first for the phone's banner (`metrica.jobs.alerts` makes them)."""

from __future__ import annotations

from typing import Annotated

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from metrica.api.auth import viewer_guard
from metrica.api.services import Services
from metrica.db import site
from metrica.jobs.alerts import AlertView, list_alerts

__all__ = ["ROUTERS", "alerts_router"]

Id = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
MAX_LIST = 500


@get(
    "/api/stores/{store_id:int}/alerts",
    summary="The store's alerts, newest first",
    description=(
        "`open=true`: only the alerts not resolved yet. `limit`: 1..500 (default 50). Answer: a JSON list of"
        " `{id, store_id, kind, subject, camera_id, message, details, opened_at, resolved_at,"
        " resolved_message}`; `kind` is `occupancy` (more people inside than the store's limit),"
        " `camera_offline` (`subject` `camera:{id}`: not counting for the configured minutes) or"
        " `low_traffic` (the last hour far below the usual for that weekday and hour); times are UTC."
        ' Changes are also pushed on the live WebSocket as `{type: "alert", event: "fired"|"resolved",'
        " alert}` and POSTed to the configured webhooks."
    ),
    tags=["alerts"],
)
async def get_alerts(
    services: NamedDependency[Services],
    store_id: Id,
    open: Annotated[bool, QueryParameter()] = False,  # the query parameter's public name
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST)] = 50,
) -> list[AlertView]:
    await site.get_store(services.pool, store_id)  # 404 for an unknown store, not an empty list
    return await list_alerts(services.pool, store_id, open_only=open, limit=limit)


alerts_router = Router(
    path="/",
    guards=[viewer_guard],
    route_handlers=[get_alerts],
    security=[{"BearerToken": []}],
)

ROUTERS: list[Router] = [alerts_router]
