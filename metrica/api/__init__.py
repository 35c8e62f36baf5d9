"""Litestar application: REST, WebSocket, admin, metrics.

``create_app(Services(...))`` builds it; see `metrica.api.app` and `metrica.api.services`.
"""

from metrica.api.app import create_app
from metrica.api.services import Services

__all__ = ["Services", "create_app"]
