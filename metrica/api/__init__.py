"""Litestar application: REST, WebSocket, admin, metrics."""
