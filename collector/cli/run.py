"""`collector run`: the daemon until SIGTERM/SIGINT; its code lives in the `schedules` layer.

The CLI is the program's composition root: this module alone may import `schedules`
(tests/test_architecture.py), and only `collector run` imports this module.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from collector.errors import InputError

__all__ = ["LISTEN_ENV", "add_arguments", "run"]

LISTEN_ENV = "COLLECTOR_LISTEN"
_LISTEN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\s]+):(\d{1,5})$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--listen``, ``--port-file`` and ``--check``."""
    parser.add_argument("--listen", metavar="HOST:PORT", default=None,
                        help="where /healthz and /metrics listen (default: $COLLECTOR_LISTEN, else "
                             "[daemon].listen); port 0 picks a free port")
    parser.add_argument("--port-file", metavar="PATH", type=Path, default=None,
                        help="write the bound port to PATH once listening")
    parser.add_argument("--check", action="store_true",
                        help="check the config, secrets and connectors as the daemon does when it "
                             "starts, then exit (0, or 2 naming every problem) without starting")


def _listen(args: argparse.Namespace) -> str | None:
    """``--listen``, else ``$COLLECTOR_LISTEN``, else None ([daemon].listen); InputError naming
    the one that is not ``host:port``."""
    value: str | None = args.listen or os.environ.get(LISTEN_ENV) or None
    if value is None:
        return None
    match = _LISTEN.match(value)
    if match is None or int(match.group(2)) > 65535:
        source = "--listen" if args.listen else f"${LISTEN_ENV}"
        raise InputError(f'{source}: expected "host:port", got "{value}"')
    return value


def run(args: argparse.Namespace) -> int:
    """JSON events on stdout until SIGTERM/SIGINT, then exit 0 (``--check``: exit 0 at once when
    the daemon could start)."""
    from collector.config import config_path, load_settings
    from schedules.daemon import run_daemon
    from schedules.logsetup import configure_daemon_logging

    listen = _listen(args)
    settings = load_settings(config_path(args.config))
    if args.check:
        from collector.logs import configure_logging
        from schedules.daemon import check_daemon

        configure_logging(args.log_level or "warning")
        planned = check_daemon(settings)
        print(f"{settings.path}: the daemon can start; {len(planned)} streams will run")
        return 0
    configure_daemon_logging(args.log_level or "info")
    return run_daemon(settings, listen=listen, port_file=args.port_file,
                      listen_from="--listen" if args.listen else f"${LISTEN_ENV}")
