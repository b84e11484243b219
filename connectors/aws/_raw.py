"""The exact bytes behind each item: the response body a client parsed, elements of an XML body."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["BodyCapture", "iso", "reserialised", "xml_elements"]


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds, fixed width (text order is time order); None stays None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def xml_elements(body: bytes, tag: str) -> list[bytes]:
    """The exact bytes of every ``<tag>…</tag>`` element (for AWS query-protocol list members)."""
    pattern = re.compile(rb"<" + re.escape(tag.encode()) + rb">.*?</" + re.escape(tag.encode()) + rb">",
                         re.DOTALL)
    return pattern.findall(body)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(type(value).__name__)


def reserialised(obj: Any) -> bytes:
    """Sorted-key JSON of an item as botocore parsed it; only when the wire bytes are not available
    (a stubbed client never sends a request)."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_SORT_KEYS)


class BodyCapture:
    """Keeps the body of the last response a client parsed for one operation (per thread).

    Registered on ``before-parse.<service>.<operation>``; with retries, the last attempt wins,
    which is the one whose parsed result the caller receives.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def attach(self, client: Any, service_id: str, operation: str) -> None:
        """Register on ``client`` once (idempotent per client and operation)."""
        name = f"before-parse.{service_id}.{operation}"
        client.meta.events.register(name, self._hook, unique_id=f"evidence-collector-{id(self)}-{name}")

    def _hook(self, response_dict: dict[str, Any] | None = None, **_: Any) -> None:
        body = (response_dict or {}).get("body")
        self._local.body = body if isinstance(body, bytes) else None

    def take(self) -> bytes | None:
        """The captured body (then forgotten), or None when no request was sent."""
        body: bytes | None = getattr(self._local, "body", None)
        self._local.body = None
        return body
