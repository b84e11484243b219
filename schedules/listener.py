"""A bounded HTTP/1.0 listener: idle connections cost no thread, are capped in number and timed out."""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

import structlog

__all__ = ["MAX_HEAD_BYTES", "BoundedListener", "Responder"]

log = structlog.get_logger("schedules.listener")

MAX_HEAD_BYTES = 8192
"""A request line and its headers larger than this is refused (no request here needs 1 KiB)."""

Responder = Callable[[str], tuple[int, str, bytes]]
"""Path -> (status, content type, body); called on a worker thread, never on the accepting one."""


@dataclass(slots=True)
class _Pending:
    """A connection whose request head has not fully arrived yet."""

    since: float
    head: bytearray = field(default_factory=bytearray)


class BoundedListener:
    """Serves GET/HEAD from one selector thread and a small pool of workers.

    The selector thread accepts connections and reads each request head without blocking, so
    a connection that says nothing costs a descriptor and no thread. At most
    ``max_connections`` connections are open at once (the descriptors the listener can ever
    hold): a new connection beyond the cap evicts the oldest one still sending its head, or is
    closed at once when every open connection is being answered. A head not complete within
    ``request_timeout`` seconds is dropped, and a worker's write to a client that does not
    read gives up after the same time. One request per connection (HTTP/1.0, no keep-alive).
    """

    def __init__(self, host: str, port: int, respond: Responder, *, max_connections: int,
                 request_timeout: float, workers: int = 2) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=128)
        self._sock.setblocking(False)
        self.port = int(self._sock.getsockname()[1])
        self._respond = respond
        self._max = max_connections
        self._timeout = request_timeout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._pending: dict[socket.socket, _Pending] = {}  # insertion order: oldest first
        self._busy = 0
        self._lock = threading.Lock()
        # Daemon threads: a worker stuck writing to a client that stopped reading never holds
        # up the process's exit (it gives up after request_timeout anyway).
        self._queue: queue.SimpleQueue[tuple[socket.socket, bytes | None] | None] = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._work, name=f"health-http-worker-{n}", daemon=True)
                         for n in range(workers)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="health-http", daemon=True)

    @property
    def open_connections(self) -> int:
        """Connections held now (waiting for their head, or being answered)."""
        with self._lock:
            return len(self._pending) + self._busy

    def start(self) -> None:
        """Start accepting connections."""
        for worker in self._workers:
            worker.start()
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, drop every waiting connection and release the port."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for conn in list(self._pending):
            self._drop(conn)
        for _ in self._workers:
            self._queue.put(None)
        self._selector.close()
        self._sock.close()

    def _loop(self) -> None:
        tick = min(0.5, self._timeout / 4)
        while not self._stop.is_set():
            try:
                for key, _ in self._selector.select(timeout=tick):
                    if key.fileobj is self._sock:
                        self._accept()
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
                self._expire(time.monotonic() - self._timeout)
            except Exception as exc:  # a bug here must not end health answers for good
                log.error("listener_loop_failed", error_class=type(exc).__name__)
                self._stop.wait(tick)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: leave the backlog, and try again later
                log.warning("listener_accept_failed", error=exc.strerror or str(exc))
                self._stop.wait(0.5)
                return
            if self.open_connections >= self._max and not self._evict_oldest():
                log.warning("listener_connection_refused", reason="every connection is being answered",
                            max_connections=self._max)
                conn.close()
                continue
            conn.setblocking(False)
            with self._lock:
                self._pending[conn] = _Pending(time.monotonic())
            self._selector.register(conn, selectors.EVENT_READ)

    def _evict_oldest(self) -> bool:
        oldest = next(iter(self._pending), None)
        if oldest is None:
            return False
        log.info("listener_connection_evicted", reason="connection limit reached",
                 max_connections=self._max)
        self._drop(oldest)
        return True

    def _read(self, conn: socket.socket) -> None:
        pending = self._pending.get(conn)
        if pending is None:
            return
        try:
            chunk = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        pending.head += chunk
        complete = b"\r\n\r\n" in pending.head or b"\n\n" in pending.head
        if not complete and len(pending.head) <= MAX_HEAD_BYTES:
            return
        self._selector.unregister(conn)
        with self._lock:
            del self._pending[conn]
            self._busy += 1
        self._queue.put((conn, bytes(pending.head) if complete else None))

    def _expire(self, before: float) -> None:
        for conn, pending in list(self._pending.items()):
            if pending.since >= before:
                break  # insertion order is age order
            self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        with self._lock:
            self._pending.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn)
        conn.close()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            self._answer(*job)

    def _answer(self, conn: socket.socket, head: bytes | None) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(self._timeout)  # since 3.5 the whole of sendall, not each chunk
            conn.sendall(self._response(head))
        except OSError:
            pass  # the client went away or stopped reading: nothing to answer
        except Exception as exc:  # a bug in a responder must not kill the worker
            log.error("listener_request_failed", error_class=type(exc).__name__)
        finally:
            conn.close()
            with self._lock:
                self._busy -= 1

    def _response(self, head: bytes | None) -> bytes:
        if head is None:
            return _render(431, "application/json", b'{"error": "request head too large"}\n', True)
        parts = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return _render(400, "application/json", b'{"error": "bad request"}\n', True)
        method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
        if method not in ("GET", "HEAD"):
            return _render(405, "application/json", b'{"error": "method not allowed"}\n', True,
                           extra=("Allow: GET, HEAD",))
        status, content_type, body = self._respond(target.split("?", 1)[0])
        log.debug("http_request", path=target.split("?", 1)[0], status=status)
        return _render(status, content_type, body, method == "GET")


def _render(status: int, content_type: str, body: bytes, with_body: bool,
            extra: tuple[str, ...] = ()) -> bytes:
    lines = [f"HTTP/1.0 {status} {HTTPStatus(status).phrase}", "Server: evidence-collector",
             f"Date: {formatdate(usegmt=True)}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", "Cache-Control: no-store", "Connection: close", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body if with_body else b"")
