"""Bounds on what a vendor may send: the decoded size of one response, for httpx and requests clients."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from connectors.sdk.errors import FatalError

if TYPE_CHECKING:
    import requests

__all__ = ["ResponseTooLarge", "capped_body", "read_capped_requests", "requests_cap_hook"]

_CHUNK = 1 << 16


class ResponseTooLarge(FatalError):
    """A response whose body, decoded, is larger than the per-response cap."""

    def __init__(self, connector: str, method: str, url: str, limit: int) -> None:
        path = urlsplit(url).path or "/"  # the path only: a query may carry tokens or personal data
        cap = f"{limit / (1 << 20):g} MiB"
        super().__init__(f"{connector}: the answer to {method} {path} is larger than {cap} decoded "
                         "(the per-response cap, max_response_bytes)")


def capped_body(chunks: Iterable[bytes], declared: str | None, limit: int, fail: Exception) -> bytes:
    """The decoded body from ``chunks``, raising ``fail`` once it passes ``limit`` bytes (or at
    once when the Content-Length ``declared`` does, for an answer sent without encoding)."""
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise fail
    out: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise fail
        out.append(chunk)
    return b"".join(out)


def read_capped_requests(response: requests.Response, limit: int, connector: str) -> None:
    """Read a ``requests`` response's body (decoded) into it, at most ``limit`` bytes; a bigger one
    closes the response and raises ResponseTooLarge naming the request's path and the cap."""
    if getattr(response, "_content", False) is not False:  # read already (requests keeps it there)
        return
    request = response.request
    fail = ResponseTooLarge(connector, str(request.method or "GET"), str(request.url or ""), limit)
    encoded = response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")
    try:
        body = capped_body(_iter(response), None if encoded else response.headers.get("content-length"),
                           limit, fail)
    except ResponseTooLarge:
        response.close()
        raise
    response._content = body  # what ``response.content`` returns from now on


def _iter(response: requests.Response) -> Iterator[bytes]:
    yield from response.iter_content(_CHUNK)


def requests_cap_hook(limit: int, connector: str) -> Any:
    """A ``requests`` response hook that reads each body with ``read_capped_requests``: for a
    session a vendor SDK builds and reads itself (the hooks run before ``requests`` reads)."""

    def hook(response: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
        read_capped_requests(response, limit, connector)
        return response

    return hook
