"""The daemon's Prometheus metrics, in a registry of their own, fed by pipeline and HTTP events."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from collector import __version__
from collector.observe import add_http_listener, remove_http_listener
from collector.pipeline import BatchReport, RunResult

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# A run can take milliseconds (nothing new) or an hour (a 90-day backfill).
_RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """Every metric the daemon exposes on ``/metrics``; each method is safe from any thread."""

    def __init__(self) -> None:
        # `*_created` series double the exposition and no dashboard here reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("collector_build", "The collector's version.", registry=r).info(
            {"version": __version__}
        )
        self.records = Counter(
            "collector_records", "Records committed to the store per stream and kind "
            "(including ones already stored, which dedupe to nothing).",
            ["stream", "kind"], registry=r,
        )
        self.records_new = Counter(
            "collector_records_new", "New records stored per stream.", ["stream"], registry=r,
        )
        self.exceptions = Counter(
            "collector_exceptions", "Exception records committed per criterion.",
            ["criterion"], registry=r,
        )
        self.runs = Counter(
            "collector_runs", "Finished stream runs per stream and status (ok, partial, failed).",
            ["stream", "status"], registry=r,
        )
        self.run_seconds = Histogram(
            "collector_run_duration_seconds", "Wall-clock duration of one stream run.",
            ["stream"], buckets=_RUN_BUCKETS, registry=r,
        )
        self.last_success = Gauge(
            "collector_last_success_timestamp_seconds",
            "Unix time at which the stream's last successful run ended.", ["stream"], registry=r,
        )
        self.failures_in_row = Gauge(
            "collector_stream_consecutive_failures",
            "Failed runs of the stream in a row since its last success.", ["stream"], registry=r,
        )
        self.http_requests = Counter(
            "collector_http_requests", "HTTP requests sent to a source, per connector "
            "(each retry attempt counts).", ["connector"], registry=r,
        )
        self.http_retries = Counter(
            "collector_http_retries", "HTTP requests retried after a retriable answer, per connector.",
            ["connector"], registry=r,
        )
        self.sealed = Counter(
            "collector_windows_sealed", "Observation windows sealed by the daemon.", registry=r,
        )
        self.digests = Counter(
            "collector_digests_written", "Weekly digests written by the daemon.", registry=r,
        )
        self.job_errors = Counter(
            "collector_job_errors", "Scheduled jobs that raised instead of finishing "
            "(job: collect, seal, digest).", ["job"], registry=r,
        )
        self.skipped = Counter(
            "collector_runs_skipped", "Stream runs this replica skipped: another replica held the "
            "stream's lock (reason locked) or had run it in this interval (reason ran).",
            ["stream", "reason"], registry=r,
        )
        self.jobs_skipped = Counter(
            "collector_jobs_skipped", "Seal, digest and intake passes this replica skipped because "
            "another replica held the job's lock (locked) or had run it (ran).",
            ["job", "reason"], registry=r,
        )
        self.scheduler_up = Gauge(
            "collector_scheduler_running", "1 while the scheduler runs, 0 otherwise.", registry=r,
        )
        self._attached = False

    def declare_stream(self, stream: str) -> None:
        """Expose a stream's series at zero before its first run, so dashboards see it exists."""
        self.records_new.labels(stream=stream)
        self.failures_in_row.labels(stream=stream).set(0)
        for status in ("ok", "partial", "failed"):
            self.runs.labels(stream=stream, status=status)

    def on_batch(self, report: BatchReport) -> None:
        """Count one committed batch."""
        for kind, n in report.kinds.items():
            self.records.labels(stream=report.stream, kind=kind).inc(n)
        self.records_new.labels(stream=report.stream).inc(report.new)
        for criterion, n in report.exceptions.items():
            self.exceptions.labels(criterion=criterion).inc(n)

    def on_run(self, result: RunResult, failures_in_row: int) -> None:
        """Count one finished run."""
        self.runs.labels(stream=result.stream, status=result.status).inc()
        self.run_seconds.labels(stream=result.stream).observe(result.seconds)
        self.failures_in_row.labels(stream=result.stream).set(failures_in_row)
        if result.status == "ok" and result.ended_at is not None:
            self.last_success.labels(stream=result.stream).set(result.ended_at.timestamp())

    def on_http(self, event: str, connector: str) -> None:
        """An HttpClient listener: count requests and retries per connector."""
        if event == "request":
            self.http_requests.labels(connector=connector).inc()
        elif event == "retry":
            self.http_retries.labels(connector=connector).inc()

    def attach(self) -> None:
        """Start hearing every connector's HTTP client in this process."""
        if not self._attached:
            add_http_listener(self.on_http)
            self._attached = True

    def detach(self) -> None:
        """Stop hearing HTTP clients."""
        if self._attached:
            remove_http_listener(self.on_http)
            self._attached = False

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
