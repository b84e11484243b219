"""Jira timestamps, JQL date literals in the user's zone, and the [updated, keys...] cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.jira._time import Position, jql_date, parse_jira_time, utc_text
from connectors.sdk.errors import FatalError
from connectors.sdk.items import KEEP, json_leq

NEW_YORK = ZoneInfo("America/New_York")


def test_jira_timestamps_parse_to_utc() -> None:
    """Jira's ``+hhmm`` offsets and ISO variants parse to the same UTC instant."""
    expected = datetime(2026, 1, 14, 23, 22, 33, 123000, tzinfo=UTC)
    for text in ("2026-01-15T10:22:33.123+1100", "2026-01-14T23:22:33.123Z", "2026-01-14T23:22:33.123+00:00"):
        assert parse_jira_time(text) == expected
    with pytest.raises(ValueError):
        parse_jira_time("2026-01-14T23:22:33")


def test_jql_dates_are_wall_time_in_the_users_zone() -> None:
    """The literal is the instant's wall time in the user's zone, floored to the minute."""
    at = datetime(2026, 7, 1, 12, 30, 59, tzinfo=UTC)
    assert jql_date(at, ZoneInfo("Australia/Sydney")) == "2026-07-01 22:30"
    assert jql_date(at, ZoneInfo("Pacific/Pago_Pago")) == "2026-07-01 01:30"
    assert jql_date(at, ZoneInfo("UTC")) == "2026-07-01 12:30"


def test_a_repeated_dst_hour_is_read_early_enough() -> None:
    """In the hour a fall-back repeats, the literal moves an hour earlier so neither reading is late."""
    first = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)  # 01:45 EDT, before the clocks go back
    literal = jql_date(first, NEW_YORK)
    assert literal == "2026-11-01 00:45"
    second = datetime(2026, 11, 1, 6, 45, tzinfo=UTC)  # 01:45 EST, the second 01:45
    assert jql_date(second, NEW_YORK) == "2026-11-01 01:45"
    for at in (first, second, datetime(2026, 3, 8, 7, 10, tzinfo=UTC)):  # and across spring-forward
        wall = datetime.strptime(jql_date(at, NEW_YORK), "%Y-%m-%d %H:%M")
        assert max(wall.replace(tzinfo=NEW_YORK, fold=f).astimezone(UTC) for f in (0, 1)) <= at


def test_an_unknown_zone_reads_fourteen_hours_early() -> None:
    """Without the user's zone, the literal is early enough in every zone from UTC-12 to UTC+14."""
    at = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    literal = datetime.strptime(jql_date(at, None), "%Y-%m-%d %H:%M")
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "UTC"):
        assert literal.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) <= at


def test_the_cursor_grows_and_skips_what_was_stored() -> None:
    """Keys at the same instant are appended, a later instant starts afresh, and the value never
    moves backwards; issues at or before the start position are seen."""
    t1 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    t2 = t1 + timedelta(milliseconds=1)
    position = Position([utc_text(t1), "CHG-9"])
    assert position.seen(t1, "CHG-9") and position.seen(t1 - timedelta(seconds=1), "CHG-1")
    assert not position.seen(t1, "CHG-10") and not position.seen(t2, "CHG-9")
    values = [position.advance(t1, "CHG-10"), position.advance(t2, "CHG-2"), position.advance(t2, "CHG-11")]
    assert values == [[utc_text(t1), "CHG-9", "CHG-10"], [utc_text(t2), "CHG-2"], [utc_text(t2), "CHG-2", "CHG-11"]]
    start: object = [utc_text(t1), "CHG-9"]
    for value in values:
        assert json_leq(start, value)
        start = value
    assert position.advance(t1, "CHG-1") is KEEP  # an out-of-order older issue never moves it back


@pytest.mark.parametrize("bad", [{"updated": "x"}, ["not a time"], [1, "CHG-1"], []])
def test_an_unreadable_stored_cursor_is_fatal(bad: object) -> None:
    """A cursor that is not [updated, keys...] stops the stream with a FatalError, not a crash."""
    with pytest.raises(FatalError, match="cursor"):
        Position(bad)
