"""structlog set-up: JSON events, one per line; console rendering when the stream is a TTY."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

__all__ = ["configure_logging"]


class _CurrentStream:
    """Writes to whatever sys.stderr/sys.stdout is at call time (test capture swaps them)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return int(getattr(sys, self.name).write(text))

    def flush(self) -> None:
        getattr(sys, self.name).flush()

    def isatty(self) -> bool:
        return bool(getattr(sys, self.name).isatty())


def configure_logging(level: str = "warning", stream: TextIO | None = None,
                      force_json: bool = False) -> None:
    """Route structlog, stdlib logging and ``warnings`` to ``stream`` at ``level`` (the stdlib's at
    warning or above), all rendered alike: JSON lines, or console lines on a TTY."""
    out: TextIO | _CurrentStream = stream or _CurrentStream("stderr")
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    if out.isatty() and not force_json:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the stdlib (urllib3's retries, botocore) and warn through
    # `warnings` (py.warnings): the same events, rendered the same way, one per line.
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
    root.setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
