"""Configuration: a matrix of bad configs each gives exit 2 and one line naming the file and key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from collector.cli import main
from collector.config import load_settings
from collector.errors import ConfigError

GOOD = """
[storage]
url = "sqlite:///data/evidence.db"
[windows]
period = "month"
timezone = "Europe/Berlin"
seal_grace = "1d"
[digest]
schedule = "mon 07:00"
[connectors.synthetic]
count = 10
interval = "15m"
"""

# (name, config text, text that must appear in the one-line error)
BAD = [
    ("zero interval", '[connectors.synthetic]\ninterval = "0s"', "connectors.synthetic.interval: must be at least 1s"),
    ("in-memory store", '[storage]\nurl = "sqlite://"', "storage.url: an in-memory SQLite store keeps nothing"),
    ("failures threshold below one", "[daemon]\nmax_consecutive_failures = 0",
     "daemon.max_consecutive_failures: must be at least 1"),
    ("over-long duration", '[windows]\nseal_grace = "99999999999d"', "windows.seal_grace: '99999999999d' is too long"),
    ("toml syntax", "[storage\nurl = 1", "invalid TOML"),
    ("unknown section", "[storag]\nurl = 'x'", "storag: unknown section"),
    ("unknown key", "[storage]\nulr = 'sqlite:///x.db'", "storage.ulr: unknown key"),
    ("wrong type string", "[storage]\nurl = 5", "storage.url: expected a string, got integer 5"),
    ("number as duration", "[connectors.synthetic]\ninterval = 15", "connectors.synthetic.interval: expected a duration string"),
    ("bad duration", "[windows]\nseal_grace = 'one day'", 'windows.seal_grace: expected a duration like'),
    ("bad period", "[windows]\nperiod = 'fortnight'", "windows.period"),
    ("bad timezone", "[windows]\ntimezone = 'Mars/Olympus'", "windows.timezone: unknown time zone"),
    ("bad schedule", "[digest]\nschedule = 'monday morning'", "digest.schedule"),
    ("bad listen", "[daemon]\nlisten = 'localhost'", "daemon.listen"),
    ("unknown connector", "[connectors.salesforce]\norg = 'x'", "connectors.salesforce: unknown connector"),
    ("unknown stream", "[connectors.synthetic]\nstreams = ['logs']", "connectors.synthetic.streams[0]: unknown stream"),
    ("stream not string", "[connectors.synthetic]\nstreams = [1]", "connectors.synthetic.streams[0]: expected a string"),
    ("bool as string", "[connectors.synthetic]\nenabled = 'yes'", "connectors.synthetic.enabled: expected true or false"),
    ("int as string", "[connectors.synthetic]\ncount = '10'", "connectors.synthetic.count: expected an integer"),
    ("filing unknown criterion", "[filing]\n'synthetic.events' = ['CC99.1']", 'unknown criterion "CC99.1"'),
    ("filing unknown stream", "[filing]\n'okta.nothing' = ['CC6.1']", 'unknown stream "okta.nothing"'),
    ("in_scope replaced by [scope]", "[controls]\nin_scope = ['CC6.1']", "controls.in_scope"),
    ("library missing", "[controls]\nlibrary = 'nope.toml'", "nope.toml"),
    ("scope category unknown", "[scope]\ncategories = ['secrecy']", "scope.categories"),
    ("scope exclusion without reason", "[scope]\nexclude = [{criterion = 'CC6.4'}]", "scope.exclude[0].reason"),
    ("scope exclude not tables", "[scope]\nexclude = ['CC6.4']", "scope.exclude"),
    ("scope unknown key", "[scope]\ncriteria = []", "scope.criteria"),
    ("section not table", "storage = 'sqlite:///x'", "storage: expected a table"),
    ("bad storage url", "[storage]\nurl = 'mysql://x'", "storage.url"),
    ("batch size", "[storage]\nbatch_size = 0", "storage.batch_size"),
    ("not utf-8", b"\xff\xfe[storage]", "not UTF-8"),
]


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("name", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_clear_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  name: str, text: str | bytes, expected: str) -> None:
    """Each malformed config exits 2 with one stderr line naming the file and the key, no traceback."""
    config = tmp_path / "config.toml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["--config", str(config), "collect"])
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(config) in lines[0] and expected in lines[0], lines[0]
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "data").exists()  # nothing was opened, nothing was contacted


def test_bad_config_through_the_console_script(tmp_path: Path) -> None:
    """The installed command behaves the same in a fresh process: exit 2, one line, no traceback."""
    config = tmp_path / "config.toml"
    config.write_text("[connectors.synthetic]\ninterval = 15\n")
    result = _run(config, "collect")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "connectors.synthetic.interval" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist exits 2 naming the path."""
    result = _run(tmp_path / "nope.toml", "streams")
    assert result.returncode == 2
    assert "nope.toml: cannot read file" in result.stderr and "Traceback" not in result.stderr


