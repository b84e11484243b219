"""Stream and job health, and the `/healthz` + `/metrics` HTTP listener (bounded: see schedules.listener)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog

from collector.errors import clip
from collector.pipeline import RunResult
from collector.records import format_ts
from schedules.listener import BoundedListener
from schedules.metrics import CONTENT_TYPE, Metrics

__all__ = ["HealthServer", "HealthState", "StreamHealth", "parse_listen"]

log = structlog.get_logger("schedules.health")


@dataclass(slots=True)
class StreamHealth:
    """What the daemon knows of one stream since it started (served on ``/healthz`` only as a reason)."""

    failures_in_row: int = 0
    last_status: str | None = None
    last_error: str | None = None
    last_error_class: str | None = None
    last_success_at: str | None = None


class HealthState:
    """Healthy while the scheduler runs, no stream failed more than ``max_failures`` times in a
    row, and the last run of every other job (seal, digest, intake) did not fail.

    ``/healthz`` is unauthenticated: its document holds only ``status`` and ``reasons``, and a
    reason names a stream id or a job and an error class, never an error message (which may
    carry vendor API paths, org names or file paths: those stay in the logs).
    """

    def __init__(self, max_failures: int, streams: list[str]) -> None:
        self.max_failures = max_failures
        self._lock = threading.Lock()
        self._streams = {s: StreamHealth() for s in streams}
        self._jobs: dict[str, tuple[str, str]] = {}  # job -> (error class, failing since)
        self.scheduler_running: Callable[[], bool] = lambda: False

    def seed_success(self, stream: str, ended_at: str) -> None:
        """The last successful run found in the store when the daemon started."""
        with self._lock:
            self._streams.setdefault(stream, StreamHealth()).last_success_at = ended_at

    def stream(self, stream: str) -> StreamHealth:
        """A copy of what is known of ``stream`` (for logs and tests; never served)."""
        with self._lock:
            h = self._streams.get(stream, StreamHealth())
            return StreamHealth(h.failures_in_row, h.last_status, h.last_error, h.last_error_class,
                                h.last_success_at)

    def record(self, result: RunResult) -> int:
        """Note a finished run; return the stream's failures in a row.

        A failed run extends the streak; an ``ok`` or a partial run (items skipped, the rest
        stored) ends it; a run cut short by shutdown says nothing about the source.
        """
        with self._lock:
            health = self._streams.setdefault(result.stream, StreamHealth())
            if result.error_class == "Shutdown":
                return health.failures_in_row
            health.last_status = result.status
            if result.status == "failed":
                health.failures_in_row += 1
                health.last_error = clip(f"{result.error_class}: {result.error or ''}", 300)
                health.last_error_class = result.error_class or "Error"
            else:
                health.failures_in_row = 0
                health.last_error = health.last_error_class = None
                if result.status == "ok" and result.ended_at is not None:
                    health.last_success_at = format_ts(result.ended_at)
            return health.failures_in_row

    def record_crash(self, stream: str, exc: BaseException) -> int:
        """A job that raised before producing a run result counts as a failed run."""
        with self._lock:
            health = self._streams.setdefault(stream, StreamHealth())
            health.failures_in_row += 1
            health.last_status = "failed"
            health.last_error = clip(f"{type(exc).__name__}: {exc}", 300)
            health.last_error_class = type(exc).__name__
            return health.failures_in_row

    def record_job(self, job: str, now: datetime, error_class: str | None = None) -> None:
        """The outcome of one run of ``job`` (``seal``, ``digest``, ``intake``…): a failure makes
        the daemon unhealthy, naming the job, until the job's next run succeeds."""
        with self._lock:
            if error_class is None:
                self._jobs.pop(job, None)
            elif job not in self._jobs:
                self._jobs[job] = (error_class, format_ts(now))
            else:
                self._jobs[job] = (error_class, self._jobs[job][1])

    def report(self, now: datetime) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON document served by ``/healthz``: ``status`` and ``reasons`` only)."""
        reasons: list[str] = []
        if not self.scheduler_running():
            reasons.append("scheduler is not running")
        with self._lock:
            for sid, h in sorted(self._streams.items()):
                if h.failures_in_row > self.max_failures:
                    reasons.append(
                        f"{sid} failed {h.failures_in_row} times in a row "
                        f"(limit {self.max_failures}): {h.last_error_class}"
                    )
            for job, (error_class, since) in sorted(self._jobs.items()):
                reasons.append(f"{job} job failing since {since}: {error_class} "
                               "(the job_failed log event has the detail)")
        healthy = not reasons
        return healthy, {"status": "ok" if healthy else "unhealthy", "reasons": reasons}


def parse_listen(listen: str) -> tuple[str, int]:
    """``"host:port"`` (validated by the config loader) as a (host, port) pair; IPv6 in brackets."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class HealthServer:
    """Serves ``/healthz`` and ``/metrics`` from a background thread; port 0 picks a free port.

    The listener is bounded (``[daemon] max_connections``, ``request_timeout``): idle or slow
    clients cost no thread and never more descriptors than the cap, so they cannot starve the
    collection of threads or files.
    """

    def __init__(self, listen: str, health: HealthState, metrics: Metrics,
                 clock: Callable[[], datetime], *, max_connections: int = 32,
                 request_timeout: float = 10.0) -> None:
        host, port = parse_listen(listen)
        self._server = BoundedListener(host, port, _responder(health, metrics, clock),
                                       max_connections=max_connections,
                                       request_timeout=request_timeout)
        self.host = host
        self.port = self._server.port

    def start(self) -> None:
        """Start answering requests."""
        self._server.start()

    def close(self) -> None:
        """Stop answering and release the port."""
        self._server.close()


def _responder(health: HealthState, metrics: Metrics,
               clock: Callable[[], datetime]) -> Callable[[str], tuple[int, str, bytes]]:
    def respond(path: str) -> tuple[int, str, bytes]:
        if path == "/healthz":
            healthy, doc = health.report(clock())
            return (200 if healthy else 503, "application/json",
                    orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
        if path == "/metrics":
            return 200, CONTENT_TYPE, metrics.exposition()
        return 404, "application/json", b'{"error": "not found"}\n'

    return respond
