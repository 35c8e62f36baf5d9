"""Errors of the database layer, in words the API can hand to a person.

`NotFoundError` and `ConflictError` carry a sentence fit for a 404/409 body ("camera 42 not found");
`DatabaseUnavailable` names the server (host, port, database) and never a password. Validation errors
are `metrica.config.ConfigError` (path and reason), the same as for a YAML file.
"""

from __future__ import annotations

__all__ = ["ConflictError", "DatabaseUnavailable", "MigrationError", "NotFoundError"]


class NotFoundError(LookupError):
    """A row the caller named does not exist, e.g. "camera 42 not found"."""


class ConflictError(ValueError):
    """A unique name is taken, e.g. "a camera named 'door' already exists in store 1"."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached (refused, timed out, shutting down); the message has no password."""


class MigrationError(RuntimeError):
    """A migration cannot be applied, or an applied one was changed afterwards (checksum mismatch)."""
