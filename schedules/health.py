"""Stream health and the `/healthz` + `/metrics` HTTP listener (stdlib server, one thread per request)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import structlog

from collector.pipeline import RunResult
from collector.records import format_ts
from schedules.metrics import CONTENT_TYPE, Metrics

__all__ = ["HealthServer", "HealthState", "StreamHealth", "parse_listen"]

log = structlog.get_logger("schedules.health")


@dataclass(slots=True)
class StreamHealth:
    """What the daemon knows of one stream since it started."""

    failures_in_row: int = 0
    last_status: str | None = None
    last_error: str | None = None
    last_success_at: str | None = None


class HealthState:
    """Healthy while the scheduler runs and no stream failed more than ``max_failures`` times in a row."""

    def __init__(self, max_failures: int, streams: list[str]) -> None:
        self.max_failures = max_failures
        self._lock = threading.Lock()
        self._streams = {s: StreamHealth() for s in streams}
        self.scheduler_running: Callable[[], bool] = lambda: False

    def seed_success(self, stream: str, ended_at: str) -> None:
        """The last successful run found in the store when the daemon started."""
        with self._lock:
            self._streams.setdefault(stream, StreamHealth()).last_success_at = ended_at

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
                health.last_error = f"{result.error_class}: {(result.error or '')[:300]}"
            else:
                health.failures_in_row = 0
                health.last_error = None
                if result.status == "ok" and result.ended_at is not None:
                    health.last_success_at = format_ts(result.ended_at)
            return health.failures_in_row

    def record_crash(self, stream: str, error: str) -> int:
        """A job that raised before producing a run result counts as a failed run."""
        with self._lock:
            health = self._streams.setdefault(stream, StreamHealth())
            health.failures_in_row += 1
            health.last_status = "failed"
            health.last_error = error[:300]
            return health.failures_in_row

    def report(self, now: datetime) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON document served by ``/healthz``)."""
        reasons: list[str] = []
        running = self.scheduler_running()
        if not running:
            reasons.append("scheduler is not running")
        streams: dict[str, Any] = {}
        with self._lock:
            for sid, h in sorted(self._streams.items()):
                streams[sid] = {
                    "failures_in_row": h.failures_in_row, "last_status": h.last_status,
                    "last_success_at": h.last_success_at, "last_error": h.last_error,
                }
                if h.failures_in_row > self.max_failures:
                    reasons.append(
                        f"{sid} failed {h.failures_in_row} times in a row "
                        f"(limit {self.max_failures}): {h.last_error}"
                    )
        healthy = not reasons
        return healthy, {
            "status": "ok" if healthy else "unhealthy", "checked_at": format_ts(now),
            "scheduler": "running" if running else "stopped", "reasons": reasons,
            "streams": streams,
        }


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def parse_listen(listen: str) -> tuple[str, int]:
    """``"host:port"`` (validated by the config loader) as a (host, port) pair; IPv6 in brackets."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class HealthServer:
    """Serves ``/healthz`` and ``/metrics`` from a background thread; port 0 picks a free port."""

    def __init__(self, listen: str, health: HealthState, metrics: Metrics,
                 clock: Callable[[], datetime]) -> None:
        host, port = parse_listen(listen)
        handler = _handler(health, metrics, clock)
        server_type = _Server6 if ":" in host else ThreadingHTTPServer
        self._server: ThreadingHTTPServer = server_type((host, port), handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    def start(self) -> None:
        """Start answering requests."""
        self._thread.start()

    def close(self) -> None:
        """Stop answering and release the port."""
        self._server.shutdown()
        self._server.server_close()


def _handler(health: HealthState, metrics: Metrics,
             clock: Callable[[], datetime]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "evidence-collector"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                healthy, doc = health.report(clock())
                self._send(200 if healthy else 503, "application/json",
                           orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE, metrics.exposition())
            else:
                self._send(404, "application/json", b'{"error": "not found"}\n')

        def do_HEAD(self) -> None:
            self.do_GET()

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # The stdlib writes plain text to stderr; the daemon's logs are JSON events.
            log.debug("http_request", path=self.path.split("?", 1)[0], client=self.client_address[0])

    return Handler
