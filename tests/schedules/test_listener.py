"""The daemon's listener under idle and slow clients: bounded connections, timeouts, collection unharmed."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from _daemon import DaemonProcess, write_config

from schedules.listener import BoundedListener

EVENTS = "synthetic.events"
# Run the daemon under a descriptor limit low enough that idle sockets without a cap exhaust it.
_LIMIT = 320
_RLIMIT = [sys.executable, "-c",
           "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, "
           f"({_LIMIT}, {_LIMIT})); os.execv(sys.argv[1], sys.argv[1:])"]


def _idle(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    return socks


def test_idle_sockets_neither_block_healthz_nor_starve_collection(
        tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """Far more idle sockets than the process has descriptors: /healthz answers and streams keep collecting."""
    config = write_config(tmp_path, synthetic={"count": 20},
                          daemon={"max_connections": 8, "request_timeout": "5m"}, key=True)
    daemon = DaemonProcess(config, argv=[sys.executable, "-m", "collector.cli", "--config",
                                         str(config), "run"], wrap=_RLIMIT)
    daemons.append(daemon)
    daemon.wait_until("a first run", lambda: daemon.metric("collector_runs_total", stream=EVENTS,
                                                           status="ok") >= 1)
    socks = _idle(daemon.port, _LIMIT + 40)
    try:
        before = daemon.metric("collector_runs_total", stream=EVENTS, status="ok")
        status, body = daemon.get("/healthz")  # urllib's 10 s socket timeout, never a timed assert
        assert status == 200 and json.loads(body)["status"] == "ok"
        daemon.wait_until("two more runs", lambda: daemon.metric(
            "collector_runs_total", stream=EVENTS, status="ok") >= before + 2)
        assert daemon.metric("collector_runs_total", stream=EVENTS, status="failed") == 0
    finally:
        for s in socks:
            s.close()
    assert "Too many open files" not in daemon.stdout_path.read_text()


def test_a_client_that_sends_nothing_is_dropped_after_the_request_timeout() -> None:
    """A connection that never sends its request is closed by the listener after request_timeout."""
    listener = BoundedListener("127.0.0.1", 0, lambda path: (200, "text/plain", b"ok"),
                               max_connections=4, request_timeout=1.0)
    listener.start()
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as idle:
            assert idle.recv(1) == b""  # closed by the server, well inside the 30 s socket timeout
    finally:
        listener.close()


def test_a_new_client_past_the_cap_evicts_the_oldest_idle_one() -> None:
    """At max_connections a new request is answered and the oldest idle connection is closed."""
    listener = BoundedListener("127.0.0.1", 0, lambda path: (200, "text/plain", path.encode()),
                               max_connections=2, request_timeout=60.0)
    listener.start()
    try:
        first = socket.create_connection(("127.0.0.1", listener.port), timeout=30)
        second = socket.create_connection(("127.0.0.1", listener.port), timeout=30)
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b"".join(iter(lambda: client.recv(4096), b""))
        assert answer.startswith(b"HTTP/1.0 200 OK\r\n") and answer.endswith(b"\r\n\r\n/healthz")
        assert first.recv(1) == b""  # the oldest was evicted
        first.close()
        second.close()
        assert listener.open_connections <= 2
    finally:
        listener.close()


def test_oversized_heads_and_other_methods_are_refused() -> None:
    """A head over 8 KiB is answered 431 and a POST 405, each without calling the responder."""
    called: list[str] = []
    listener = BoundedListener("127.0.0.1", 0, lambda p: (called.append(p), (200, "text/plain", b""))[1],
                               max_connections=4, request_timeout=10.0)
    listener.start()
    try:
        for request, status in ((b"GET /" + b"a" * 9000, b"431"),
                                (b"POST /healthz HTTP/1.1\r\n\r\n", b"405")):
            with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as client:
                client.sendall(request)
                assert client.recv(4096).split(b" ")[1] == status
        assert called == []
    finally:
        listener.close()


def test_a_descriptor_limit_too_low_for_the_cap_and_collection_refuses_to_start(tmp_path: Path) -> None:
    """Under `ulimit -n 100` the daemon cannot keep 256 descriptors for collection beside the cap:
    exit 2 naming daemon.max_connections, before anything is collected."""
    import subprocess

    config = write_config(tmp_path, daemon={"max_connections": 8})
    limit = _RLIMIT[:2] + [_RLIMIT[2].replace(str(_LIMIT), "100")]
    proc = subprocess.run([*limit, sys.executable, "-m", "collector.cli", "--config", str(config), "run"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "daemon.max_connections: 8 connections plus 256 descriptors" in proc.stderr
    assert "(ulimit -n)" in proc.stderr and not (tmp_path / "evidence.db").exists()
