"""The exact bytes behind each item: array elements of a JSON body, elements of an XML body."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["BodyCapture", "iso", "json_array_items", "reserialised", "xml_elements"]

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds, fixed width (text order is time order); None stays None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _skip(text: str, index: int) -> int:
    match = _WS.match(text, index)
    return match.end() if match else index


def json_array_items(text: str, key: str) -> list[tuple[Any, bytes]]:
    """Each element of the top-level array ``key`` with the exact UTF-8 bytes it occupies.

    Walks the top-level object with the standard library's scanner, so each element's span
    is exactly what the source sent (after any transfer decompression). ValueError when the
    text is not a JSON object or ``key`` is not an array in it (the caller reports the file).
    """
    i = _skip(text, 0)
    if text[i:i + 1] != "{":
        raise ValueError("expected a JSON object")
    i = _skip(text, i + 1)
    while text[i:i + 1] == '"':
        name, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i:i + 1] != ":":
            raise ValueError(f"expected ':' at offset {i}")
        i = _skip(text, i + 1)
        if name == key and text[i:i + 1] == "[":
            return _elements(text, _skip(text, i + 1))
        _, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i:i + 1] == ",":
            i = _skip(text, i + 1)
    raise ValueError(f'no "{key}" array in the object')


def _elements(text: str, i: int) -> list[tuple[Any, bytes]]:
    out: list[tuple[Any, bytes]] = []
    if text[i:i + 1] == "]":
        return out
    while True:
        obj, end = _DECODER.raw_decode(text, i)
        out.append((obj, text[i:end].encode()))
        i = _skip(text, end)
        char = text[i:i + 1]
        if char == ",":
            i = _skip(text, i + 1)
        elif char == "]":
            return out
        else:
            raise ValueError(f"expected ',' or ']' at offset {i} (truncated?)")


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
