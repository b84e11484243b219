"""Replicas on PostgreSQL: one schedule shared by every replica, and the turn each job takes under its lock.

Every replica schedules each stream at the same instants: ``ANCHOR + phase + n * interval``,
the phase a stable hash of the stream id spread over the interval (so streams drift apart as
the single daemon's random jitter makes them, but identically on every replica). At each of
those instants every live replica tries the stream's advisory lock (waiting ``lock_wait``);
the one that gets it checks the store for a run of the stream that started at or after the
instant (another replica's, which held the lock a moment before), and runs the stream only
when there is none.
So a stream runs once per interval however many replicas there are, and when the replica
that would have run it is gone, another runs it at the next instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from math import floor

from apscheduler.triggers.interval import IntervalTrigger

from storage.locks import JobLocks, lock_key

__all__ = ["ANCHOR", "aligned_trigger", "job_turn", "lock_wait", "phase_of", "slot_start"]

ANCHOR = datetime(2000, 1, 3, tzinfo=UTC)
"""The instant every replica counts intervals from (a Monday, midnight UTC)."""


def phase_of(stream: str, interval: timedelta) -> float:
    """Seconds after each interval's start at which ``stream`` is due, in [0, interval):
    the same on every replica and after every restart."""
    millis = max(1, int(interval.total_seconds() * 1000))
    return (lock_key(stream) % millis) / 1000


def slot_start(stream: str, interval: timedelta, now: datetime) -> datetime:
    """The latest instant at or before ``now`` at which ``stream`` was due."""
    seconds = max(1.0, interval.total_seconds())
    first = ANCHOR + timedelta(seconds=phase_of(stream, interval))
    n = (now - first).total_seconds() // seconds
    return first + timedelta(seconds=n * seconds)


class _AlignedTrigger(IntervalTrigger):  # type: ignore[misc]  # APScheduler 3 has no types
    """An interval trigger that stays on ``start_date + n * interval`` after a run at another
    instant (APScheduler's counts on from the previous run: the start-up catch-up would move
    every later run of the stream off the instants the other replicas share)."""

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime | None:
        if previous_fire_time is None:
            found: datetime | None = super().get_next_fire_time(None, now)
            return found
        start, step = self.start_date.timestamp(), self.interval_length
        n = floor((previous_fire_time.timestamp() - start) / step + 1e-6) + 1
        due = start + n * step
        if due <= previous_fire_time.timestamp():  # never the same instant twice
            due += step
        return datetime.fromtimestamp(due, tz=self.timezone)


def aligned_trigger(stream: str, interval: timedelta, zone: tzinfo) -> IntervalTrigger:
    """The stream's trigger: due at the shared instants of ``slot_start`` (no random jitter),
    whenever the replica started and whatever it ran at start."""
    seconds = max(1.0, interval.total_seconds())
    start = ANCHOR + timedelta(seconds=phase_of(stream, interval))
    return _AlignedTrigger(seconds=seconds, start_date=start, timezone=zone)


def lock_wait(interval: timedelta) -> float:
    """How long a replica waits for a stream's lock at a due instant: a tenth of the interval,
    between 0.1 s and 2 s. Every replica tries at the same instant; the ones that wait get the
    lock in turn and find the run already made, unless its holder died before starting it
    (then the first waiter runs it, instead of the stream missing a whole interval)."""
    return min(2.0, max(0.1, interval.total_seconds() / 10))


@contextmanager
def job_turn(locks: JobLocks | None, name: str, wait: float = 0.0) -> Iterator[bool]:
    """True while this replica may run job ``name`` (always, without locks: SQLite's one daemon);
    False when another replica held the job's lock throughout ``wait`` seconds."""
    if locks is None:
        yield True
        return
    with locks.hold(name, wait) as got:
        yield got
