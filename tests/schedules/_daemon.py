"""A `collector run` subprocess for tests: config on disk, port from --port-file, JSON log reader."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# Generous bounds: they only stop a broken daemon from hanging the suite; nothing is timed.
START_WITHIN = 60.0
WAIT_WITHIN = 60.0


def write_config(directory: Path, url: str | None = None, *, synthetic: Mapping[str, Any] | None = None,
                 daemon: Mapping[str, Any] | None = None, extra: str = "", key: bool = False) -> Path:
    """A config file for the daemon with a synthetic connector on a one-second schedule; with
    ``key`` the sealing key too (else the seal job fails and /healthz says so)."""
    if key:
        from collector.seal.keys import create_key

        create_key(directory / "data" / "keys" / "seal-ed25519.pem")
    syn = {"interval": "1s", "count": 200, "users": 3, **(synthetic or {})}
    dmn = {"listen": "127.0.0.1:0", "max_consecutive_failures": 3, **(daemon or {})}
    lines = ["[storage]", f'url = "{url or "sqlite:///" + str(directory / "evidence.db")}"',
             "batch_size = 50", "", "[daemon]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in dmn.items()]
    lines += ["", "[connectors.synthetic]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in syn.items()]
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


class DaemonProcess:
    """One daemon in a subprocess; stdout and stderr go to files so nothing blocks on a pipe."""

    def __init__(self, config: Path, *, args: tuple[str, ...] = (), env: Mapping[str, str] | None = None,
                 argv: list[str] | None = None, cwd: Path | None = None,
                 wrap: list[str] | None = None, port_file: bool = True,
                 log_level: str | None = None, user: int | None = None,
                 extra_groups: tuple[int, ...] = ()) -> None:
        self.dir = config.parent
        self.port_file = self.dir / f"port-{time.monotonic_ns()}"
        self.stdout_path = self.dir / f"stdout-{time.monotonic_ns()}.log"
        self.stderr_path = self.dir / f"stderr-{time.monotonic_ns()}.log"
        level = ["--log-level", log_level] if log_level else []
        command = argv or [sys.executable, "-m", "collector.cli", "--config", str(config), *level, "run"]
        command = [*(wrap or []), *command, *args]
        if port_file:
            command += ["--port-file", str(self.port_file)]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            # ``user`` switches uid/gid in the child itself (no wrapper process to eat signals).
            ids: dict[str, Any] = {} if user is None else {"user": user, "group": user,
                                                            "extra_groups": list(extra_groups)}
            self.proc = subprocess.Popen(command, stdout=out, stderr=err, env=full_env,
                                         cwd=str(cwd or REPO), **ids)
        self.port = self._wait_port()

    def _wait_port(self) -> int:
        deadline = time.monotonic() + START_WITHIN
        while time.monotonic() < deadline:
            if self.port_file.exists() and self.port_file.read_text().strip():
                return int(self.port_file.read_text())
            for event in self._events_so_far():
                if event.get("event") == "listening":
                    return int(event["port"])
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}: {self.stderr()}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError("daemon did not start listening")

    def _events_so_far(self) -> list[dict[str, Any]]:
        found = []
        for line in self.stdout_path.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue  # a line still being written
        return found

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of GET ``path`` on the daemon's listener."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self) -> tuple[int, dict[str, Any]]:
        """(status, parsed /healthz document)."""
        status, body = self.get("/healthz")
        return status, json.loads(body)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample in /metrics (0 when absent)."""
        _, body = self.get("/metrics")
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
                       if labels else "")
        for line in body.decode().splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == want:
                return float(value)
        return 0.0

    def wait_until(self, what: str, check: Callable[[], bool]) -> None:
        """Poll ``check`` until true; fail naming ``what`` if the daemon dies or never gets there."""
        deadline = time.monotonic() + WAIT_WITHIN
        while time.monotonic() < deadline:
            if check():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) before {what}")
            time.sleep(0.1)
        raise AssertionError(f"daemon never reached: {what}")

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event written to stdout so far (a non-JSON line fails the test)."""
        out = []
        for line in self.stdout_path.read_text().splitlines():
            out.append(json.loads(line))
        return out

    def has_event(self, name: str, **fields: Any) -> bool:
        """Some stdout event is named ``name`` and carries ``fields``."""
        return any(e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
                   for e in self.events())

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the daemon."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds."""
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        """Everything written to stderr."""
        return self.stderr_path.read_text()

    def kill(self) -> None:
        """Make sure the process is gone (test clean-up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
