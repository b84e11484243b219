"""What every client shares without importing an HTTP library: the per-request retry policy,
and the request/retry events the daemon's metrics hear from every connector."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from connectors.sdk.base import HttpOptions

__all__ = ["RETRY_STATUSES", "Listener", "add_listener", "emit", "remove_listener", "retry_wait",
           "unreachable_cause"]

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


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: causes, contexts, urllib3's ``reason``, and
    exceptions passed as arguments (requests wraps urllib3's that way), each once."""
    todo: list[Any] = [exc]
    seen: set[int] = set()
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None),
                     *current.args])


def _where(exc: BaseException) -> tuple[str, int | None] | None:
    """The host (and port) a wrapped exception says it was connecting to, if it says."""
    for attribute in ("request", "conn", "pool"):
        try:
            value = getattr(exc, attribute, None)
        except RuntimeError:  # httpx: an error raised without its request
            continue
        url = getattr(value, "url", None)
        if url is not None and "://" in str(url):
            parts = urlsplit(str(url))
            if parts.hostname:
                return parts.hostname, parts.port
        host = getattr(value, "host", None)
        if isinstance(host, str) and host:
            port = getattr(value, "port", None)
            return host, port if isinstance(port, int) else None
    kwargs = getattr(exc, "kwargs", None)  # botocore's EndpointConnectionError
    endpoint = kwargs.get("endpoint_url") if isinstance(kwargs, dict) else None
    if isinstance(endpoint, str) and "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.hostname:
            return parts.hostname, parts.port
    return None


def unreachable_cause(exc: BaseException, host: str | None = None) -> str | None:
    """``"name does not resolve: HOST"`` or ``"connection refused: HOST:PORT"`` when ``exc``
    (from httpx, requests, urllib3 or botocore, however wrapped) is a failure to reach the host
    at all, else None. ``host`` names it when the exceptions do not."""
    chain = list(_chain(exc))
    where = next((w for w in map(_where, chain) if w is not None), None)
    name = where[0] if where else (host or "the source's host")
    for error in chain:
        if isinstance(error, socket.gaierror):
            return f"name does not resolve: {name}"
        if isinstance(error, ConnectionRefusedError):
            port = f":{where[1]}" if where and where[1] else ""
            return f"connection refused: {name}{port}"
    return None
