"""Observation windows: IDs, bounds in a time zone, and gap-free succession."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.errors import InputError
from collector.windows import parse_window, window_containing, windows_between


@pytest.mark.parametrize(
    ("moment", "period", "ident"),
    [
        (datetime(2026, 11, 28, 12, tzinfo=UTC), "week", "2026-W48"),
        (datetime(2026, 11, 28, 12, tzinfo=UTC), "month", "2026-11"),
        (datetime(2026, 11, 28, 12, tzinfo=UTC), "quarter", "2026-Q4"),
        (datetime(2027, 1, 1, 12, tzinfo=UTC), "week", "2026-W53"),
    ],
)
def test_window_ids(moment: datetime, period: str, ident: str) -> None:
    """A moment falls in the ISO week, month or quarter named by the DESIGN's IDs."""
    window = window_containing(moment, period, "UTC")
    assert window.id == ident and window.contains(moment)
    assert parse_window(ident, "UTC") == window


def test_time_zone_moves_the_boundary() -> None:
    """Windows are calendar periods in the configured zone: Berlin's November starts on Oct 31 UTC."""
    window = parse_window("2026-11", "Europe/Berlin")
    assert window.start == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert window_containing(datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "month",
                             "Europe/Berlin").id == "2026-11"


def test_windows_are_consecutive_and_gap_free() -> None:
    """Each window starts exactly where the previous one ended."""
    windows = list(windows_between(datetime(2025, 12, 20, tzinfo=UTC),
                                   datetime(2026, 3, 5, tzinfo=UTC), "month", "America/New_York"))
    assert [w.id for w in windows] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    for before, after in zip(windows, windows[1:], strict=False):
        assert before.end == after.start and after.previous() == before


@pytest.mark.parametrize("bad", ["2026-13", "2026-W54", "2026-Q5", "last-month", "2026-11-01"])
def test_malformed_ids_are_input_errors(bad: str) -> None:
    """A malformed window ID is a clear input error naming it."""
    with pytest.raises(InputError, match=bad):
        parse_window(bad, "UTC")


@pytest.mark.parametrize("ident", ["0001-01", "1969-12", "9999-12", "9999-W52", "0001-W01", "0500-Q1"])
def test_windows_in_implausible_years_are_refused(ident: str) -> None:
    """A mistyped year would seal a genesis in year 1 (every later seal then catches up month by
    month since) or overflow the calendar: refused as bad input."""
    with pytest.raises(InputError, match="outside 1970-9998"):
        parse_window(ident, "UTC")


def test_window_ids_keep_four_digit_years() -> None:
    assert window_containing(datetime(1999, 3, 1, tzinfo=UTC), "month", "UTC").id == "1999-03"
    assert parse_window("1970-01", "UTC").previous().id == "1969-12"
