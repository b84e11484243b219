"""The `collector` command: argument parsing, error reporting and exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from collector import __version__
from collector.errors import CollectorError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

# Each module defines register(subparsers); handlers import their heavy dependencies lazily so
# that, for example, `collector verify` loads only what verification needs.
COMMAND_MODULES = (
    "collector.cli_collect",
    "collector.cli_run",
    "collector.cli_demo",
    "collector.cli_digest",
    "collector.cli_seal",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="collector",
        description="Collect SOC 2 evidence, write coverage digests, seal and verify snapshots.",
    )
    parser.add_argument("--version", action="version", version=f"collector {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", default=None,
        help="config file (default: $COLLECTOR_CONFIG, else ./config.toml)",
    )
    parser.add_argument("--log-level", default=None, metavar="LEVEL",
                        choices=("debug", "info", "warning", "error"),
                        help="debug, info, warning or error (default: warning; info for run)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the command; a CollectorError is one line on stderr and its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CollectorError as exc:
        print(f"collector: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # A path given on the command line or in the config that cannot be written or read
        # (--out /etc/passwd, an unwritable out_dir, a folder that does not exist): bad input.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"collector: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("collector: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
