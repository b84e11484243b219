"""Duration strings such as "30s", "15m", "1h", "1d" and "90d"."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION_LIMITS", "MAX_DURATION", "duration_limit", "format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


MAX_DURATION = timedelta(days=3650)
"""The longest duration any config key accepts (ten years): more is a typing mistake, and
"999999d" would overflow date arithmetic on every run instead of failing once at load."""

DURATION_LIMITS: dict[str, timedelta] = {
    "backfill": timedelta(days=3650),       # a first collection ten years back at most
    "interval": timedelta(days=31),         # a stream collected less than monthly is stale by design
    "seal_grace": timedelta(days=92),       # late events beyond a quarter go to an amendment
    "settle": timedelta(days=1),            # an intake file still being copied after a day is stuck
    "request_timeout": timedelta(minutes=5),
}
"""Per-key maxima, by the key's last name (``connectors.okta.backfill`` -> ``backfill``)."""


def duration_limit(key: str) -> timedelta:
    """The longest value the config key ``key`` (dotted) accepts."""
    return DURATION_LIMITS.get(key.rsplit(".", 1)[-1], MAX_DURATION)


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
