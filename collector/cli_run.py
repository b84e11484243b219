"""`collector run`: the daemon command, whose code lives in the `schedules` layer."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

__all__ = ["cmd_run", "register"]

# The CLI is the program's composition root: it reaches the daemon layer by name, and only when
# `run` is invoked, so no collector module imports `schedules` (tests/test_architecture.py) and
# other commands (`collector verify` above all) never load it.
DAEMON_COMMAND = "schedules.command"


def register(sub: Any) -> None:
    """Add `run` to the command parser."""
    p = sub.add_parser(
        "run", help="the daemon: scheduled collection, weekly digest, sealing, /healthz and /metrics",
    )
    p.add_argument("--listen", metavar="HOST:PORT", default=None,
                   help="where /healthz and /metrics listen (default: $COLLECTOR_LISTEN, else "
                        "[daemon].listen); port 0 picks a free port")
    p.add_argument("--port-file", metavar="PATH", type=Path, default=None,
                   help="write the bound port to PATH once listening")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT; the exit code."""
    code: int = importlib.import_module(DAEMON_COMMAND).run(args)
    return code
