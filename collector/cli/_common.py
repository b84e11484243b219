"""What the commands that read the config share: loading it, and the `--json` option.

`verify` and `sample` need no config and import nothing from here. Like the command modules,
this imports its dependencies when called, so `collector <command> --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.config import Settings

__all__ = ["add_json_option", "print_json", "settings_from"]


def settings_from(args: argparse.Namespace, default_level: str = "warning") -> Settings:
    """Configure logging at ``--log-level`` (else ``default_level``), then load and validate the
    settings ``--config`` names (else ``$COLLECTOR_CONFIG``, else ``./config.toml``)."""
    from collector.config import config_path, load_settings
    from collector.logs import configure_logging

    configure_logging(args.log_level or default_level)
    return load_settings(config_path(args.config))


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: print machine-readable output instead of a table."""
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, one trailing newline."""
    import orjson

    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
