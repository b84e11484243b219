"""A moto server for the benchmarks: in this process, or in its own (so it is not measured)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

__all__ = ["start_moto"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(in_process: bool = False) -> tuple[str, Callable[[], None]]:
    """A moto server on loopback; its URL and how to stop it. ``in_process``: a thread of this
    process, else a child process (its CPU and memory stay out of this process's figures)."""
    if in_process:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        return f"http://{host}:{port}", server.stop
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):  # up to ~20 s: moto's imports are slow on a loaded machine
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise SystemExit("moto server did not start")

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=10)

    return url, stop
