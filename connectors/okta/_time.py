"""Okta's timestamp form: UTC with milliseconds, fixed width, so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_okta", "parse_okta"]


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
