"""Process-wide observation hooks for the daemon's metrics, so `schedules` needs only `collector`."""

from __future__ import annotations

from connectors.sdk.http import Listener, add_listener, remove_listener

__all__ = ["Listener", "add_http_listener", "remove_http_listener"]


def add_http_listener(listener: Listener) -> None:
    """Hear ("request" | "retry", connector) from every connector's HTTP client in this process."""
    add_listener(listener)


def remove_http_listener(listener: Listener) -> None:
    """Stop hearing HTTP events; a listener never added is ignored."""
    remove_listener(listener)
