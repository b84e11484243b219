"""Every connector's URL keys: no credentials, no query, https unless loopback; exit 2 naming the key, never the secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from connectors.sdk.urls import is_loopback, url_problems

_SECTIONS = {
    "okta": ('org_url', 'token_env = "OKTA_API_TOKEN"\n'),
    "github": ("base_url", 'org = "acme"\ntoken_env = "GITHUB_TOKEN"\n'),
    "jira": ("url", 'email_env = "JIRA_EMAIL"\ntoken_env = "JIRA_API_TOKEN"\nchange_jql = "project = CHG"\n'),
    "aws": ("endpoint_url", 'cloudtrail_bucket = "org-trail"\n'),
}

# (name, URL, problem that must be named); the secret is "s3cr3t" wherever one is written.
_BAD = [
    ("credentials", "http://admin:s3cr3t@vendor.example.com", "must not hold credentials"),
    ("credentials over https", "https://admin:s3cr3t@vendor.example.com", "must not hold credentials"),
    ("a user name only", "https://s3cr3t@vendor.example.com", "must not hold credentials"),
    ("a token in the query", "https://vendor.example.com/?token=s3cr3t", "must not hold a query string"),
    ("plain http to the network", "http://vendor.example.com", "must be https://"),
    ("not a URL", "vendor.example.com", 'expected a URL like "https://'),
]


@pytest.mark.parametrize("connector", sorted(_SECTIONS))
@pytest.mark.parametrize(("name", "url", "problem"), _BAD, ids=[b[0] for b in _BAD])
def test_a_bad_url_is_exit_2_naming_the_key_and_never_the_secret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], connector: str, name: str, url: str,
        problem: str) -> None:
    """Each connector refuses the URL before any source is contacted: exit 2, one line naming
    connectors.<name>.<key> and the problem, and the secret appears nowhere in the output."""
    key, rest = _SECTIONS[connector]
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n'
                      f'[connectors.{connector}]\n{key} = "{url}"\n{rest}')
    code = main(["--config", str(config), "collect"])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and f"connectors.{connector}.{key}" in err and problem in err, err
    assert "s3cr3t" not in err + out


def test_aws_service_endpoints_follow_the_same_rule() -> None:
    """A per-service endpoint with credentials is refused by its index without echoing it."""
    from connectors.aws import AwsConfig

    problems = dict(AwsConfig(cloudtrail_bucket="org-trail",
                              service_endpoints=("backup=https://u:s3cr3t@backup.example.com",)).problems())
    assert "must not hold credentials" in problems["service_endpoints[0]"]
    assert "s3cr3t" not in str(problems)


def test_loopback_http_and_https_urls_pass() -> None:
    """Sandboxes on loopback may use http://; https:// anywhere passes; a path is allowed."""
    for url in ("http://127.0.0.1:8080", "http://localhost", "http://[::1]:9000", "http://127.8.9.10",
                "https://api.github.com", "https://ghe.example.com/api/v3"):
        assert url_problems("url", url, "https://x") == [], url
    assert is_loopback("127.0.0.53") and not is_loopback("127.example.com") and not is_loopback("10.0.0.1")
