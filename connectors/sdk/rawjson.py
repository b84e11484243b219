"""The exact bytes of each JSON array element as received (for ``raw_sha256``), and a nesting bound."""

from __future__ import annotations

import functools
import json
import re
from itertools import accumulate
from typing import Any

import orjson

__all__ = ["check_depth", "split_array", "split_member"]

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


# Every byte but the four brackets and the quote, deleted by ``bytes.translate`` (a C loop).
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'[]{}"')
# With escapes: the backslash and every character that may follow one in JSON (b f n r t u /)
# kept too, the letters as one marker ("x"), so an escape stays two bytes and no two backslashes
# become neighbours that were not neighbours in the text.
_ESCAPED = bytes.maketrans(b"bfnrtu/", b"xxxxxxx")
_NOT_ESCAPE_VIEW = bytes(range(256)).translate(None, b'[]{}"\\bfnrtu/')
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_CHUNK = 1 << 20


def check_depth(content: bytes, limit: int) -> None:
    """ValueError when the JSON document ``content`` nests arrays and objects deeper than ``limit``.

    A pre-scan before a recursive parser (``json``'s C scanner recurses once per level and
    raises RecursionError near 1,000; 100,000 levels fit in 600 gzipped bytes). Exact for
    valid JSON, in C-speed passes: every byte but brackets and quotes is dropped (escapes
    first, where there are any), then each bracket-free string (``""``, almost all of them),
    so only brackets and the rare strings holding one are left to count: 12% of the time of a
    ``json.loads`` of the same 41 MiB CloudTrail file, 34% when every other record holds an
    escaped, indented policy document (``bench/cloudtrail_limits.py [--policies]``). For
    invalid JSON the count may be off after the first error, where every parser stops anyway.
    """
    if b"\\" in content:
        # Escaped backslashes first (left to right, in pairs), so none is taken to escape what
        # follows; then every other escape (a quote or a marked letter); then the markers.
        view = content.translate(_ESCAPED, _NOT_ESCAPE_VIEW)
        view = view.replace(b"\\\\", b"").replace(b'\\"', b"").replace(b"\\x", b"")
        kept = view.translate(None, b"x\\").replace(b'""', b"")
    else:
        kept = content.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in kept:  # strings with a bracket inside: keep what lies between them
        kept = b"".join(kept.split(b'"')[::2])
    level = 0
    for start in range(0, len(kept), _CHUNK):  # in chunks, so a bracket bomb stops at its first MiB
        levels = list(accumulate(map(_STEP.__getitem__, kept[start:start + _CHUNK]), initial=level))
        if max(levels) > limit:
            raise ValueError(f"JSON nests deeper than {limit} levels")
        level = levels[-1]
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
