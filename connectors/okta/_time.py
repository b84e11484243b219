"""Okta's timestamp form: UTC with milliseconds, fixed width, so text order is time order."""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_okta", "normalise_okta", "parse_okta"]

_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def format_okta(moment: datetime) -> str:
    """``2026-11-28T07:16:25.123Z`` (the instant truncated to the millisecond)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_okta(text: str) -> datetime:
    """An Okta timestamp as an aware UTC datetime; ValueError when it is not one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return moment.astimezone(UTC)


def normalise_okta(text: str) -> str:
    """An Okta timestamp in the fixed-width form; ValueError when it is not a timestamp."""
    if _CANONICAL.fullmatch(text):
        return text  # what Okta sends: skip the parse, this runs once per event
    return format_okta(parse_okta(text))
