"""The daemon's jobs, each one call into `collector`: collect a stream, seal windows, write the digest."""

from __future__ import annotations

import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from collector.collect import collect
from collector.config import Settings
from collector.digest.job import write_digest
from collector.errors import CollectorError
from collector.seal.snapshot import sealer_from_settings
from schedules.health import HealthState
from schedules.metrics import Metrics
from storage import Store

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


def collect_stream(ctx: JobContext, stream_id: str) -> None:
    """Collect ``stream_id`` once from its committed cursor; never raises."""
    if ctx.stop.is_set():
        return
    with ctx.running(stream_id):
        try:
            results = collect(ctx.settings, ctx.store, [stream_id],
                              on_batch=ctx.metrics.on_batch, stop=ctx.stop)
        except Exception as exc:
            # A secret unset since start, an unreachable store, or a bug: a failed run all the same.
            in_row = ctx.health.record_crash(stream_id, exc)
            ctx.metrics.failures_in_row.labels(stream=stream_id).set(in_row)
            ctx.metrics.runs.labels(stream=stream_id, status="failed").inc()
            _failed(ctx, "collect", exc, stream=stream_id)
        else:
            for result in results:
                ctx.metrics.on_run(result, ctx.health.record(result))
    ctx.first_run_done(stream_id)


def seal_windows(ctx: JobContext) -> None:
    """Seal every window past its grace period that is not sealed yet; never raises."""
    if ctx.stop.is_set():
        return
    with ctx.running("seal"):
        try:
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
            report = intake_pass(ctx.settings, ctx.store, open_files(ctx.settings))
        except Exception as exc:
            _failed(ctx, "intake", exc)
            return
        ctx.health.record_job("intake", ctx.clock())
        if report.stored or report.attestations:
            try:
                check_people(ctx.settings, ctx.store)
            except Exception as exc:
                _failed(ctx, "people", exc)
            else:
                ctx.health.record_job("people", ctx.clock())


def write_weekly_digest(ctx: JobContext) -> None:
    """Write and deliver the digest of the week just ended; never raises."""
    if ctx.stop.is_set():
        return
    with ctx.running("digest"):
        try:
            path = write_digest(ctx.settings, ctx.store, None)
        except Exception as exc:
            _failed(ctx, "digest", exc)
            return
        ctx.health.record_job("digest", ctx.clock())
        ctx.metrics.digests.inc()
        log.info("digest_written", path=str(path))
