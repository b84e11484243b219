"""The daemon's jobs, each one call into `collector`: collect a stream, seal windows, write the digest."""

from __future__ import annotations

import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from collector.collect import collect
from collector.config import Settings
from collector.digest.job import write_digest
from collector.errors import CollectorError
from collector.seal.snapshot import sealer_from_settings
from schedules.health import HealthState
from schedules.metrics import Metrics
from schedules.replicas import job_turn, lock_wait, slot_start
from storage import Store
from storage.locks import JobLocks

__all__ = ["JobContext", "collect_stream", "process_intake", "seal_windows", "write_weekly_digest"]

log = structlog.get_logger("schedules.jobs")


@dataclass
class JobContext:
    """What every job shares: config, store, observers, the stop signal, and who is running."""

    settings: Settings
    store: Store
    metrics: Metrics
    health: HealthState
    stop: threading.Event
    clock: Callable[[], datetime]
    _running: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    first_round: set[str] = field(default_factory=set)
    """Streams whose first run since start has not finished; sealing waits for them."""
    on_first_round: Callable[[], None] | None = None
    """Called once when the last of ``first_round`` finishes (the daemon starts sealing then)."""
    locks: JobLocks | None = None
    """PostgreSQL advisory locks shared with the other replicas; None on SQLite (one daemon)."""
    intervals: dict[str, timedelta] = field(default_factory=dict)
    """Each stream's interval, for telling whether another replica ran it in this one."""

    def first_run_done(self, stream: str) -> None:
        """``stream`` finished its first run since start (in any status)."""
        with self._lock:
            if stream not in self.first_round:
                return
            self.first_round.discard(stream)
            complete = not self.first_round
        if complete:
            log.info("first_round_complete")
            if self.on_first_round is not None and not self.stop.is_set():
                try:
                    self.on_first_round()
                except Exception as exc:  # the scheduler stopping under us: nothing to start
                    log.warning("first_round_hook_failed", error_class=type(exc).__name__)

    @contextmanager
    def running(self, name: str) -> Iterator[None]:
        """Mark job ``name`` as running, so shutdown knows what it waits for."""
        with self._lock:
            self._running[name] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[name] -= 1
                if not self._running[name]:
                    del self._running[name]

    def active(self) -> list[str]:
        """Names of the jobs running now."""
        with self._lock:
            return sorted(self._running)


def _failed(ctx: JobContext, job: str, exc: BaseException, **bind: Any) -> None:
    ctx.metrics.job_errors.labels(job=job).inc()
    if job != "collect":  # a stream's failures are counted per stream, with their own limit
        ctx.health.record_job(job, ctx.clock(), type(exc).__name__)
    event = dict(job=job, error_class=type(exc).__name__, error=str(exc)[:500], **bind)
    if isinstance(exc, CollectorError):
        log.error("job_failed", **event)
    else:
        log.error("job_failed", trace=traceback.format_exc(limit=8), **event)


def _ran_this_interval(ctx: JobContext, stream_id: str) -> bool:
    """Whether a run of ``stream_id`` (by any replica) started at or after the instant the
    stream was last due: the lock was free because that run had just finished."""
    interval = ctx.intervals.get(stream_id)
    if interval is None:
        return False
    latest = ctx.store.runs_of(stream_id, limit=1)
    if not latest:
        return False
    started = datetime.fromisoformat(latest[0].started_at.replace("Z", "+00:00"))
    return started >= slot_start(stream_id, interval, ctx.clock())


def collect_stream(ctx: JobContext, stream_id: str) -> None:
    """Collect ``stream_id`` once from its committed cursor, unless another replica holds the
    stream's lock or already ran it in this interval (counted as a skip); never raises."""
    if ctx.stop.is_set():
        return
    with ctx.running(stream_id):
        try:
            interval = ctx.intervals.get(stream_id)
            wait = 0.0 if interval is None else lock_wait(interval)
            with job_turn(ctx.locks, f"collect:{stream_id}", wait) as mine:
                if not mine:
                    ctx.metrics.skipped.labels(stream=stream_id, reason="locked").inc()
                elif ctx.locks is not None and _ran_this_interval(ctx, stream_id):
                    ctx.metrics.skipped.labels(stream=stream_id, reason="ran").inc()
                else:
                    results = collect(ctx.settings, ctx.store, [stream_id],
                                      on_batch=ctx.metrics.on_batch, stop=ctx.stop)
                    for result in results:
                        ctx.metrics.on_run(result, ctx.health.record(result))
        except Exception as exc:
            # A secret unset since start, an unreachable store, or a bug: a failed run all the same.
            in_row = ctx.health.record_crash(stream_id, exc)
            ctx.metrics.failures_in_row.labels(stream=stream_id).set(in_row)
            ctx.metrics.runs.labels(stream=stream_id, status="failed").inc()
            _failed(ctx, "collect", exc, stream=stream_id)
    ctx.first_run_done(stream_id)


