"""Reading the System Log (``/api/v1/logs``) page by page, for okta.system_log and okta.users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from connectors.sdk.errors import FatalError
from connectors.sdk.rawjson import split_array

if TYPE_CHECKING:
    # A type only: the HTTP client (httpx) loads when the connector opens its session.
    from connectors.sdk.http import HttpClient

__all__ = ["log_pages"]


def log_pages(client: HttpClient, params: dict[str, str], stream: str) -> Iterator[list[tuple[Any, bytes]]]:
    """Each page of ``/api/v1/logs`` for ``params``, as its events with their exact bytes; ends at
    the first empty page even if Okta offers a next link (the log's window is read out). A page
    that is not a JSON list is a FatalError naming ``stream``."""
    for _, response in client.pages("/api/v1/logs", params=params):
        try:
            events = split_array(response.content)
        except ValueError as exc:
            raise FatalError(f"{stream}: /api/v1/logs did not return a list ({exc})") from exc
        if not events:
            return
        yield events
