"""Signal handling: the first SIGTERM/SIGINT asks for a graceful stop, a second one exits at once."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from types import FrameType

import orjson

from collector.records import format_ts

__all__ = ["SIGNALS", "Shutdown"]

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    """Counts stop signals; the main thread polls ``requested`` and drives the graceful stop.

    The handler takes no lock (a handler runs on the main thread between bytecodes and could
    otherwise wait on a lock that thread already holds): it bumps a counter, and on the second
    signal writes one JSON line straight to fd 1 and leaves with ``os._exit``. That is safe for
    the store because every batch, cursor included, is one transaction: an exit at any instant
    leaves the last committed batch and its cursor, nothing half-written.
    """

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """A stop signal has arrived."""
        return self.count > 0

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (main thread only)."""
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Give the signals back to whoever had them."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def wait(self, poll: float = 0.2) -> str:
        """Block until the first stop signal; return its name."""
        while not self.requested:
            time.sleep(poll)
        return self.first or "signal"

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            self.first = name
            return
        line = orjson.dumps({
            "event": "shutdown_immediate", "signal": name, "level": "warning",
            "timestamp": format_ts(datetime.now(UTC)),
            "note": "second stop signal: exiting now; committed batches are kept, the batch "
                    "in flight is collected again on the next start",
        }) + b"\n"
        try:
            os.write(1, line)
        finally:
            os._exit(128 + signum)

