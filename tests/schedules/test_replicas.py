"""Replicas: advisory locks on a real PostgreSQL, runs once per interval, a killed replica's streams, SQLite's one daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _daemon import REPO, DaemonProcess, write_config
from sqlalchemy import select

from collector.collect import plan_streams
from collector.config import load_settings
from collector.digest.build import default_week
from collector.records import format_ts
from schedules.daemon import build_scheduler
from schedules.health import HealthState
from schedules.jobs import JobContext, collect_stream, seal_windows, write_weekly_digest
from schedules.metrics import Metrics
from schedules.replicas import aligned_trigger, phase_of, slot_start
from storage import Store
from storage.digest_queries import record_delivery
from storage.locks import DaemonFileLock, DaemonRunning, JobLocks, lock_key
from storage.models import RunTable

STREAMS = ("synthetic.events", "synthetic.users")


def test_lock_key_is_stable_and_signed_64_bit() -> None:
    """A job's key is the same in every process and fits PostgreSQL's bigint."""
    assert lock_key("collect:okta.users") == lock_key("collect:okta.users")
    assert lock_key("collect:okta.users") != lock_key("collect:okta.logs")
    # Pinned: a key that changed between releases would let an old and a new replica both run.
    assert lock_key("seal") == int.from_bytes(
        __import__("hashlib").blake2b(b"seal", digest_size=8).digest(), "big", signed=True)
    assert all(-(2**63) <= lock_key(f"s{n}") < 2**63 for n in range(200))


def test_due_instants_are_shared_and_spread() -> None:
    """Every replica computes the same due instants for a stream, one interval apart."""
    interval = timedelta(minutes=15)
    now = datetime(2026, 12, 6, 19, 7, 31, tzinfo=UTC)
    start = slot_start("okta.users", interval, now)
    assert start <= now < start + interval
    trigger = aligned_trigger("okta.users", interval, UTC)
    assert trigger.get_next_fire_time(None, now) == start + interval
    # A run at another instant (the start-up catch-up) does not move the later ones.
    off = start + timedelta(seconds=100)
    assert trigger.get_next_fire_time(off, off) == start + interval
    assert trigger.get_next_fire_time(start + interval, start + interval) == start + 2 * interval
    phases = {phase_of(f"s{n}.x", interval) for n in range(50)}
    assert len(phases) == 50 and all(0 <= p < interval.total_seconds() for p in phases)


def test_advisory_lock_excludes_another_session_and_dies_with_it(postgres_url: str) -> None:
    """A lock held by one replica's session refuses another's, and is free once that session closes."""
    a, b = JobLocks(postgres_url), JobLocks(postgres_url)
    try:
        with a.hold("collect:x") as got_a:
            assert got_a
            with b.hold("collect:x") as got_b, b.hold("collect:y") as other:
                assert not got_b and other
        with b.hold("collect:x") as again:
            assert again  # released after the job
        held = a.hold("collect:x")
        assert held.__enter__()
        # The holder's session ends as a killed replica's does: PostgreSQL drops its locks.
        with b.engine.connect() as conn:
            ended = conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid <> pg_backend_pid()").scalars().all()
        assert ended == [True]
        # The backend exits a moment after it is told to: a waiter gets the lock then.
        with b.hold("collect:x", wait=10) as after:
            assert after
        held.__exit__(None, None, None)  # unlocking on the dead session fails quietly
        with a.hold("collect:x") as fresh:
            assert fresh  # the broken session was not pooled: a live one takes the lock
    finally:
        a.close()
        b.close()


def test_replicas_started_together_create_one_schema(postgres_url: str) -> None:
    """Several replicas opening a new PostgreSQL database at once all open it (one creates it)."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            Store.open(postgres_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


