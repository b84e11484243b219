"""Observation windows: calendar weeks, months and quarters in a time zone, with their IDs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from collector.errors import InputError

__all__ = ["PERIODS", "Window", "parse_window", "window_containing", "windows_between"]

PERIODS = ("week", "month", "quarter")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass(frozen=True, slots=True)
class Window:
    """A calendar period ``[start, end)``; the bounds are aware datetimes in UTC."""

    id: str
    period: str
    start: datetime
    end: datetime
    zone: str

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside ``[start, end)``."""
        return self.start <= moment < self.end

    def next(self) -> Window:
        """The window that starts where this one ends."""
        return window_containing(self.end, self.period, self.zone)

    def previous(self) -> Window:
        """The window that ends where this one starts."""
        return window_containing(self.start - timedelta(microseconds=1), self.period, self.zone)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _build(period: str, first: date, after: date, ident: str, zone: str) -> Window:
    tz = ZoneInfo(zone)
    return Window(ident, period, _local_midnight(first, tz), _local_midnight(after, tz), zone)


def _month_after(year: int, month: int, months: int) -> date:
    index = year * 12 + (month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def window_containing(moment: datetime, period: str, zone: str) -> Window:
    """The ``period`` window (in time zone ``zone``) that contains ``moment``."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    local = moment.astimezone(ZoneInfo(zone)).date()
    if period == "week":
        year, week, weekday = local.isocalendar()
        first = local - timedelta(days=weekday - 1)
        return _build(period, first, first + timedelta(days=7), f"{year:04d}-W{week:02d}", zone)
    if period == "month":
        first = local.replace(day=1)
        return _build(period, first, _month_after(local.year, local.month, 1),
                      f"{local.year:04d}-{local.month:02d}", zone)
    if period == "quarter":
        quarter = (local.month - 1) // 3 + 1
        first = date(local.year, 3 * quarter - 2, 1)
        return _build(period, first, _month_after(first.year, first.month, 3),
                      f"{local.year:04d}-Q{quarter}", zone)
    raise ValueError(f"unknown period {period!r}")


FIRST_YEAR, LAST_YEAR = 1970, 9998
"""Windows outside these years are typing mistakes: a sealed genesis in year 1 would make every
later seal catch up month by month since then, and year 9999 has no window after it."""


def _year(ident: str, year: int) -> int:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InputError(f"window {ident!r}: year {year} is outside {FIRST_YEAR}-{LAST_YEAR}")
    return year


def parse_window(ident: str, zone: str) -> Window:
    """The window named ``2026-W48``, ``2026-11`` or ``2026-Q4``; InputError when malformed."""
    if m := _WEEK.match(ident):
        _year(ident, int(m.group(1)))
        year, week = int(m.group(1)), int(m.group(2))
        try:
            first = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise InputError(f"window {ident!r}: {year} has no ISO week {week}") from None
        return _build("week", first, first + timedelta(days=7), ident, zone)
    if m := _MONTH.match(ident):
        year, month = _year(ident, int(m.group(1))), int(m.group(2))
        if not 1 <= month <= 12:
            raise InputError(f"window {ident!r}: month must be 01-12")
        return _build("month", date(year, month, 1), _month_after(year, month, 1), ident, zone)
    if m := _QUARTER.match(ident):
        year, quarter = _year(ident, int(m.group(1))), int(m.group(2))
        first = date(year, 3 * quarter - 2, 1)
        return _build("quarter", first, _month_after(year, first.month, 3), ident, zone)
    raise InputError(f"window {ident!r}: expected an ID like 2026-W48, 2026-11 or 2026-Q4")


def windows_between(start: datetime, end: datetime, period: str, zone: str) -> Iterator[Window]:
    """Consecutive windows from the one containing ``start`` to the one containing ``end``."""
    window = window_containing(start, period, zone)
    while window.start <= end:
        yield window
        window = window.next()
