"""What every client shares without importing an HTTP library: the per-request retry policy,
and the request/retry events the daemon's metrics hear from every connector."""

from __future__ import annotations

import random
from collections.abc import Callable

from connectors.sdk.base import HttpOptions

__all__ = ["RETRY_STATUSES", "Listener", "add_listener", "emit", "remove_listener", "retry_wait"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Listener = Callable[[str, str], None]
"""Called with (event, connector) for "request" and "retry" events; feeds metrics."""

# Process-wide listeners (the daemon's metrics) hear every client, however a connector built it.
_LISTENERS: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Hear (event, connector) from every client in this process."""
    _LISTENERS.append(listener)


def remove_listener(listener: Listener) -> None:
    """Stop hearing events; a listener never added is ignored."""
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


def emit(event: str, connector: str) -> None:
    """Tell process-wide listeners about a "request" (each attempt) or a "retry"; for connectors
    whose vendor SDK sends requests itself (boto3, PyGithub, jira)."""
    for listener in tuple(_LISTENERS):
        listener(event, connector)


def retry_wait(attempt: int, options: HttpOptions, asked: float | None, rng: random.Random) -> float:
    """Back-off before retry ``attempt`` (1-based): full jitter, never less than the server asked."""
    ceiling = min(options.max_backoff, options.backoff * (2 ** (attempt - 1)))
    jittered = rng.uniform(ceiling / 2, ceiling)
    return max(jittered, asked or 0.0)
