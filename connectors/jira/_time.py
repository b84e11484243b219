"""Jira timestamps, the connector's cursor, and JQL date literals in the API user's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.sdk.errors import FatalError
from connectors.sdk.items import KEEP

__all__ = ["Position", "jql_date", "parse_jira_time", "utc_text"]

# Every real zone's offset lies within UTC-12..UTC+14: a UTC wall time this much earlier is
# early enough whatever zone Jira reads it in.
_ANY_ZONE_MARGIN = timedelta(hours=14)


def parse_jira_time(text: str) -> datetime:
    """``2026-01-15T10:22:33.123+1100`` (Jira's format; ISO 8601 variants too) as aware UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {text!r}")
    return parsed.astimezone(UTC)


def utc_text(when: datetime) -> str:
    """Fixed-width RFC 3339 UTC with microseconds, so texts sort as instants do."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jql_date(at_or_before: datetime, zone: ZoneInfo | None) -> str:
    """A JQL ``"yyyy-MM-dd HH:mm"`` literal that Jira reads as an instant no later than
    ``at_or_before``.

    Jira reads JQL dates in the searching user's profile time zone, not UTC, and a literal
    has no offset. So the instant is written as wall time in that zone (from ``/myself``),
    floored to the minute; a wall time that occurs twice (the hour a DST change repeats) is
    moved an hour earlier so either reading is early enough. Without a known zone, the UTC
    wall time 14 hours earlier is early enough in every zone. Reading early is safe: the
    stream skips what it has already stored, by cursor.
    """
    if zone is None:
        return (at_or_before.astimezone(UTC) - _ANY_ZONE_MARGIN).strftime("%Y-%m-%d %H:%M")
    target = at_or_before
    for _ in range(3):
        wall = target.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
        latest = max(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
        if latest <= at_or_before:
            return wall.strftime("%Y-%m-%d %H:%M")
        target -= timedelta(hours=1)
    return (at_or_before.astimezone(UTC) - _ANY_ZONE_MARGIN).strftime("%Y-%m-%d %H:%M")


class Position:
    """Where a stream is: the latest ``updated`` stored and the keys stored at exactly that instant.

    The cursor is the list ``[updated, key, key, ...]``: keys are appended in the order they
    are stored, so the value only grows (lexicographically) as the run goes on, and a re-read
    of the boundary instant skips exactly the issues already stored there.
    """

    def __init__(self, value: Any) -> None:
        if value is None:
            self.updated: datetime | None = None
            self.keys: list[str] = []
        elif (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            try:
                self.updated = parse_jira_time(value[0])
            except ValueError as exc:
                raise FatalError(f"jira: the stored cursor {value[0]!r} is not a timestamp") from exc
            self.keys = list(value[1:])
        else:
            raise FatalError(f"jira: the stored cursor is not [updated, keys...]: {value!r}")
        self._start = (self.updated, frozenset(self.keys))

    def seen(self, updated: datetime, key: str) -> bool:
        """The issue in this state was stored by an earlier run (it is at or before the start)."""
        since, keys = self._start
        return since is not None and (updated < since or (updated == since and key in keys))

    def advance(self, updated: datetime, key: str) -> Any:
        """The cursor once this issue is stored; KEEP for an issue older than the position."""
        if self.updated is None or updated > self.updated:
            self.updated, self.keys = updated, [key]
        elif updated == self.updated:
            if key not in self.keys:
                self.keys.append(key)
        else:
            return KEEP
        return [utc_text(self.updated), *self.keys]
