"""Canonical JSON (RFC 8785 / JCS) for the evidence record profile, and the hashes built on it.

The record profile admits strings, integers within +/-(2**53 - 1), booleans, null, lists and
objects with ASCII string keys. Inside that profile, orjson with sorted keys emits exactly
the JCS bytes (a property test holds this against the reference ``rfc8785`` package), so the
hot path is one C call. ``check_profile`` rejects anything outside the profile first.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from collector.errors import RecordError

__all__ = ["MAX_SAFE_INT", "canonical", "check_profile", "sha256_hex"]

MAX_SAFE_INT = 2**53 - 1
_OPTS = orjson.OPT_SORT_KEYS


def check_profile(value: Any, path: str = "$") -> None:
    """Raise RecordError naming the JSON path of the first value outside the record profile."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                raise RecordError(f"{path}: object key {key!r} is not an ASCII string")
            # Scalars are checked inline: one call per container, not per leaf (hot path).
            t = type(item)
            if t is str or t is bool or item is None or (
                t is int and -MAX_SAFE_INT <= item <= MAX_SAFE_INT
            ):
                continue
            check_profile(item, f"{path}.{key}")
        return
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            t = type(item)
            if t is str or t is bool or item is None or (
                t is int and -MAX_SAFE_INT <= item <= MAX_SAFE_INT
            ):
                continue
            check_profile(item, f"{path}[{index}]")
        return
    if kind is str or kind is bool or value is None:
        return
    if kind is int:
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return
        raise RecordError(f"{path}: integer {value} is outside +/-(2**53-1); format it as a string")
    if kind is float:
        raise RecordError(f"{path}: floats are not in the record profile; format it as a string")
    raise RecordError(f"{path}: {kind.__name__} is not in the record profile")


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 bytes of a value already inside the record profile."""
    try:
        return orjson.dumps(value, option=_OPTS)
    except TypeError as exc:  # orjson refuses surrogates and non-str keys
        raise RecordError(f"value cannot be canonicalised: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()
