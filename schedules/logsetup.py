"""Daemon logging: every line on stdout is one JSON event, the stdlib's (APScheduler, SQLAlchemy) too."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from collector.logs import configure_logging

__all__ = ["configure_daemon_logging"]


def configure_daemon_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """``configure_logging`` to ``stream`` (stdout): structlog, the stdlib and ``warnings`` as
    JSON events, or console rendering when it is a TTY."""
    configure_logging(level, stream=stream or sys.stdout)
    # APScheduler warns on every skipped or late run; with coalescing and one instance per job
    # those are expected, and the daemon's own job events say what ran.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
