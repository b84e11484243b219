"""`collector run`: the command module the CLI loads by name (collector never imports schedules)."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["LISTEN_ENV", "register"]

LISTEN_ENV = "COLLECTOR_LISTEN"
_LISTEN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\s]+):(\d{1,5})$")


def register(sub: Any) -> None:
    """Add `run` to the command parser."""
    p = sub.add_parser(
        "run", help="the daemon: scheduled collection, weekly digest, sealing, /healthz and /metrics",
    )
    p.add_argument("--listen", metavar="HOST:PORT", default=None,
                   help=f"where /healthz and /metrics listen (default: ${LISTEN_ENV}, else "
                        "[daemon].listen); port 0 picks a free port")
    p.add_argument("--port-file", metavar="PATH", type=Path, default=None,
                   help="write the bound port to PATH once listening")
    p.set_defaults(func=cmd_run)


def _listen(args: argparse.Namespace) -> str | None:
    from collector.errors import InputError

    value = args.listen or os.environ.get(LISTEN_ENV) or None
    if value is None:
        return None
    match = _LISTEN.match(value)
    if match is None or int(match.group(2)) > 65535:
        source = "--listen" if args.listen else f"${LISTEN_ENV}"
        raise InputError(f'{source}: expected "host:port", got "{value}"')
    return value


def cmd_run(args: argparse.Namespace) -> int:
    """`collector run`: JSON events on stdout until SIGTERM/SIGINT, then exit 0."""
    from collector.config import config_path, load_settings
    from schedules.daemon import run_daemon
    from schedules.logsetup import configure_daemon_logging

    listen = _listen(args)
    settings = load_settings(config_path(args.config))
    configure_daemon_logging(args.log_level or "info")
    return run_daemon(settings, listen=listen, port_file=args.port_file)
