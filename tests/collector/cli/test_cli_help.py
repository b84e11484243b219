"""Every command's --help page: a description, help on every option; global options anywhere."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.cli import COMMANDS, build_parser, main


def _pages(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``parser`` and every parser of a command or action below it, with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _pages(child, f"{path} {name}")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_help_page_has_a_description_and_every_option_help(command: str) -> None:
    """`collector COMMAND [ACTION] --help` describes the command, and every argument says what it is
    for, `--config` and `--log-level` included."""
    top = build_parser(command)
    [commands] = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    pages = list(_pages(commands.choices[command], command))
    for path, page in pages:
        assert page.description, f"collector {path} --help has no description"
        undocumented = [a.dest for a in page._actions
                        if not isinstance(a, argparse._SubParsersAction)
                        and (not a.help or a.help == argparse.SUPPRESS)]
        assert not undocumented, f"collector {path}: no help for {undocumented}"
        options = {o for a in page._actions for o in a.option_strings}
        assert {"--config", "--log-level", "--help"} <= options, path


def test_sample_size_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`collector sample --help` explains --size (it printed the bare option before)."""
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    page = capsys.readouterr().out
    assert "--size N" in page and "how many records to draw" in page


@pytest.mark.parametrize("argv", [
    ["--config", "{config}", "streams", "--json"],
    ["streams", "--config", "{config}", "--json"],
    ["streams", "--json", "--config", "{config}", "--log-level", "error"],
    ["--log-level", "error", "streams", "--config", "{config}", "--json"],
])
def test_global_options_work_before_or_after_the_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """`--config` and `--log-level` are taken before or after the command's name."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "sqlite:///evidence.db"\n[connectors.synthetic]\ncount = 1\n')
    assert main([a.replace("{config}", str(config)) for a in argv]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} == {"synthetic.events", "synthetic.users"}


def test_a_global_option_after_an_action_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`collector keys init --config X` writes the key beside X's config, as `--config X keys init` would."""
    config = tmp_path / "config.toml"
    config.write_text("")
    assert main(["keys", "init", "--config", str(config)]) == 0
    assert (tmp_path / "data" / "keys").is_dir()
    assert main(["keys", "show", "--config", str(config)]) == 0
    assert "fingerprint:" in capsys.readouterr().out
