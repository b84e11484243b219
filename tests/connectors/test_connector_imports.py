"""Importing a connector package loads no vendor SDK: those load when a connector opens its session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ("boto3", "botocore", "github", "jira", "requests", "httpx")


def _vendor_modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(m for m in {VENDOR!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(done.stdout.split())


def test_importing_every_builtin_connector_loads_no_vendor_sdk() -> None:
    """Reading a config or listing streams (which import the connector packages) costs no vendor SDK."""
    loaded = _vendor_modules_after(
        "import connectors.aws, connectors.github, connectors.jira, connectors.okta, connectors.synthetic")
    assert loaded == set()


@pytest.mark.parametrize(("module", "expected"), [
    ("connectors.github._client", {"github", "requests"}),
    ("connectors.jira._client", {"jira", "requests"}),
    ("connectors.okta._client", {"httpx"}),
])
def test_the_client_modules_are_where_the_vendor_sdks_load(module: str, expected: set[str]) -> None:
    """Each client module, imported when its connector opens a session, does load its SDK (so the
    check above can see one)."""
    assert expected <= _vendor_modules_after(f"import {module}")
