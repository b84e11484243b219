"""Fixtures: a seeded fake GitHub on loopback and GitHub connectors pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.github import GithubConfig, GithubConnector
from connectors.sdk.base import HttpOptions
from sandbox.github import FakeGithub
from sandbox.github_seed import SeededOrg, seed_org

TOKEN = "ghp_fake_token"
# Retries as in production, with waits short enough for tests.
FAST = HttpOptions(max_attempts=6, backoff=0.01, max_backoff=0.05, timeout=5.0)

MakeConnector = Callable[..., GithubConnector]


@pytest.fixture
def seeded() -> SeededOrg:
    # Anchored an hour back so every seeded pull is before any run's ceiling.
    return seed_org(seed=11, now=datetime.now(UTC) - timedelta(hours=1), days=30, every_hours=72)


@pytest.fixture
def fake(seeded: SeededOrg) -> Iterator[FakeGithub]:
    with FakeGithub(seeded.org, token=TOKEN) as server:
        yield server


@pytest.fixture
def make_connector(fake: FakeGithub) -> Iterator[MakeConnector]:
    opened: list[GithubConnector] = []

    def make(token: str = TOKEN, http: HttpOptions = FAST, **config: Any) -> GithubConnector:
        config.setdefault("base_url", fake.url)
        cfg = GithubConfig(org="acme", request_spacing_ms=0, **config)
        connector = GithubConnector(cfg, env={"GITHUB_TOKEN": token}, http=http)
        opened.append(connector)
        return connector

    yield make
    for connector in opened:
        connector.close()
