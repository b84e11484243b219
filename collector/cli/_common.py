"""What the commands that read the config share: loading it, and the `--json` option.

`verify` and `sample` need no config and import nothing from here. Like the command modules,
this imports its dependencies when called, so `collector <command> --help` stays instant.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.config import Settings

__all__ = ["add_json_option", "print_json", "program", "settings_from"]


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


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when inside it (``.venv/bin/collector``), else absolute."""
    try:
        relative = path.absolute().relative_to(Path.cwd())
    except ValueError:
        return str(path.absolute())
    return str(relative) if relative.parent != Path(".") else f"./{relative}"


def program(argv0: str | None = None, path: str | None = None) -> str:
    """How to run this same ``collector`` again from the working folder, for printed commands:
    ``collector`` when that name on ``$PATH`` is this program, else its path (an unactivated
    virtualenv's ``.venv/bin/collector``), else ``python -m collector.cli`` with this Python."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if argv0 and Path(argv0).name not in ("__main__.py", "-c", "-m") and Path(argv0).is_file():
        script = Path(argv0)
    else:  # python -m collector.cli: the console script installed beside this Python, if any
        script = Path(sys.executable).parent / "collector"
        if not script.is_file():
            return f"{_shown(Path(sys.executable))} -m collector.cli"
    found = shutil.which("collector", path=os.environ.get("PATH") if path is None else path)
    if found is not None and Path(found).resolve() == script.resolve():
        return "collector"
    return _shown(script)