def test_missing_secret_env_var_is_exit_2_before_contact(tmp_path: Path) -> None:
    """A connector whose *_env key names an unset variable fails before any source is contacted."""
    from dataclasses import dataclass

    from collector.collect import check_secrets
    from connectors.sdk.base import ConnectorConfig, secret_field

    @dataclass(frozen=True, kw_only=True)
    class WithToken(ConnectorConfig):
        token_env: str = secret_field("EC_TEST_TOKEN")

    config = tmp_path / "config.toml"
    config.write_text("")
    settings = load_settings(config)
    settings = type(settings)(path=settings.path, connectors={"x": WithToken()})
    with pytest.raises(ConfigError, match=r"connectors\.x\.token_env: environment variable \$EC_TEST_TOKEN is not set"):
        check_secrets(settings, ["x"], env={})
    check_secrets(settings, ["x"], env={"EC_TEST_TOKEN": "t"})


def test_good_config_loads_typed_values_and_resolves_paths(tmp_path: Path) -> None:
    """Durations become timedeltas, zones validate, and relative paths resolve against the config's folder."""
    config = tmp_path / "config.toml"
    config.write_text(GOOD)
    settings = load_settings(config)
    assert settings.connectors["synthetic"].interval == timedelta(minutes=15)
    assert settings.windows.seal_grace == timedelta(days=1)
    assert settings.storage_url == f"sqlite:///{tmp_path / 'data' / 'evidence.db'}"
    assert settings.digest.out_dir == "data/digests"


def test_empty_config_uses_defaults(tmp_path: Path) -> None:
    """Every key but a connector's identity has a default; an empty file is a valid config."""
    config = tmp_path / "config.toml"
    config.write_text("")
    settings = load_settings(config)
    assert settings.windows.period == "month" and settings.daemon.listen == "127.0.0.1:9108"
    assert settings.connectors == {}


def test_config_example_is_valid() -> None:
    """The shipped config.example.toml loads (its connectors need secrets only at collection)."""
    settings = load_settings(Path(__file__).resolve().parents[2] / "config.example.toml")
    assert settings.windows.seal_grace == timedelta(days=1)


def test_a_secret_with_a_pasted_newline_is_refused_before_any_request(tmp_path: Path) -> None:
    """A token ending in a newline would fail at the vendor after every retry: refused at start,
    naming the key and the variable but not the value."""
    from collector.collect import check_secrets
    from collector.errors import ConfigError

    config = tmp_path / "config.toml"
    config.write_text('[connectors.synthetic]\ntoken_env = "EC_TEST_TOKEN"\n')
    settings = load_settings(config)
    check_secrets(settings, ["synthetic"], {"EC_TEST_TOKEN": "tok-123"})
    with pytest.raises(ConfigError, match=r"synthetic\.token_env: environment variable \$EC_TEST_TOKEN "
                                          "has leading or trailing whitespace") as caught:
        check_secrets(settings, ["synthetic"], {"EC_TEST_TOKEN": "tok-123\n"})
    assert "tok-123" not in str(caught.value)


_IMPORTS_PROBE = """
import json, sys
from pathlib import Path
from collector.config import load_settings
load_settings(Path(sys.argv[1]))
print(json.dumps(sorted(sys.modules)))
"""
_CONNECTORS = ("connectors.aws", "connectors.github", "connectors.jira", "connectors.okta", "boto3",
               "github", "jira")


def _loaded_by_loading(config: Path) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_PROBE, str(config)], capture_output=True,
                          text=True, timeout=60, check=True)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    return {h for h in _CONNECTORS if any(m == h or m.startswith(h + ".") for m in loaded)}


