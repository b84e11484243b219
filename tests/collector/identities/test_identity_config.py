"""The [identities] section: defaults, overrides and service accounts, and one error per wrong key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from collector.config import load_settings
from collector.errors import ConfigError


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_settings(path).identities


def test_defaults_and_a_full_section(tmp_path: Path) -> None:
    """Without the section: 24h and 7d, nothing linked by hand; with it, names are lowercased."""
    identities = _load(tmp_path, "")
    assert identities.offboarding_grace == timedelta(hours=24)  # type: ignore[attr-defined]
    assert identities.revoke_grace == timedelta(days=7)  # type: ignore[attr-defined]
    full = _load(tmp_path, '[identities]\nservice_accounts = ["CI-Deploy", "github:Bot"]\nrevoke_grace = "3d"\n'
                           '[identities.overrides.aws]\n"Alice.Admin" = "Alice@Acme.example"\n')
    assert full.overrides == {"aws": {"alice.admin": "alice@acme.example"}}  # type: ignore[attr-defined]
    assert full.is_service_account("aws", "ci-deploy")  # type: ignore[attr-defined]
    assert full.is_service_account("github", "BOT") and not full.is_service_account("aws", "bot")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "key", "problem"), [
    ('[identities]\nofboarding_grace = "1d"\n', "identities.ofboarding_grace", "unknown key"),
    ('[identities.overrides.jira]\nx = "a@b.example"\n', "identities.overrides.jira", "unknown system"),
    ('[identities.overrides.github]\nocto = "not an email"\n', "identities.overrides.github.octo",
     "is not an email address"),
    ('[identities]\nservice_accounts = ["okta:x"]\n', "identities.service_accounts[0]", "expected an account name"),
    ('[identities]\nrevoke_grace = "soon"\n', "identities.revoke_grace", "soon"),
])
def test_a_wrong_key_is_one_error_naming_it(tmp_path: Path, text: str, key: str, problem: str) -> None:
    """Each mistake is a ConfigError naming the file's key and what is wrong."""
    with pytest.raises(ConfigError, match=problem) as caught:
        _load(tmp_path, text)
    assert key in str(caught.value)
