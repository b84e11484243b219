"""Duration strings such as "30s", "15m", "1h", "1d" and "90d"."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """Parse "<integer><unit>" (units s, m, h, d, w) into a timedelta; raise ValueError otherwise."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f'expected a duration like "30s", "15m", "1h" or "90d", got "{text}"')
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """Render a timedelta in the largest unit that divides it exactly."""
    seconds = int(value.total_seconds())
    for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