@pytest.fixture
def pg_ctx(tmp_path: Path, postgres_url: str) -> Iterator[tuple[JobContext, JobLocks]]:
    """A replica's job context on PostgreSQL, and a second replica's locks."""
    settings = load_settings(write_config(tmp_path, postgres_url, synthetic={"count": 30,
                                                                              "interval": "1h"}))
    store = Store.open(settings.storage_url)
    locks, other = JobLocks(postgres_url), JobLocks(postgres_url)
    ctx = JobContext(settings, store, Metrics(), HealthState(2, list(STREAMS)), threading.Event(),
                     lambda: datetime.now(UTC), locks=locks,
                     intervals=dict.fromkeys(STREAMS, timedelta(hours=1)))
    yield ctx, other
    locks.close()
    other.close()
    store.close()


def _skips(ctx: JobContext, stream: str, reason: str) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "collector_runs_skipped_total", {"stream": stream, "reason": reason})
    return value or 0.0


def test_a_locked_stream_is_skipped_and_counted(pg_ctx: tuple[JobContext, JobLocks]) -> None:
    """While another replica holds a stream's lock this replica stores no run and counts a skip."""
    ctx, other = pg_ctx
    with other.hold("collect:synthetic.users") as got:
        assert got
        collect_stream(ctx, "synthetic.users")
    assert ctx.store.runs_of("synthetic.users") == []
    assert _skips(ctx, "synthetic.users", "locked") == 1
    assert "synthetic.users" not in ctx.first_round  # sealing is not kept waiting by a skip


def test_a_stream_run_this_interval_is_not_run_again(pg_ctx: tuple[JobContext, JobLocks]) -> None:
    """A replica taking the lock just after another finished the stream skips it until the next interval."""
    ctx, _ = pg_ctx
    collect_stream(ctx, "synthetic.events")
    assert len(ctx.store.runs_of("synthetic.events")) == 1
    collect_stream(ctx, "synthetic.events")  # the same interval: another replica's turn comes late
    assert len(ctx.store.runs_of("synthetic.events")) == 1
    assert _skips(ctx, "synthetic.events", "ran") == 1
    ctx.clock = lambda: datetime.now(UTC) + timedelta(hours=1)  # the next due instant has passed
    collect_stream(ctx, "synthetic.events")
    assert len(ctx.store.runs_of("synthetic.events")) == 2


def test_seal_and_digest_are_left_to_the_replica_that_has_them(
        pg_ctx: tuple[JobContext, JobLocks]) -> None:
    """Sealing under another replica's lock, and a digest already delivered this week, are skipped and counted."""
    ctx, other = pg_ctx
    with other.hold("seal") as got:
        assert got
        seal_windows(ctx)
    week = default_week(ctx.settings.windows.timezone, datetime.now(UTC)).id
    record_delivery(ctx.store.engine, week, "slack", format_ts(datetime.now(UTC)), "ok", None)
    write_weekly_digest(ctx)

    def skipped(job: str, reason: str) -> float:
        value = ctx.metrics.registry.get_sample_value(
            "collector_jobs_skipped_total", {"job": job, "reason": reason})
        return value or 0.0
    assert skipped("seal", "locked") == 1 and skipped("digest", "ran") == 1
    assert ctx.metrics.registry.get_sample_value("collector_digests_written_total") == 0
    assert ctx.metrics.registry.get_sample_value("collector_job_errors_total", {"job": "seal"}) is None


def test_replica_start_run_waits_for_a_close_due_instant(pg_ctx: tuple[JobContext, JobLocks]) -> None:
    """A replica starting just before a stream's due instant runs it then, not also at start."""
    ctx, _ = pg_ctx
    hour = timedelta(hours=1)
    base = slot_start("synthetic.events", hour, datetime(2026, 12, 6, 12, tzinfo=UTC))
    for now, expected in ((base + hour * 0.95, base + hour), (base + hour / 2, base + hour / 2)):
        scheduler = build_scheduler(ctx, plan_streams(ctx.settings), now)
        assert scheduler.get_job("collect:synthetic.events").next_run_time == expected


def _run_starts(url: str) -> list[tuple[str, datetime]]:
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(RunTable.c.stream, RunTable.c.started_at)).all()
    finally:
        store.close()
    return [(s, datetime.fromisoformat(t.replace("Z", "+00:00"))) for s, t in rows]


