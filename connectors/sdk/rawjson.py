"""The exact bytes of each element of a JSON array as received, for each item's ``raw_sha256``."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["split_array", "split_member"]

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def _skip(text: str, index: int) -> int:
    match = _WS.match(text, index)
    return match.end() if match else index


def _text(content: bytes | str) -> str:
    return content.decode("utf-8") if isinstance(content, bytes) else content


def split_array(content: bytes | str) -> list[tuple[Any, bytes]]:
    """Each element of the top-level JSON array in ``content`` as (its value, its UTF-8 bytes).

    The bytes are the element exactly as received (after any transfer decompression), so an
    auditor who fetches the same item again can compare hashes. ValueError when ``content``
    is not a JSON array.
    """
    text = _text(content)
    index = _skip(text, 0)
    if text[index:index + 1] != "[":
        raise ValueError("expected a JSON array")
    return _elements(text, _skip(text, index + 1))


def split_member(content: bytes | str, key: str) -> list[tuple[Any, bytes]]:
    """Each element of the array ``key`` of the top-level JSON object in ``content``, as
    (its value, its UTF-8 bytes); ValueError when ``content`` is not a JSON object or ``key``
    is not an array in it (the caller names the file or the call)."""
    text = _text(content)
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
    """The elements of the array whose first element (or closing bracket) is at offset ``i``."""
    out: list[tuple[Any, bytes]] = []
    if text[i:i + 1] == "]":
        return out
    while True:
        value, end = _DECODER.raw_decode(text, i)
        out.append((value, text[i:end].encode("utf-8")))
        i = _skip(text, end)
        char = text[i:i + 1]
        if char == ",":
            i = _skip(text, i + 1)
        elif char == "]":
            return out
        else:
            raise ValueError(f"expected ',' or ']' at offset {i} (truncated?)")
