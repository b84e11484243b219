"""A connector whose host does not resolve or refuses connections: its streams fail at once with that cause."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.collect import collect
from collector.config import load_settings, open_store
from connectors.sdk.retry import add_listener, remove_listener

ENV = {"EC_T_OKTA": "t", "EC_T_GITHUB": "t", "EC_T_JIRA_EMAIL": "a@example.com", "EC_T_JIRA_TOKEN": "t"}


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def events() -> Iterator[Counter[tuple[str, str]]]:
    """Every (event, connector) the HTTP clients report: one "request" per attempt, one "retry" per retry."""
    seen: Counter[tuple[str, str]] = Counter()

    def listener(event: str, connector: str) -> None:
        seen[(event, connector)] += 1

    add_listener(listener)
    yield seen
    remove_listener(listener)


def test_unreachable_connectors_fail_every_stream_with_the_cause_without_retrying(
        tmp_path: Path, closed_port: int, events: Counter[tuple[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Okta and AWS on a closed port, GitHub and Jira on names that do not resolve: each stream
    fails naming the cause, nothing is retried, and each connector's host is tried once per run."""
    for name, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///evidence.db"
[connectors.aws]
endpoint_url = "http://127.0.0.1:{closed_port}"
cloudtrail_bucket = "org-trail"
[connectors.okta]
org_url = "http://127.0.0.1:{closed_port}"
token_env = "EC_T_OKTA"
[connectors.github]
org = "acme"
base_url = "https://nonexistent.invalid"
token_env = "EC_T_GITHUB"
[connectors.jira]
url = "https://acme.nonexistent.invalid"
email_env = "EC_T_JIRA_EMAIL"
token_env = "EC_T_JIRA_TOKEN"
change_jql = "project = CHG"
""")
    settings = load_settings(config)
    store = open_store(settings)
    try:
        results = collect(settings, store, env=ENV)
    finally:
        store.close()
    causes = {
        "aws": f"aws: connection refused: 127.0.0.1:{closed_port}",
        "okta": f"okta: connection refused: 127.0.0.1:{closed_port}",
        "github": "github: name does not resolve: nonexistent.invalid",
        "jira": "jira: name does not resolve: acme.nonexistent.invalid",
    }
    by_connector: Counter[str] = Counter()
    for result in results:
        connector = result.stream.partition(".")[0]
        by_connector[connector] += 1
        assert result.status == "failed", result
        assert result.error_class == "UnreachableError" and result.error == causes[connector], result
    assert by_connector["okta"] == 2 and by_connector["github"] == 4 and by_connector["jira"] >= 2
    assert by_connector["aws"] == 5
    assert not [e for e in events if e[0] == "retry"], events
    assert events[("request", "okta")] == events[("request", "jira")] == events[("request", "aws")] == 1, events


def test_collect_prints_the_whole_cause_and_routes_library_warnings_as_json(
        tmp_path: Path, closed_port: int) -> None:
    """`collect` against a refused port exits 1, its table holds the cause's every word uncut, and
    a library's stdlib log line and a `warnings.warn` come out as JSON events on stderr."""
    import json
    import os
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///evidence.db"\n[connectors.okta]\n'
                      f'org_url = "http://127.0.0.1:{closed_port}"\ntoken_env = "EC_T_OKTA"\n')
    # As a library would, once the command's logging is set up (the command sets it up again).
    code = ("import logging, sys, warnings\n"
            "from collector.cli import main\n"
            "from collector.logs import configure_logging\n"
            "configure_logging('warning')\n"
            "logging.getLogger('urllib3.connectionpool').warning('Retrying after %s', 'x')\n"
            "warnings.warn('a library is unhappy', stacklevel=1)\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "EC_T_OKTA": "t", "COLUMNS": "80"}
    result = subprocess.run([sys.executable, "-c", code, "--config", str(config), "collect"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr
    words = f"okta: connection refused: 127.0.0.1:{closed_port}".split()
    table_words = result.stdout.split()
    assert all(word in table_words for word in words), result.stdout
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    loggers = {e.get("logger") for e in events}
    assert {"urllib3.connectionpool", "py.warnings"} <= loggers, result.stderr
    assert all(line.startswith("{") or line.startswith("collecting ") for line in result.stderr.splitlines()), \
        result.stderr