def test_loading_imports_only_the_connectors_the_config_names(tmp_path: Path) -> None:
    """A config with one connector section imports that connector alone; a filing entry (or a
    control library) naming another built-in's stream is checked without importing it."""
    config = tmp_path / "config.toml"
    config.write_text("[connectors.synthetic]\ncount = 1\n")
    assert _loaded_by_loading(config) == set()
    config.write_text("[connectors.synthetic]\ncount = 1\n[filing]\n'okta.users' = ['CC6.1']\n")
    assert _loaded_by_loading(config) == set()


FOUR_SECRETS = """
[connectors.okta]
org_url = "https://acme.okta.com"
token_env = "EC_T_OKTA"
[connectors.github]
org = "acme"
token_env = "EC_T_GITHUB"
[connectors.jira]
url = "https://acme.atlassian.net"
email_env = "EC_T_JIRA_EMAIL"
token_env = "EC_T_JIRA_TOKEN"
change_jql = "project = CHG"
"""
FOUR_VARIABLES = ("EC_T_OKTA", "EC_T_GITHUB", "EC_T_JIRA_EMAIL", "EC_T_JIRA_TOKEN")


def test_every_missing_secret_is_reported_in_one_run(tmp_path: Path) -> None:
    """Four unset secret variables are four stderr lines of one `collect` run (exit 2), each naming file and key."""
    config = tmp_path / "config.toml"
    config.write_text(FOUR_SECRETS)
    env = {k: v for k, v in os.environ.items() if k not in FOUR_VARIABLES}
    result = subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config), "collect"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4, result.stderr
    for line, var in zip(lines, FOUR_VARIABLES, strict=True):
        assert line.startswith(f"collector: error: {config}: connectors.") and f"${var} is not set" in line
    assert "Traceback" not in result.stderr


def test_every_problem_of_a_config_is_reported_at_once(tmp_path: Path) -> None:
    """Problems in several sections and several keys of one section come out together, one per key."""
    config = tmp_path / "config.toml"
    config.write_text("[storage]\nurl = 5\nbatch = 1\n[windows]\ntimezone = 'Mars/Olympus'\n"
                      "[daemon]\nlisten = 'localhost'\n[connectors.synthetic]\ninterval = 15\n"
                      "[filing]\n'synthetic.events' = ['CC99.1']\n[nonsense]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    keys = [p.key for p in caught.value.problems]
    assert keys == ["nonsense", "storage.url", "storage.batch", "windows.timezone", "daemon.listen",
                    "connectors.synthetic.interval", 'filing."synthetic.events"']
    assert all(p.file == str(config) for p in caught.value.problems)
    assert str(caught.value).count("\n") == len(keys) - 1


def test_streams_warns_about_each_enabled_stream_that_cannot_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`collector streams` lists every stream and warns, per enabled stream, of each unset secret,
    and of a sealing key not made yet."""
    for var in FOUR_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EC_T_GITHUB", "set")
    config = tmp_path / "config.toml"
    config.write_text(FOUR_SECRETS + '[storage]\nurl = "sqlite:///evidence.db"\n')
    assert main(["--config", str(config), "streams"]) == 0
    err = capsys.readouterr().err
    assert f"collector: warning: signing.key_file: {tmp_path / 'data' / 'keys' / 'seal-ed25519.pem'} " \
           "does not exist" in err
    warnings = [line for line in err.splitlines() if "cannot run" in line]
    assert any(line.startswith("collector: warning: okta.system_log cannot run: "
                               "connectors.okta.token_env: environment variable $EC_T_OKTA is not set")
               for line in warnings)
    assert not any(line.startswith("collector: warning: github.") for line in warnings)
    jira = [line for line in warnings if line.startswith("collector: warning: jira.change_tickets ")]
    assert len(jira) == 2  # email and token
    assert main(["--config", str(config), "streams", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["okta.system_log"]["cannot_run"] and not rows["github.pull_requests"]["cannot_run"]


def test_okta_settle_defaults_to_the_recommended_minute(tmp_path: Path) -> None:
    """An Okta section without `settle` reads the System Log up to one minute before the run."""
    config = tmp_path / "config.toml"
    config.write_text('[connectors.okta]\norg_url = "https://acme.okta.com"\n')
    assert load_settings(config).connectors["okta"].settle == timedelta(minutes=1)  # type: ignore[attr-defined]
    example = load_settings(Path(__file__).resolve().parents[2] / "config.example.toml")
    assert example.connectors["okta"].settle == timedelta(minutes=1)  # type: ignore[attr-defined]