def _total(daemon: DaemonProcess, name: str, **labels: str) -> float:
    return sum(daemon.metric(name, stream=s, **labels) for s in STREAMS)


def test_two_replicas_run_each_interval_once(tmp_path: Path, postgres_url: str) -> None:
    """Two daemons on one PostgreSQL run every stream once per interval and count their skips."""
    config = write_config(tmp_path, postgres_url, synthetic={"interval": "2s", "count": 40})
    a, b = DaemonProcess(config), DaemonProcess(config)
    try:
        def enough() -> bool:
            starts = Counter(s for s, _ in _run_starts(postgres_url))
            return all(starts[s] >= 4 for s in STREAMS)
        a.wait_until("four intervals of every stream", enough)
        skips = {d: sum(_total(d, "collector_runs_skipped_total", reason=r) for r in ("locked", "ran"))
                 for d in (a, b)}
        runs = {d: _total(d, "collector_runs_total", status="ok") for d in (a, b)}
        a.signal(signal.SIGTERM)
        b.signal(signal.SIGTERM)
        assert a.wait(30) == 0 and b.wait(30) == 0
    finally:
        a.kill()
        b.kill()
    per_slot = Counter((s, slot_start(s, timedelta(seconds=2), t)) for s, t in _run_starts(postgres_url))
    assert max(per_slot.values()) == 1, per_slot.most_common(3)
    # Each due instant is tried by both replicas: what one runs, the other skips and counts
    # (half of them at least: on a loaded machine a late try can be coalesced into the next).
    assert sum(skips.values()) >= (sum(runs.values()) - 2 * len(STREAMS)) // 2 > 0, (skips, runs)


def test_a_killed_replicas_streams_run_on_the_other(tmp_path: Path, postgres_url: str) -> None:
    """After one replica is SIGKILLed the other runs every stream at its next interval."""
    config = write_config(tmp_path, postgres_url, synthetic={"interval": "2s", "count": 40})
    a, b = DaemonProcess(config), DaemonProcess(config)
    try:
        a.wait_until("both streams ran", lambda: {s for s, _ in _run_starts(postgres_url)} >= set(STREAMS))
        a.signal(signal.SIGKILL)
        a.wait(10)
        killed = datetime.now(UTC)
        before = {s: b.metric("collector_runs_total", stream=s, status="ok") for s in STREAMS}
        b.wait_until("the survivor ran every stream again", lambda: all(
            b.metric("collector_runs_total", stream=s, status="ok") >= before[s] + 2 for s in STREAMS))
        after = Counter(s for s, t in _run_starts(postgres_url) if t > killed)
        assert all(after[s] >= 2 for s in STREAMS), after
    finally:
        a.kill()
        b.kill()


def test_second_daemon_on_one_sqlite_file_refuses(tmp_path: Path) -> None:
    """A second daemon on the SQLite file a running daemon uses exits 2 with one line naming the file."""
    config = write_config(tmp_path, synthetic={"interval": "1h", "count": 10})
    first = DaemonProcess(config)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "collector.cli", "--config", str(config), "run"],
            cwd=str(REPO), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert str(tmp_path / "evidence.db") in lines[0] and "one daemon per SQLite file" in lines[0]
        assert first.proc.poll() is None  # the running daemon is untouched
    finally:
        first.signal(signal.SIGTERM)
        first.wait(30)
        first.kill()
    # The lock dies with its holder: a daemon starts again on the same file afterwards.
    again = DaemonProcess(config)
    try:
        again.signal(signal.SIGTERM)
        assert again.wait(30) == 0
    finally:
        again.kill()


def test_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    """Holding the daemon lock refuses a second holder naming the first's pid; releasing frees it."""
    db = tmp_path / "evidence.db"
    one, two = DaemonFileLock(db), DaemonFileLock(db)
    one.acquire()
    with pytest.raises(DaemonRunning, match=rf"pid {os.getpid()}\) runs on {db}"):
        two.acquire()
    one.release()
    two.acquire()
    two.release()
