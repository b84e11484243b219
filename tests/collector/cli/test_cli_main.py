"""The `collector` entry point: the command map, lazy command imports, help, and `python -m collector.cli`."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector import __version__
from collector.cli import COMMANDS, main

_PROBE = """
import json, sys
from collector.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(*argv: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True,
                          timeout=120, check=True)
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


_HEAVY = ("storage", "connectors", "schedules", "sqlalchemy", "alembic", "httpx", "boto3", "github",
          "jira", "rich", "structlog", "cryptography", "apscheduler", "jinja2", "orjson")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_only_the_invoked_command_module_is_imported(command: str) -> None:
    """`collector <command> --help` imports that command's module and no other command's, and
    none of the libraries its run needs."""
    loaded = _modules_after(command, "--help")
    commands = {m for m in loaded if m.startswith("collector.cli.") and m != "collector.cli._common"}
    assert commands == {COMMANDS[command].module}
    assert [m for m in loaded if any(m == h or m.startswith(h + ".") for h in _HEAVY)] == []


def test_verify_help_imports_no_config_store_or_connectors() -> None:
    """`collector verify --help` loads neither the shared config helpers nor any store, connector,
    scheduler or HTTP code."""
    loaded = _modules_after("verify", "--help")
    heavy = ("collector.cli._common", "collector.config", "storage", "connectors", "schedules",
             "sqlalchemy", "httpx", "boto3", "github", "jira", "rich", "structlog")
    assert [m for m in loaded if any(m == h or m.startswith(h + ".") for h in heavy)] == []


def test_the_top_level_help_lists_every_command_without_importing_any() -> None:
    """`collector --help` names every command with its summary and imports no command module."""
    proc = subprocess.run([sys.executable, "-m", "collector.cli", "--help"], capture_output=True,
                          text=True, timeout=60, check=True)
    for name, info in COMMANDS.items():
        assert name in proc.stdout and info.summary in " ".join(proc.stdout.split())
    assert not [m for m in _modules_after("--help") if m.startswith("collector.cli.")]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_module_declares_its_arguments_and_its_run(command: str) -> None:
    """Each command module holds add_arguments(parser) and run(args), the two names main calls."""
    module = importlib.import_module(COMMANDS[command].module)
    assert callable(module.add_arguments) and callable(module.run)


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A command that does not exist is argparse's exit 2, listing the valid ones."""
    with pytest.raises(SystemExit) as stop:
        main(["colect"])
    assert stop.value.code == 2
    assert "invalid choice: 'colect'" in capsys.readouterr().err


def test_a_command_s_own_usage_errors_come_from_its_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """A command's missing argument is reported by that command's parser, exit 2."""
    with pytest.raises(SystemExit) as stop:
        main(["sample", "x.tar", "--size", "2"])
    assert stop.value.code == 2
    assert "one of the arguments --criterion --control is required" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_entry_point() -> None:
    """`python -m collector.cli --version` prints the version, as the console script does."""
    proc = subprocess.run([sys.executable, "-m", "collector.cli", "--version"], capture_output=True,
                          text=True, timeout=60, check=True)
    assert proc.stdout.strip() == f"collector {__version__}"


_ENTRY = """
import atexit, sys, threading, time
atexit.register(lambda: print("exit handler ran", flush=True))
if sys.argv[1] == "thread":  # a thread still working when the command is done
    threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished", flush=True))).start()
sys.argv[1:] = sys.argv[2:]
from collector.cli import entry
entry()
"""


@pytest.mark.parametrize("thread", ["none", "thread"])
def test_the_program_ends_with_the_command_s_code_after_its_output(tmp_path: Path, thread: str) -> None:
    """`collector` ends with the command's exit code once its exit handlers ran and its piped
    (block-buffered) output was written in full; a thread still running is waited for."""
    config = tmp_path / "config.toml"
    config.write_text("[connectors.synthetic]\ncount = 5\nusers = 2\nfail_at = 3\n")
    proc = subprocess.run([sys.executable, "-c", _ENTRY, thread, "--config", str(config), "collect"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    table = proc.stdout.split("exit handler ran")[0]
    assert "synthetic.events" in table and "synthetic.users" in table and "failed" in table
    assert proc.stdout.count("exit handler ran") == 1
    assert ("thread finished" in proc.stdout) == (thread == "thread")
    if thread == "thread":
        assert proc.stdout.index("thread finished") < proc.stdout.index("exit handler ran")
