"""`Sealer.seal_due(now)`: the daemon's hourly sealing, as of a given instant, without touching the sealer."""

from __future__ import annotations

from seal_helpers import Env, add, record, utc

from collector.records import format_ts


def test_seal_due_seals_each_due_window_once_as_of_now(env: Env) -> None:
    """Every ended window past its grace is sealed, oldest first and stamped `now`; once the due
    window is sealed the next call writes nothing; the sealer's own clock is never changed."""
    add(env.store, [record("2026-09-10T12:00:00"), record("2026-10-10T12:00:00")])
    sealer = env.sealer()
    clock = sealer.clock
    now = utc("2026-11-02T00:00:01")  # October ended, and its day of grace has passed
    done = sealer.seal_due(now)
    assert [(s.window_id, s.reproduced) for s in done] == [("2026-09", False), ("2026-10", False)]
    assert env.store.snapshots()[0].sealed_at == format_ts(now)
    assert sealer.clock is clock
    assert sealer.seal_due(now) == []
    assert sealer.seal_due(utc("2026-11-30T00:00:00")) == []  # November has not ended


def test_seal_due_waits_for_the_grace_period(env: Env) -> None:
    """A window that ended less than the grace period ago is not due yet; the one before it is."""
    add(env.store, [record("2026-10-10T12:00:00")])
    assert [s.window_id for s in env.sealer().seal_due(utc("2026-11-01T12:00:00"))] == ["2026-09"]
