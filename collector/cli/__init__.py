"""The `collector` command: which module holds each command, argument parsing, errors and exit codes.

Like pip's ``commands`` package: ``COMMANDS`` maps each command name to the module that holds it
and its one-line help, and only the module of the command being run is imported. Each command
module defines ``add_arguments(parser)`` and ``run(args) -> int``, and imports what it runs
with inside ``run``, so that ``collector <command> --help`` loads no store, connector or SDK.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from collector import __version__
from collector.errors import CollectorError

__all__ = ["COMMANDS", "CommandInfo", "build_parser", "entry", "main"]


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """Where a command lives and what ``collector --help`` says of it."""

    module: str
    summary: str


# In the order `collector --help` lists them.
COMMANDS: dict[str, CommandInfo] = {
    "collect": CommandInfo("collector.cli.collect",
                           "collect once from every enabled stream (or those named)"),
    "streams": CommandInfo("collector.cli.streams",
                           "each stream: enabled, schedule, last run, status, cursor"),
    "controls": CommandInfo("collector.cli.controls",
                            "the organisation's controls, owners and status; --criteria: gaps; "
                            "init: copy the starter library"),
    "evidence": CommandInfo("collector.cli.evidence",
                            "add a document, or import acknowledgements and training from a CSV"),
    "identities": CommandInfo("collector.cli.identities",
                              "people with their accounts in Okta, GitHub and AWS; unlinked accounts"),
    "review": CommandInfo("collector.cli.review",
                          "access reviews: start a campaign's worksheet, import decisions, status"),
    "intake": CommandInfo("collector.cli.intake",
                          "store the documents waiting in the intake folder (one pass)"),
    "run": CommandInfo("collector.cli.run",
                       "the daemon: scheduled collection, weekly digest, sealing, /healthz and /metrics"),
    "demo": CommandInfo("collector.cli.demo",
                        "run the whole product against local fakes of AWS, Okta, GitHub, Jira"),
    "digest": CommandInfo("collector.cli.digest",
                          "write the weekly coverage digest (JSON, Markdown, HTML)"),
    "show": CommandInfo("collector.cli.show",
                        "one stored record (canonical) with its criteria, controls and window"),
    "seal": CommandInfo("collector.cli.seal", "seal an ended window into a signed snapshot"),
    "verify": CommandInfo("collector.cli.verify",
                          "verify snapshots (several, in order: also their chain)"),
    "sample": CommandInfo("collector.cli.sample", "a reproducible sample of a criterion's population"),
    "keys": CommandInfo("collector.cli.keys", "the Ed25519 sealing key"),
}


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """``--config`` and ``--log-level``: on the top level (``default`` None) and again on every
    command and action (``default`` SUPPRESS, so one given before the command is kept), so they
    work before or after the command."""
    parser.add_argument(
        "--config", metavar="PATH", default=default,
        help="config file (default: $COLLECTOR_CONFIG, else ./config.toml)",
    )
    parser.add_argument("--log-level", default=default, metavar="LEVEL",
                        choices=("debug", "info", "warning", "error"),
                        help="debug, info, warning or error (default: warning; info for run)")


def _finish_commands(parser: argparse.ArgumentParser) -> None:
    """Give every action of a command (``keys init``, ``evidence add``) the global options and its
    help line as its ``--help`` page's description, down the whole tree."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        for name, child in action.choices.items():
            if child.description is None:
                child.description = helps.get(name)
            _global_options(child, argparse.SUPPRESS)
            _finish_commands(child)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser listing every command; only ``command``'s module is imported and its
    arguments registered (the others are named, with their help, but take no arguments)."""
    parser = argparse.ArgumentParser(
        prog="collector",
        description="Collect SOC 2 evidence, write coverage digests, seal and verify snapshots.",
    )
    parser.add_argument("--version", action="version", version=f"collector {__version__}")
    _global_options(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, info in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=info.summary, add_help=False)
            continue
        module = importlib.import_module(info.module)
        command_parser = sub.add_parser(name, help=info.summary, description=info.summary)
        module.add_arguments(command_parser)
        _global_options(command_parser, argparse.SUPPRESS)
        _finish_commands(command_parser)
        command_parser.set_defaults(func=module.run)
    return parser


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    """Find the command with a parser that imports no command module, then parse for real.

    The first pass also answers ``--help``, ``--version`` and a missing or unknown command,
    exactly as the full parser would: its top level is the same.
    """
    found, _ = build_parser().parse_known_args(argv)
    return build_parser(found.command).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the command; a CollectorError is one line on stderr and its exit code."""
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    try:
        code: int = args.func(args)
    except CollectorError as exc:
        # One line per problem (a config's problems are reported all at once).
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"collector: error: {line}", file=sys.stderr)
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


def entry() -> NoReturn:
    """The ``collector`` program (console script and ``python -m collector.cli``): ``main()``, then
    end the process with its exit code.

    When the command is done and no other thread runs, the exit handlers run, stdout and stderr
    are flushed, and the process ends without freeing its heap one object at a time, as mypy
    does: tearing down botocore's models and SQLAlchemy's classes was ~0.15 s of CPU of a
    one-shot collection (0.7 s). Otherwise (a thread still running, output that cannot be
    flushed) it exits the ordinary way, which waits for the thread and reports the failure.
    """
    code = main()
    if threading.active_count() == 1:
        atexit._run_exitfuncs()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(code)
        os._exit(code)
    sys.exit(code)