def seal_windows(ctx: JobContext) -> None:
    """Seal every window past its grace period that is not sealed yet; never raises."""
    if ctx.stop.is_set():
        return
    with ctx.running("seal"):
        try:
            with job_turn(ctx.locks, "seal") as mine:
                if not mine:  # another replica seals; what it leaves due, the next pass seals
                    ctx.metrics.jobs_skipped.labels(job="seal", reason="locked").inc()
                    return
                sealer = sealer_from_settings(ctx.settings, ctx.store)
                sealed = sealer.seal_due(ctx.clock())
        except Exception as exc:
            _failed(ctx, "seal", exc)
            return
        ctx.health.record_job("seal", ctx.clock())
        for done in sealed:
            ctx.metrics.sealed.inc()
            log.info("window_sealed", window=done.window_id, path=str(done.path),
                     records=done.records)
        empty = sum(1 for done in sealed if done.records == 0)
        if len(sealed) > 1 and empty:
            # A first start seals every window back to the oldest stored record (gap-free chain).
            log.info("windows_sealed_backlog", first=sealed[0].window_id, windows=len(sealed),
                     empty=empty, hint="[windows] start sets the observation period's first window")
        if not sealed:
            log.debug("no_window_due")


def process_intake(ctx: JobContext) -> None:
    """One pass over the intake folder, then a people-coverage check if it stored anything;
    never raises (a file that cannot be stored now stays for the next pass)."""
    if ctx.stop.is_set():
        return
    from collector.manual import check_people, intake_pass, open_files

    with ctx.running("intake"):
        try:
            with job_turn(ctx.locks, "intake") as mine:
                if not mine:  # another replica is reading the folder; the next pass reads the rest
                    ctx.metrics.jobs_skipped.labels(job="intake", reason="locked").inc()
                    return
                report = intake_pass(ctx.settings, ctx.store, open_files(ctx.settings))
                ctx.health.record_job("intake", ctx.clock())
                if report.stored or report.attestations:
                    try:
                        check_people(ctx.settings, ctx.store)
                    except Exception as exc:
                        _failed(ctx, "people", exc)
                    else:
                        ctx.health.record_job("people", ctx.clock())
        except Exception as exc:
            _failed(ctx, "intake", exc)


DIGEST_RAN_WITHIN = timedelta(hours=6)
"""A digest delivery attempted this recently for the same week was another replica's run of
this job (the digest job's misfire grace is as long)."""


def _digest_sent(ctx: JobContext) -> bool:
    """Whether another replica attempted this week's digest delivery since the job was due."""
    from sqlalchemy import select

    from collector.digest.build import default_week
    from collector.records import format_ts
    from storage.models import DeliveryTable as d

    now = ctx.clock()
    week = default_week(ctx.settings.windows.timezone, now).id
    since = format_ts(now - DIGEST_RAN_WITHIN)
    query = select(d.c.id).where(d.c.week == week, d.c.attempted_at >= since).limit(1)
    with ctx.store.engine.connect() as conn:
        return conn.execute(query).first() is not None


def write_weekly_digest(ctx: JobContext) -> None:
    """Write and deliver the digest of the week just ended; never raises."""
    if ctx.stop.is_set():
        return
    with ctx.running("digest"):
        try:
            with job_turn(ctx.locks, "digest") as mine:
                if not mine:
                    ctx.metrics.jobs_skipped.labels(job="digest", reason="locked").inc()
                    return
                if ctx.locks is not None and _digest_sent(ctx):
                    ctx.metrics.jobs_skipped.labels(job="digest", reason="ran").inc()
                    return
                path = write_digest(ctx.settings, ctx.store, None)
        except Exception as exc:
            _failed(ctx, "digest", exc)
            return
        ctx.health.record_job("digest", ctx.clock())
        ctx.metrics.digests.inc()
        log.info("digest_written", path=str(path))
