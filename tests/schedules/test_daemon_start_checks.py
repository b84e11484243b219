"""`collector run` refuses, before starting anything, what would only fail later."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def main(argv: list[str]) -> tuple[int, str]:
    """``collector`` in its own process: the daemon configures logging process-wide."""
    done = subprocess.run([sys.executable, "-m", "collector.cli", *argv], capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stderr


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[storage]\nurl = "sqlite:///evidence.db"\n[daemon]\nlisten = "127.0.0.1:0"\n'
                    '[connectors.synthetic]\ncount = 10\n' + extra)
    return path


@pytest.mark.parametrize(("extra", "expected"), [
    ('[digest]\nslack_webhook_env = "EC_TEST_NO_SUCH_HOOK"\n',
     "digest.slack_webhook_env: environment variable $EC_TEST_NO_SUCH_HOOK is not set"),
    ('[digest]\nsmtp_host = "mail.example.com"\nmail_from = "a@b.c"\n',
     "digest.mail_to: required when digest.smtp_host is set"),
])
def test_a_digest_the_digest_command_would_refuse_stops_the_daemon(
        tmp_path: Path, extra: str, expected: str) -> None:
    code, err = main(["--config", str(_config(tmp_path, extra)), "run"])
    assert code == 2
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_port_file_in_a_missing_folder_stops_the_daemon_before_it_listens(tmp_path: Path) -> None:
    port_file = tmp_path / "no-such-folder" / "port"
    code, err = main(["--config", str(_config(tmp_path)), "run", "--port-file", str(port_file)])
    assert code == 2 and f"--port-file {port_file}: its folder does not exist" in err


@pytest.mark.parametrize("source", ["flag", "variable", "config"])
def test_a_port_in_use_names_where_the_address_came_from(tmp_path: Path, source: str) -> None:
    """A taken port is blamed on --listen, $COLLECTOR_LISTEN or [daemon].listen, whichever gave it."""
    import os
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        config = _config(tmp_path)
        env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_LISTEN"}
        argv = ["--config", str(config), "run"]
        if source == "flag":
            argv += ["--listen", address]
        elif source == "variable":
            env["COLLECTOR_LISTEN"] = address
        else:
            config.write_text(config.read_text().replace('"127.0.0.1:0"', f'"{address}"'))
        done = subprocess.run([sys.executable, "-m", "collector.cli", *argv], capture_output=True,
                              text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("collector: error:")]
    expected = {"flag": "collector: error: --listen: cannot listen on",
                "variable": "collector: error: $COLLECTOR_LISTEN: cannot listen on",
                "config": f"collector: error: {config}: daemon.listen: cannot listen on"}[source]
    assert len(error) == 1 and error[0].startswith(expected), done.stderr


def test_run_check_reports_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    """`collector run --check` exits 2 naming every unset secret, or 0 on a config the daemon could
    start with, and either way opens no store and listens nowhere (a container's one-shot check)."""
    config = _config(tmp_path, '[digest]\nslack_webhook_env = "EC_TEST_NO_SUCH_HOOK"\n'
                               '[connectors.okta]\norg_url = "https://acme.okta.com"\n'
                               'token_env = "EC_TEST_NO_OKTA"\n')
    code, err = main(["--config", str(config), "run", "--check"])
    assert code == 2, err
    assert "$EC_TEST_NO_OKTA is not set" in err and "$EC_TEST_NO_SUCH_HOOK is not set" in err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err
    good = _config(tmp_path)
    done = subprocess.run([sys.executable, "-m", "collector.cli", "run", "--check", "--config", str(good)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "the daemon can start; 2 streams will run" in done.stdout, done.stderr
    assert not (tmp_path / "evidence.db").exists()
