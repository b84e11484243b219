"""The exact bytes of each element of a JSON array as received, for each item's ``raw_sha256``."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import orjson

__all__ = ["split_array", "split_member"]

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
_WS_BYTES = re.compile(rb"[ \t\n\r]*")
_ARRAY_START = re.compile(rb"[ \t\n\r]*\[[ \t\n\r]*")


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
    fast = _compact(content, _ARRAY_START, None)
    return fast if fast is not None else _scan_array(content)


def _scan_array(content: bytes | str) -> list[tuple[Any, bytes]]:
    """``split_array`` by json's scanner, element by element (any spacing or spelling)."""
    text = _text(content)
    index = _skip(text, 0)
    if text[index:index + 1] != "[":
        raise ValueError("expected a JSON array")
    return _elements(text, _skip(text, index + 1))


def split_member(content: bytes | str, key: str) -> list[tuple[Any, bytes]]:
    """Each element of the array ``key`` of the top-level JSON object in ``content``, as
    (its value, its UTF-8 bytes); ValueError when ``content`` is not a JSON object or ``key``
    is not an array in it (the caller names the file or the call)."""
    start = _member_start(key)
    fast = None if start is None else _compact(content, start, key)
    return fast if fast is not None else _scan_member(content, key)


def _scan_member(content: bytes | str, key: str) -> list[tuple[Any, bytes]]:
    """``split_member`` by json's scanner, element by element (any spacing or spelling)."""
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


@functools.lru_cache(maxsize=16)
def _member_start(key: str) -> re.Pattern[bytes] | None:
    """The bytes an object starts with when its first member is the array ``key``."""
    if not key.isascii() or '"' in key or "\\" in key:
        return None
    ws = rb"[ \t\n\r]*"
    return re.compile(ws + rb'\{' + ws + b'"' + re.escape(key.encode()) + b'"' + ws + b":" + ws + rb"\[" + ws)


def _compact(content: bytes | str, start: re.Pattern[bytes], key: str | None
             ) -> list[tuple[Any, bytes]] | None:
    """The fast path for the usual shape, a compact array (first in its object for a member):
    orjson parses the whole document once, and each element's bytes are found by checking
    that orjson's own serialisation of the element is exactly what the input holds at the
    element's place. A match proves the span (a JSON value's text ends where its brackets
    close) and the value (json would parse those bytes to the same value, type and key
    order). None (use the scanner) when the document does not start so, orjson refuses it,
    or any element is written otherwise (spaces, escapes, number spellings, duplicate keys,
    integers past 64 bits): the scanner then gives the same answer, only slower."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    match = start.match(data)
    if match is None:
        return None
    pos = match.end()
    if data[pos:pos + 1] == b"{" and data[pos + 1:pos + 2] not in (b'"', b"}"):
        return None  # a pretty-printed array: not worth parsing twice
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    values = document.get(key) if key is not None and isinstance(document, dict) else document
    if not isinstance(values, list):
        return None
    out: list[tuple[Any, bytes]] = []
    last = len(values) - 1
    for index, value in enumerate(values):
        try:
            written = orjson.dumps(value)
        except TypeError:
            return None
        if not data.startswith(written, pos):
            return None
        out.append((value, written))
        pos = _WS_BYTES.match(data, pos + len(written)).end()  # type: ignore[union-attr]
        if data[pos:pos + 1] != (b"," if index < last else b"]"):
            return None
        if index < last:
            pos = _WS_BYTES.match(data, pos + 1).end()  # type: ignore[union-attr]
    if last < 0 and data[pos:pos + 1] != b"]":
        return None
    return out
