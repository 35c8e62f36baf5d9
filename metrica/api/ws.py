"""WS /ws/stores/{id}/live: the store's `LiveState` at once, then every change the hub publishes.

The socket is accepted first and then closed with a code the browser can read (a refused handshake gives a
page only an opaque 1006): 4401 no token, 4403 wrong token, 4404 unknown store. The token comes from
``?token=`` (browsers cannot set WebSocket headers) or ``Authorization: Bearer``. The subscription starts
before the current state is sent, so no change falls between the two; a client keeps the highest ``seq``.
"""

from __future__ import annotations

import structlog
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from metrica.api.auth import authorize, token_from
from metrica.api.metrics import AppRuntime
from metrica.api.services import Services

__all__ = ["CLOSE_FORBIDDEN", "CLOSE_UNAUTHORIZED", "CLOSE_UNKNOWN_STORE", "live_socket"]

log = structlog.get_logger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_STORE = 4404


@websocket("/ws/stores/{store_id:int}/live")
async def live_socket(
    socket: WebSocket,
    store_id: FromPath[int],
    channels: NamedDependency[ChannelsPlugin],
    services: NamedDependency[Services],
) -> None:
    await socket.accept()
    failure = authorize(token_from(socket, allow_query=True), "viewer", services.settings)
    if failure is not None:
        status, reason = failure
        log.info("ws.refused", store_id=store_id, status=status)
        await socket.close(code=CLOSE_UNAUTHORIZED if status == 401 else CLOSE_FORBIDDEN, reason=reason)
        return
    if store_id not in services.hub.store_ids:
        await socket.close(code=CLOSE_UNKNOWN_STORE, reason=f"unknown store {store_id}")
        return
    runtime: AppRuntime = socket.app.state["runtime"]
    runtime.ws_subscribers += 1
    log.info("ws.opened", store_id=store_id, subscribers=runtime.ws_subscribers)
    try:
        async with channels.start_subscription(services.channel(store_id)) as subscriber:
            await socket.send_text(services.hub.state_json(store_id).decode())
            async with subscriber.run_in_background(socket.send_text):
                while (await socket.receive())["type"] != "websocket.disconnect":
                    continue  # the client has nothing to say; reading notices it leaving
    except WebSocketDisconnect:
        pass
    finally:
        runtime.ws_subscribers -= 1
        log.info("ws.closed", store_id=store_id, subscribers=runtime.ws_subscribers)
