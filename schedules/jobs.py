"""The daemon's jobs: collect one stream, seal ended windows, write the weekly digest.

Each job is one call into `collector`. Sealing and the digest are reached through a seam
(`collector.seal.seal_due_windows`, `collector.digest.write_digest`) so the daemon runs, and
says so once in its log, when a build does not carry those features.
"""

from __future__ import annotations

import importlib
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
from collector.errors import CollectorError
from schedules.health import HealthState
from schedules.metrics import Metrics

__all__ = [
    "DIGEST_FEATURE",
    "SEALER_FEATURE",
    "SEAL_FEATURE",
    "JobContext",
    "collect_stream",
    "find_feature",
    "seal_windows",
    "write_weekly_digest",
]

log = structlog.get_logger("schedules.jobs")

SEAL_FEATURE = ("collector.seal", "seal_due_windows")
"""``seal_due_windows(settings, store, now) -> list[str]``: seal every window that ended more
than ``[windows].seal_grace`` before ``now`` and is not sealed yet, oldest first; return the
IDs sealed (empty when none was due)."""

SEALER_FEATURE = ("collector.seal.snapshot", "sealer_from_settings")
"""Used when ``seal_due_windows`` is absent: ``sealer_from_settings(settings, store)`` returns a
sealer whose ``seal()`` seals every ended window past its grace, oldest first, and returns
snapshots with ``window_id`` and ``reproduced``."""

DIGEST_FEATURE = ("collector.digest", "write_digest")
"""``write_digest(settings, store, week=None) -> Path``: write (and deliver, where configured)
the digest of ``week`` (None: the last full ISO week in ``[windows].timezone``); return the
path of ``digest-<week>.json``."""


@dataclass
class JobContext:
    """What every job shares: config, store, observers, the stop signal, and who is running."""

    settings: Settings
    store: Any
    metrics: Metrics
    health: HealthState
    stop: threading.Event
    clock: Callable[[], datetime]
    _running: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _missing: set[str] = field(default_factory=set)
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

    def feature(self, module: str, function: str) -> Callable[..., Any] | None:
        """``module.function`` if this build has it; otherwise log ``feature_unavailable`` once."""
        found = find_feature(module, function)
        if found is None:
            self.unavailable(module, function)
        return found

    def unavailable(self, module: str, function: str) -> None:
        """Log ``feature_unavailable`` the first time a job finds ``module`` missing."""
        with self._lock:
            first = module not in self._missing
            self._missing.add(module)
        if first:
            log.warning("feature_unavailable", feature=f"{module}.{function}",
                        note="this build lacks it; the job does nothing until it is installed")


def find_feature(module: str, function: str) -> Callable[..., Any] | None:
    """``module.function``, or None when the module (or the function) is not in this build."""
    try:
        found = getattr(importlib.import_module(module), function, None)
    except ModuleNotFoundError as exc:
        # Only the feature's own absence is expected; a missing dependency inside it is a bug.
        if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        return None
    return found if callable(found) else None


def _seal_with(make_sealer: Callable[..., Any]) -> Callable[..., list[str]]:
    """``seal_due_windows`` built on ``sealer_from_settings(settings, store).seal()``.

    ``seal()`` rewrites the due window's snapshot when it is already sealed (byte-identical);
    the hourly job skips that, and reports only windows sealed anew.
    """
    def seal_due_windows(settings: Settings, store: Any, now: datetime) -> list[str]:
        sealer = make_sealer(settings, store)
        sealer.clock = lambda: now
        if sealer.due_window().id in {row.window_id for row in store.snapshots()}:
            return []
        return [done.window_id for done in sealer.seal() if not done.reproduced]
    return seal_due_windows


def _failed(ctx: JobContext, job: str, exc: BaseException, **bind: Any) -> None:
    ctx.metrics.job_errors.labels(job=job).inc()
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
            in_row = ctx.health.record_crash(stream_id, f"{type(exc).__name__}: {exc}")
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
            seal = find_feature(*SEAL_FEATURE)
            if seal is None and (make := find_feature(*SEALER_FEATURE)) is not None:
                seal = _seal_with(make)
            if seal is None:
                ctx.unavailable(*SEAL_FEATURE)
                return
            sealed = list(seal(ctx.settings, ctx.store, ctx.clock()))
        except Exception as exc:
            _failed(ctx, "seal", exc)
            return
        for window in sealed:
            ctx.metrics.sealed.inc()
            log.info("window_sealed", window=window)
        if not sealed:
            log.debug("no_window_due")


def write_weekly_digest(ctx: JobContext) -> None:
    """Write and deliver the digest of the week just ended; never raises."""
    if ctx.stop.is_set():
        return
    with ctx.running("digest"):
        try:
            write = ctx.feature(*DIGEST_FEATURE)
            if write is None:
                return
            path = write(ctx.settings, ctx.store, None)
        except Exception as exc:
            _failed(ctx, "digest", exc)
            return
        ctx.metrics.digests.inc()
        log.info("digest_written", path=str(path))
