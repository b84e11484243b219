"""README.md's shell commands, copied as written into a fresh clone, work: each names a program that
exists, each `collector` command parses, and the configuration walk-through runs for real."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from collector.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
EXTERNAL = {"docker"}
"""Programs the README uses that this machine need not have (the container is built elsewhere)."""
SECRETS = ("OKTA_API_TOKEN", "GITHUB_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN")


def shell_blocks(text: str = README) -> list[list[str]]:
    """Each ```sh block as its commands: continuation lines joined, comments kept for shlex."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", body)
        blocks.append([line.strip() for line in joined.splitlines() if line.strip()])
    return blocks


def commands(line: str) -> list[list[str]]:
    """The simple commands of one line (split at && and |), as argv lists, comments dropped."""
    out: list[list[str]] = []
    current: list[str] = []
    # A placeholder such as <SPKI SHA-256> is one word the reader replaces.
    lexer = shlex.shlex(re.sub(r"<[^>]*>", "PLACEHOLDER", line), posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    for word in lexer:
        if word in ("&&", "|", ";", "||"):
            out.append(current)
            current = []
        else:
            current.append(word)
    out.append(current)
    return [c for c in out if c]


def test_every_readme_command_names_something_that_exists() -> None:
    """Each command's program exists in a clone (a file, the console script the install creates,
    or a program on this machine), and every `collector` command line is one the CLI accepts."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    seen_collector = 0
    for block in shell_blocks():
        for line in block:
            for argv in commands(line):
                program = argv[0]
                if program in ("cd", "mkdir", "export") or "=" in program:
                    continue
                if program.startswith(".venv/bin/"):
                    assert Path(program).name in (*scripts, "pip", "python"), line
                elif "/" in program:
                    assert (REPO / program).exists(), line
                else:
                    assert program in EXTERNAL or shutil.which(program), f"{program}: {line}"
                if Path(program).name == "collector":
                    seen_collector += 1
                    words = argv[1:]
                    found, _ = build_parser().parse_known_args(words)
                    build_parser(found.command).parse_args(words)  # SystemExit(2) if refused
                for word in argv[1:]:
                    if word.startswith((".ci/", "deploy/", "docs/")) or word == "config.example.toml":
                        assert (REPO / word).exists(), f"{word}: {line}"
    assert seen_collector >= 4


def test_setup_block_names_the_extra_and_the_ci_script() -> None:
    """The two set-up commands: the `sandbox` extra exists and `.ci/run` is a bash script that parses."""
    [setup] = [b for b in shell_blocks() if any("pip install" in line for line in b)]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "'.[sandbox]'" in setup[0] and "sandbox" in extras
    assert "bash .ci/run" in setup
    assert subprocess.run(["bash", "-n", str(REPO / ".ci" / "run")], check=False).returncode == 0


def test_configuration_walk_through_runs_as_written(tmp_path: Path) -> None:
    """In a folder holding the clone's config.example.toml and its .venv, the walk-through's commands
    run as written: the copy, `keys init`, `streams` (warning of each stream whose secret is unset)
    and `collect` (exit 2 naming every unset secret before contacting anything)."""
    [walk] = [b for b in shell_blocks() if any("keys init" in line for line in b)]
    (tmp_path / "config.example.toml").write_text((REPO / "config.example.toml").read_text())
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "COLLECTOR_CONFIG"}
    env["PATH"] = "/usr/bin:/bin"  # the virtualenv is not activated
    results = [subprocess.run(["sh", "-c", line], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120) for line in walk]
    cp, keys, streams, collect = results
    assert cp.returncode == 0 and (tmp_path / "config.toml").is_file()
    assert keys.returncode == 0 and "fingerprint:" in keys.stdout, keys.stderr
    assert streams.returncode == 0, streams.stderr
    assert "okta.system_log cannot run" in streams.stderr and "$GITHUB_TOKEN is not set" in streams.stderr
    assert collect.returncode == 2, collect.stderr
    assert all(f"${var} is not set" in collect.stderr for var in SECRETS), collect.stderr


@pytest.mark.parametrize("link", sorted(set(re.findall(r"\]\(([^)#:]+)\)", README))))
def test_readme_links_point_into_the_repository(link: str) -> None:
    """Every relative link of the README names a file of the repository."""
    assert (REPO / link).exists(), link
