"""`collector run`: the scheduler built from the config on every start, the listener, the shutdown."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from collector.collect import PlannedStream, check_secrets, open_connector, plan_streams
from collector.config import ConfigProblems, Settings, open_store
from collector.errors import ConfigError, InputError
from schedules.health import HealthServer, HealthState
from schedules.jobs import JobContext, collect_stream, process_intake, seal_windows, write_weekly_digest
from schedules.metrics import Metrics
from schedules.replicas import aligned_trigger
from schedules.shutdown import Shutdown
from storage import Store
from storage.locks import DaemonFileLock, DaemonRunning, JobLocks

__all__ = ["COLLECTION_DESCRIPTORS", "SEAL_EVERY", "SHUTDOWN_GRACE", "Daemon", "build_scheduler",
           "jitter_for", "run_daemon"]

log = structlog.get_logger("schedules.daemon")

SHUTDOWN_GRACE = 8.0
"""Seconds the first stop signal waits for running batches to commit; inside Docker's 10 s."""

SEAL_EVERY = timedelta(hours=1)
_MAX_JITTER = 300.0


def jitter_for(interval: timedelta) -> int | None:
    """Up to a tenth of the interval (at most five minutes), so streams drift apart; none below 10 s."""
    seconds = int(min(interval.total_seconds() / 10, _MAX_JITTER))
    return seconds or None


def _digest_trigger(settings: Settings) -> CronTrigger:
    day, clock = settings.digest.schedule.split()
    hour, minute = clock.split(":")
    return CronTrigger(day_of_week=day, hour=int(hour), minute=int(minute),
                       timezone=settings.zone)


def build_scheduler(ctx: JobContext, planned: list[PlannedStream],
                    now: datetime) -> BackgroundScheduler:
    """A fresh scheduler: one job per stream, hourly sealing, the weekly digest; nothing persisted.

    The cursors in the store are the state, so every stream runs at start and a restart after
    downtime collects everything since its cursor. With ``ctx.locks`` (replicas on PostgreSQL)
    streams are due at instants shared by every replica (``schedules.replicas``), a stream due
    within a tenth of its interval waits for that instant instead of also running at start,
    and a stream another replica ran in the current interval is skipped at start as at any
    other time.
    Sealing starts paused when streams are planned: ``ctx.on_first_round`` starts it once every
    stream's first run has finished, so a window is never sealed while the catch-up after
    downtime (or the first backfill) is still bringing its evidence in.
    """
    settings = ctx.settings
    scheduler = BackgroundScheduler(
        timezone=settings.zone,
        executors={"default": ThreadPoolExecutor(max_workers=len(planned) + 3)},
    )
    once = {"coalesce": True, "max_instances": 1}  # a late job runs once, never beside itself
    for stream in planned:
        interval = stream.interval
        seconds = max(1.0, interval.total_seconds())
        ctx.intervals[stream.id] = interval
        trigger = IntervalTrigger(seconds=seconds, jitter=jitter_for(interval), timezone=settings.zone)
        first = now
        if ctx.locks is not None:  # replicas must agree on when a stream is due
            trigger = aligned_trigger(stream.id, interval, settings.zone)
            due = trigger.get_next_fire_time(None, now)
            if due is not None and due - now <= interval / 10:
                first = due  # the start-up run would come just before the due one: one run
        scheduler.add_job(
            collect_stream, trigger,
            args=(ctx, stream.id), id=f"collect:{stream.id}", name=f"collect {stream.id}",
            next_run_time=first, misfire_grace_time=max(1, int(seconds)), **once,
        )
    ctx.first_round = {stream.id for stream in planned}
    scheduler.add_job(
        seal_windows, IntervalTrigger(seconds=SEAL_EVERY.total_seconds(), timezone=settings.zone),
        args=(ctx,), id="seal", name="seal ended windows", next_run_time=None if planned else now,
        misfire_grace_time=int(SEAL_EVERY.total_seconds()), **once,
    )
    scheduler.add_job(
        write_weekly_digest, _digest_trigger(settings), args=(ctx,), id="digest",
        name="weekly digest", misfire_grace_time=6 * 3600, **once,
    )
    if settings.intake.folder:
        every = max(1.0, settings.intake.interval.total_seconds())
        scheduler.add_job(
            process_intake, IntervalTrigger(seconds=every, timezone=settings.zone), args=(ctx,),
            id="intake", name="intake folder", next_run_time=now, misfire_grace_time=max(1, int(every)),
            **once,
        )
    return scheduler


