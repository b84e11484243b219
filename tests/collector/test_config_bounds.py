"""Config bounds: *_env keys name variables (the pasted secret is never shown); durations have maxima."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.durations import DURATION_LIMITS, MAX_DURATION, duration_limit

TOKEN = "00aBcD3fGhIjKlMnOpQrStUvWxYz-0123456789"


@pytest.mark.parametrize(("section", "key"), [
    ("connectors.okta", "token_env"), ("connectors.github", "token_env"),
    ("connectors.jira", "email_env"), ("digest", "slack_webhook_env"), ("digest", "smtp_password_env"),
    ("connectors.synthetic", "token_env"),
])
def test_a_secret_pasted_into_an_env_key_is_refused_without_echoing_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str) -> None:
    """A token (or webhook URL) pasted where a variable name belongs: exit 2, the key named, the value never shown."""
    identity = {"connectors.okta": 'org_url = "https://acme.okta.com"\n',
                "connectors.github": 'org = "acme"\n',
                "connectors.jira": 'url = "https://acme.atlassian.net"\nchange_jql = "project = CHG"\n'
                                   'token_env = "JIRA_API_TOKEN"\n'}
    for secret in (TOKEN, "https://hooks.slack.com/services/T0/B0/abcdefgh", "lower_case_name"):
        config = tmp_path / "config.toml"
        config.write_text(f"[{section}]\n{identity.get(section, '')}{key} = \"{secret}\"\n")
        assert main(["--config", str(config), "streams"]) == 2
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and f"{section}.{key}: must name an environment variable" in err
        assert secret not in err + out and secret[:8] not in err + out


def test_env_keys_that_are_variable_names_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Upper-case names with digits and underscores (not leading digits) are accepted."""
    config = tmp_path / "config.toml"
    config.write_text('[digest]\nslack_webhook_env = "_SLACK_HOOK_2"\n[connectors.synthetic]\ntoken_env = ""\n')
    assert main(["--config", str(config), "streams"]) == 0


@pytest.mark.parametrize(("section", "key", "value", "bound"), [
    ("connectors.synthetic", "backfill", "999999d", "3650d"),
    ("connectors.synthetic", "interval", "32d", "31d"),
    ("windows", "seal_grace", "93d", "92d"),
    ("intake", "settle", "2d", "1d"),
    ("daemon", "request_timeout", "301s", "5m"),
])
def test_durations_past_their_key_maximum_are_refused_at_load(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str, value: str,
        bound: str) -> None:
    """`backfill = "999999d"` and other over-long durations fail once at load, naming key and bound."""
    config = tmp_path / "config.toml"
    config.write_text(f'[{section}]\n{key} = "{value}"\n')
    assert main(["--config", str(config), "streams"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{section}.{key}: '{value}' is too long (at most {bound})" in err


def test_every_duration_key_has_a_maximum() -> None:
    """A key without its own maximum is bounded by ten years; the per-key maxima are all below it."""
    assert duration_limit("identities.offboarding_grace") == MAX_DURATION
    assert all(limit <= MAX_DURATION for limit in DURATION_LIMITS.values())


def test_a_deeply_nested_control_library_or_intake_sidecar_is_one_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TOML nesting thousands deep in the control library is exit 2 naming it; in an intake sidecar an InputError."""
    from collector.errors import InputError
    from collector.manual.intake import parse_sidecar

    deep = "x = " + "[" * 50_000 + "]" * 50_000 + "\n"
    (tmp_path / "library.toml").write_text(deep)
    config = tmp_path / "config.toml"
    config.write_text('[controls]\nlibrary = "library.toml"\n')
    assert main(["--config", str(config), "streams"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "library.toml: not valid TOML: arrays or tables nested too deeply" in err
    sidecar = tmp_path / "policy.pdf.toml"
    sidecar.write_text(deep)
    with pytest.raises(InputError, match=r"policy\.pdf\.toml: not valid TOML: arrays or tables nested too deeply"):
        parse_sidecar(sidecar)
