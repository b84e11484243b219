"""`collector run`'s handler: listen address, settings, daemon logging, then the daemon."""

from __future__ import annotations

import argparse
import os
import re

__all__ = ["LISTEN_ENV", "run"]

LISTEN_ENV = "COLLECTOR_LISTEN"
_LISTEN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\s]+):(\d{1,5})$")


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


def run(args: argparse.Namespace) -> int:
    """`collector run`: JSON events on stdout until SIGTERM/SIGINT, then exit 0."""
    from collector.config import config_path, load_settings
    from schedules.daemon import run_daemon
    from schedules.logsetup import configure_daemon_logging

    listen = _listen(args)
    settings = load_settings(config_path(args.config))
    configure_daemon_logging(args.log_level or "info")
    return run_daemon(settings, listen=listen, port_file=args.port_file)
