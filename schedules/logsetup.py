"""Daemon logging: every line on stdout is one JSON event, the stdlib's (APScheduler, SQLAlchemy) too."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from collector.logs import configure_logging

__all__ = ["configure_daemon_logging"]


def configure_daemon_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """structlog events to ``stream`` (stdout): JSON, or console rendering when it is a TTY."""
    out = stream or sys.stdout
    configure_logging(level, stream=out)
    renderer: structlog.typing.Processor
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = getattr(logging, level.upper(), logging.INFO)
    root.setLevel(max(numeric, logging.WARNING))
    # APScheduler warns on every skipped or late run; with coalescing and one instance per job
    # those are expected, and the daemon's own job events say what ran.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.captureWarnings(True)
