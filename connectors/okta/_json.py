"""Split a JSON array response into its elements' exact bytes, for each item's ``raw_sha256``."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["split_array"]

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def _skip(text: str, index: int) -> int:
    match = _WS.match(text, index)
    return match.end() if match else index


def split_array(content: bytes) -> list[tuple[bytes, Any]]:
    """Each element of the top-level JSON array in ``content`` as (its bytes, its value).

    The bytes are the element exactly as received, so an auditor who fetches the same item
    again can compare hashes. ValueError when ``content`` is not a JSON array.
    """
    text = content.decode("utf-8")
    index = _skip(text, 0)
    if text[index:index + 1] != "[":
        raise ValueError("expected a JSON array")
    index = _skip(text, index + 1)
    if text[index:index + 1] == "]":
        return []
    elements: list[tuple[bytes, Any]] = []
    while True:
        value, end = _DECODER.raw_decode(text, index)
        elements.append((text[index:end].encode("utf-8"), value))
        index = _skip(text, end)
        separator = text[index:index + 1]
        if separator == "]":
            return elements
        if separator != ",":
            raise ValueError(f"unexpected {separator!r} at offset {index}")
        index = _skip(text, index + 1)
