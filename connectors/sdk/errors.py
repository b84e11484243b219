"""Connector errors, split by what the caller does next: retry later, fix something, or skip."""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConnectorError",
    "FatalError",
    "ItemError",
    "NotFoundError",
    "PaginationError",
    "RetriableError",
    "UnreachableError",
]


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""


class RetriableError(ConnectorError):
    """The source is temporarily unavailable (rate limit, 5xx, network): the next run retries."""


class UnreachableError(RetriableError):
    """The source's host does not resolve or refuses connections: the connector's other streams
    fail at once with the same cause this run (no request is retried), and the next run tries again."""

    def __init__(self, connector: str, cause: str) -> None:
        self.connector = connector
        self.cause = cause
        super().__init__(f"{connector}: {cause}")


class FatalError(ConnectorError):
    """The request cannot succeed as made (bad request, missing resource): report and fix."""


class AuthError(FatalError):
    """The source rejected the credentials (401/403): fix the token named in the message."""

    def __init__(self, connector: str, detail: str, env_var: str | None = None) -> None:
        self.connector = connector
        self.env_var = env_var
        hint = f"; check the token in ${env_var}" if env_var else ""
        super().__init__(f"{connector}: authentication failed ({detail}){hint}")


class NotFoundError(FatalError):
    """The resource is not there (HTTP 404): deleted, or never existed."""


class PaginationError(FatalError):
    """A paginated listing misbehaved (for example it returned a page token twice)."""


class ItemError(ConnectorError):
    """One item could not be read or parsed; the run records it and goes on without it."""