def _validate_digest(settings: Settings) -> None:
    """The weekly digest's delivery keys, and its secrets set, as ``collector digest`` checks them:
    a config the digest command would refuse must not start a daemon that fails each Monday."""
    from collector.digest.deliver import check_delivery_config

    check_delivery_config(settings)
    d, file = settings.digest, str(settings.path)
    needed = [("digest.slack_webhook_env", d.slack_webhook_env)]
    if d.smtp_host and d.smtp_user:
        needed.append(("digest.smtp_password_env", d.smtp_password_env))
    for key, var in needed:
        if var and not os.environ.get(var, "").strip():
            raise ConfigError(file, key, f"environment variable ${var} is not set")


def _validate_intake(settings: Settings) -> None:
    """The intake folder exists and the blob store opens (an S3 bucket has Object Lock when
    retention is asked), so a daemon never starts that would fail every pass."""
    if not settings.intake.folder:
        return
    from collector.manual import open_files

    folder = settings.resolve(settings.intake.folder)
    if not folder.is_dir():
        raise ConfigError(str(settings.path), "intake.folder", f"{folder} is not a folder")
    open_files(settings)


def _validate_connectors(settings: Settings, planned: list[PlannedStream]) -> None:
    """Secrets set and connector configs sane before anything is scheduled (no network); one
    ConfigError naming every problem found."""
    problems = ConfigProblems()
    with problems.section():
        _validate_digest(settings)
    with problems.section():
        _validate_intake(settings)
    names = list(dict.fromkeys(p.connector for p in planned))
    with problems.section():
        check_secrets(settings, names)
    problems.raise_any()  # opening a connector needs its secrets
    for name in names:
        try:
            open_connector(settings, name).close()
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(str(settings.path), f"connectors.{name}",
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None


COLLECTION_DESCRIPTORS = 256
"""Descriptors kept for collection (store, vendor connections, files) beside the listener's cap."""


def _check_descriptors(settings: Settings) -> None:
    """The listener's cap leaves collection its descriptors under ``ulimit -n``: raise the soft
    limit towards the hard one when it does not, else refuse naming ``daemon.max_connections``."""
    import resource

    needed = settings.daemon.max_connections + COLLECTION_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    raise ConfigError(str(settings.path), "daemon.max_connections",
                      f"{settings.daemon.max_connections} connections plus {COLLECTION_DESCRIPTORS} "
                      f"descriptors for collection exceed the process limit of {hard} (ulimit -n): "
                      "lower it or raise the limit")


class Daemon:
    """One run of the daemon, from start to a clean stop."""

    def __init__(self, settings: Settings, *, listen: str | None = None,
                 port_file: Path | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 listen_from: str = "--listen") -> None:
        self.settings = settings
        self.listen = listen or settings.daemon.listen
        # What a listen failure names: the flag (or variable) the address came from, else the key.
        self.listen_from = listen_from if listen else None
        self.port_file = port_file
        self.clock = clock

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit code (0 after a clean stop)."""
        shutdown = Shutdown()
        shutdown.install()  # first, so a signal during start-up still stops cleanly
        try:
            return self._run(shutdown)
        finally:
            shutdown.restore()

    def _run(self, shutdown: Shutdown) -> int:
        settings = self.settings
        if self.port_file is not None and not self.port_file.parent.is_dir():
            raise InputError(f"--port-file {self.port_file}: its folder does not exist")
        planned = plan_streams(settings)
        _validate_connectors(settings, planned)
        _check_descriptors(settings)
        ids = [p.id for p in planned]
        store = open_store(settings)
        try:
            file_lock, locks = _exclusion(settings, store)
        except BaseException:
            store.close()
            raise
        metrics = Metrics()
        health = HealthState(settings.daemon.max_consecutive_failures, ids)
        for sid in ids:
            metrics.declare_stream(sid)
            self._seed(store, sid, health, metrics)
        try:
            server = HealthServer(self.listen, health, metrics, self.clock,
                                  max_connections=settings.daemon.max_connections,
                                  request_timeout=settings.daemon.request_timeout.total_seconds())
        except OSError as exc:
            store.close()
            _release(file_lock, locks)
            problem = f"cannot listen on {self.listen}: {exc.strerror or exc}"
            if self.listen_from is not None:
                raise InputError(f"{self.listen_from}: {problem}") from None
            raise ConfigError(str(settings.path), "daemon.listen", problem) from None
        stop = threading.Event()
        ctx = JobContext(settings, store, metrics, health, stop, self.clock, locks=locks)
        scheduler = build_scheduler(ctx, planned, self.clock())
        health.scheduler_running = lambda: scheduler.state == STATE_RUNNING
        ctx.on_first_round = lambda: scheduler.modify_job("seal", next_run_time=self.clock())
        metrics.attach()
        server.start()
        scheduler.start()
        metrics.scheduler_up.set(1)
        log.info("listening", host=server.host, port=server.port,
                 endpoints=["/healthz", "/metrics"])
        if self.port_file is not None:
            _write_atomically(self.port_file, f"{server.port}\n")
        log.info("daemon_started", streams=ids, store=store.dialect, replicas=locks is not None,
                 period=settings.windows.period,
                 timezone=settings.windows.timezone, digest_schedule=settings.digest.schedule,
                 seal_grace_seconds=int(settings.windows.seal_grace.total_seconds()))
        if not ids:
            log.warning("no_streams_enabled", config=str(settings.path))

        signal_name = shutdown.wait()
        log.info("shutdown_started", signal=signal_name, running=ctx.active(),
                 grace_seconds=SHUTDOWN_GRACE)
        stop.set()  # running pipelines commit their batch and stop; no job starts any more
        scheduler.shutdown(wait=False)
        metrics.scheduler_up.set(0)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while ctx.active() and time.monotonic() < deadline:
            time.sleep(0.05)
        still = ctx.active()
        server.close()
        metrics.detach()
        if still:
            # The store is consistent (one transaction per batch): the batch in flight is
            # simply collected again on the next start.
            log.warning("shutdown_forced", running=still, grace_seconds=SHUTDOWN_GRACE)
            sys.stdout.flush()
            os._exit(0)
        store.close()
        _release(file_lock, locks)
        log.info("shutdown_complete")
        return 0

    @staticmethod
    def _seed(store: Store, stream: str, health: HealthState, metrics: Metrics) -> None:
        """Last success from the store, so a restart does not forget when a stream last worked."""
        for run in store.runs_of(stream, limit=50):
            if run.status == "ok" and run.ended_at:
                health.seed_success(stream, run.ended_at)
                ended = datetime.fromisoformat(run.ended_at.replace("Z", "+00:00"))
                metrics.last_success.labels(stream=stream).set(ended.timestamp())
                return


def _exclusion(settings: Settings, store: Store) -> tuple[DaemonFileLock | None, JobLocks | None]:
    """SQLite: this daemon's lock on the database file (ConfigError when another daemon holds
    it). PostgreSQL: the advisory locks this replica shares with the others."""
    if store.dialect != "sqlite":
        return None, JobLocks(settings.storage_url)
    database = store.engine.url.database
    if not database:  # pragma: no cover - config refuses in-memory stores
        return None, None
    file_lock = DaemonFileLock(Path(database).resolve())
    try:
        file_lock.acquire()
    except (DaemonRunning, OSError) as exc:
        raise ConfigError(str(settings.path), "storage.url", str(exc)) from None
    return file_lock, None


def _release(file_lock: DaemonFileLock | None, locks: JobLocks | None) -> None:
    if locks is not None:
        locks.close()
    if file_lock is not None:
        file_lock.release()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def check_daemon(settings: Settings) -> list[PlannedStream]:
    """What the daemon checks before it starts anything (secrets, connectors, digest delivery,
    intake folder), without starting: the streams it would run, or ConfigError."""
    planned = plan_streams(settings)
    _validate_connectors(settings, planned)
    return planned


def run_daemon(settings: Settings, *, listen: str | None = None,
               port_file: Path | None = None, listen_from: str = "--listen") -> int:
    """Run the daemon until stopped; the exit code. ``listen_from`` names where ``listen`` came
    from (``--listen``, ``$COLLECTOR_LISTEN``) in the error when it cannot be bound."""
    return Daemon(settings, listen=listen, port_file=port_file, listen_from=listen_from).run()

