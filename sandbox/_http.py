"""A loopback HTTP/1.1 server with regex routes, a request log and fault injection."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from random import Random
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "Drop",
    "FakeServer",
    "Fault",
    "FaultQueue",
    "Handler",
    "LoggedRequest",
    "Request",
    "Response",
    "Slow",
    "Status",
    "Truncated",
]

_NO_RESPONSE = 0
"""The status logged for a request that got no response at all (a dropped connection)."""

_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Request:
    """One request as a route handler sees it.

    ``headers`` has lower-case names (repeated headers joined with ", "); ``query`` keeps
    every value of a repeated parameter; ``groups`` and ``params`` are the route pattern's
    positional and named groups; ``base_url`` is the server's own URL, for building links.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    groups: tuple[str, ...]
    params: dict[str, str]
    base_url: str

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when the body is empty; ValueError when invalid."""
        return json.loads(self.body) if self.body else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``, or ``default`` when absent."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class Response:
    """What a route answers.

    ``body`` is sent as is when it is bytes; anything else is serialised as JSON (a ``str``
    too) and gets ``Content-Type: application/json`` unless ``headers`` names one.
    ``headers`` is a list so a name may repeat (Okta sends one ``Link`` header per rel).
    Content-Length is always computed by the server; framing headers given here are ignored.
    """

    status: int = 200
    body: object = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received, with the status it answered and the fault applied.

    ``status`` is 0 when no response was sent (a ``Drop``); ``fault`` is the fault's label.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int
    fault: str | None


@dataclass(frozen=True)
class Status:
    """Answer with this status instead of calling the route (so the fake's state is untouched).

    ``body`` None sends a small JSON error; otherwise it is encoded like ``Response.body``.
    """

    code: int
    headers: Sequence[tuple[str, str]] = ()
    body: object = None

    @property
    def label(self) -> str:
        """The name the request log records, e.g. ``status:429``."""
        return f"status:{self.code}"

    def response(self) -> Response:
        """The response this fault sends."""
        body = {"error": "injected", "status": self.code} if self.body is None else self.body
        return Response(self.code, body, list(self.headers))


@dataclass(frozen=True)
class Truncated:
    """Call the route, then send its status and headers with a Content-Length larger than the
    part of the body actually sent, and close the connection."""

    @property
    def label(self) -> str:
        """The name the request log records."""
        return "truncated"


@dataclass(frozen=True)
class Slow:
    """Wait ``seconds`` (cut short only by ``FakeServer.stop``), then answer normally."""

    seconds: float

    @property
    def label(self) -> str:
        """The name the request log records, e.g. ``slow:0.5``."""
        return f"slow:{self.seconds:g}"


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending any response; the route is not called."""

    @property
    def label(self) -> str:
        """The name the request log records."""
        return "drop"


Fault = Status | Truncated | Slow | Drop


@dataclass
class _Queued:
    fault: Fault
    times: int
    path_prefix: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


@dataclass(frozen=True)
class _RandomFaults:
    rng: Random
    rate: float
    kinds: tuple[Fault, ...]
    path_prefix: str | None


class FaultQueue:
    """Faults to apply to coming requests; thread-safe.

    Queued faults come first, in FIFO order: a request takes the oldest entry whose filters
    it matches. A request no queued entry matches may get a random fault (see ``random``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._random: _RandomFaults | None = None

    def push(
        self,
        fault: Fault,
        times: int = 1,
        path_prefix: str | None = None,
        method: str | None = None,
    ) -> None:
        """Apply ``fault`` to the next ``times`` requests whose path starts with
        ``path_prefix`` and whose method is ``method`` (None matches any)."""
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        with self._lock:
            self._queue.append(_Queued(fault, times, path_prefix, method.upper() if method else None))

    def random(
        self,
        rng: Random,
        rate: float,
        kinds: Sequence[Fault],
        path_prefix: str | None = None,
    ) -> None:
        """From now on, give each request (under ``path_prefix``) a fault drawn from ``kinds``
        with probability ``rate``, using ``rng`` so a seed reproduces the run when requests
        arrive in the same order; replaces any earlier setting, ``rate`` 0 turns it off."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], not {rate}")
        if rate and not kinds:
            raise ValueError("kinds must name at least one fault")
        with self._lock:
            self._random = _RandomFaults(rng, rate, tuple(kinds), path_prefix) if rate else None

    def clear(self) -> None:
        """Forget every queued fault and turn random faults off."""
        with self._lock:
            self._queue.clear()
            self._random = None

    @property
    def pending(self) -> int:
        """How many queued applications remain (random faults not counted)."""
        with self._lock:
            return sum(entry.times for entry in self._queue)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault to apply to a request now arriving, consuming it; None for none."""
        method = method.upper()
        with self._lock:
            for index, entry in enumerate(self._queue):
                if entry.matches(method, path):
                    entry.times -= 1
                    if entry.times == 0:
                        del self._queue[index]
                    return entry.fault
            chance = self._random
            if chance is None:
                return None
            if chance.path_prefix is not None and not path.startswith(chance.path_prefix):
                return None
            if chance.rng.random() >= chance.rate:
                return None
            return chance.rng.choice(chance.kinds)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class FakeServer:
    """An HTTP/1.1 keep-alive server on 127.0.0.1 (a free port) in a daemon thread.

    Register routes with ``route``; a request no route matches gets a 404 JSON answer (a
    405 when only the method differs). A route handler that raises gets a 500 and its
    exception is kept in ``errors``. A server runs once: ``start``, then ``stop``.
    """

    def __init__(self) -> None:
        self.faults = FaultQueue()
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        self._log: list[LoggedRequest] = []
        self._errors: list[BaseException] = []
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeServer:
        """Bind a free loopback port and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("FakeServer.start called twice; a server runs once")
        self._httpd = _Server(("127.0.0.1", 0), _RequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-http-{self._httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open client connections and the listening socket; idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None or self._stopping.is_set():
            return
        with self._lock:
            self._stopping.set()
        httpd.shutdown()
        thread.join()
        with self._lock:
            open_connections = list(self._connections.items())
        for sock, _ in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        for _, worker in open_connections:
            worker.join(timeout=2.0)
        httpd.server_close()

    def __enter__(self) -> FakeServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``; only once started."""
        if self._httpd is None:
            raise RuntimeError("FakeServer has no URL before start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- routes ------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer ``method`` requests whose path (no query) ``re.match``es ``pattern`` with
        ``handler``; routes are tried in the order registered."""
        with self._lock:
            self._routes.append(_Route(method.upper(), re.compile(pattern), handler))

    def not_found(self, request: Request) -> Response:
        """The answer for a path no route matches; subclasses may imitate their vendor."""
        return Response(404, {"error": "not_found", "path": request.path})

    # -- request log -------------------------------------------------------------------

    @property
    def requests(self) -> tuple[LoggedRequest, ...]:
        """A snapshot of the request log, oldest first.

        An entry is logged before its response is written, so a client that has its
        answer (or its error) always finds the request here.
        """
        with self._lock:
            return tuple(self._log)

    @property
    def errors(self) -> tuple[BaseException, ...]:
        """Exceptions raised by route handlers, oldest first."""
        with self._lock:
            return tuple(self._errors)

    def clear_log(self) -> None:
        """Forget every logged request and handler error."""
        with self._lock:
            self._log.clear()
            self._errors.clear()

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        """How many logged requests have ``method`` and a path starting with ``path_prefix``."""
        wanted = method.upper() if method else None
        return sum(
            1
            for entry in self.requests
            if (wanted is None or entry.method == wanted)
            and (path_prefix is None or entry.path.startswith(path_prefix))
        )

    # -- used by the request handler ---------------------------------------------------

    def _attach(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self._connections[sock] = threading.current_thread()
            return True

    def _detach(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _respond(self, request: Request) -> Response:
        with self._lock:
            routes = list(self._routes)
        allowed: list[str] = []
        for route in routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            routed = Request(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=request.body,
                groups=tuple(g or "" for g in match.groups()),
                params={k: v for k, v in match.groupdict().items() if v is not None},
                base_url=request.base_url,
            )
            try:
                return route.handler(routed)
            except Exception as exc:  # a bug in a fake must not kill the connection
                with self._lock:
                    self._errors.append(exc)
                return Response(500, {"error": "handler_error", "type": type(exc).__name__})
        if allowed:
            return Response(
                405,
                {"error": "method_not_allowed", "path": request.path},
                [("Allow", ", ".join(sorted(set(allowed))))],
            )
        return self.not_found(request)


def _encode(response: Response) -> tuple[bytes, list[tuple[str, str]]]:
    """The payload bytes and the headers to send (framing headers left to the server)."""
    headers = [(k, v) for k, v in response.headers if k.lower() not in _FRAMING_HEADERS]
    body = response.body
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), headers
    payload = json.dumps(body, separators=(",", ":")).encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return payload, headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        fake: FakeServer,
    ) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is routine under fault injection: stay quiet.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeServer/1"
    # Headers and body go out in separate writes; with Nagle on, each answer would wait
    # for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    @property
    def _fake(self) -> FakeServer:
        return cast(_Server, self.server).fake

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        fake = self._fake
        if not fake._attach(self.connection):
            return
        try:
            super().handle()
        finally:
            fake._detach(self.connection)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65537).strip():
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(3)

    def _dispatch(self) -> None:
        fake = self._fake
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "unreadable request body")
            self.close_connection = True
            return
        split = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            groups=(),
            params={},
            base_url=fake.url,
        )
        fault = fake.faults.take(request.method, request.path)
        label = fault.label if fault is not None else None

        def record(status: int) -> None:
            fake._record(LoggedRequest(request.method, request.path, request.query, headers, status, label))

        if isinstance(fault, Drop):
            record(_NO_RESPONSE)
            self.close_connection = True
            return
        if isinstance(fault, Status):
            response = fault.response()
        else:
            if isinstance(fault, Slow):
                fake._pause(fault.seconds)
            response = fake._respond(request)
        payload, response_headers = _encode(response)
        record(response.status)
        if isinstance(fault, Truncated):
            self._send_truncated(response.status, response_headers, payload)
        else:
            self._send(response.status, response_headers, payload)

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_truncated(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        sent = payload[: len(payload) // 2]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(max(len(payload), len(sent) + 1)))
        self.end_headers()
        self.wfile.write(sent)
        self.wfile.flush()
        self.close_connection = True
