"""Fixtures for the Jira connector: a seeded fake on loopback and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.jira import JiraConfig, JiraConnector
from connectors.sdk.base import HttpOptions
from sandbox.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, FakeJira

ENV = {"JIRA_EMAIL": DEFAULT_EMAIL, "JIRA_API_TOKEN": DEFAULT_TOKEN}
# Fast back-off for tests that drive the connector directly; the server's Retry-After still rules.
FAST = HttpOptions(max_attempts=6, deadline=30.0, backoff=0.01, max_backoff=0.05, timeout=5.0)


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    """60 days of seeded change tickets and incidents ending a few minutes ago."""
    with FakeJira.seeded(now=datetime.now(UTC)) as server:
        yield server


MakeConnector = Callable[..., JiraConnector]


@pytest.fixture
def make_connector(fake: FakeJira) -> Iterator[MakeConnector]:
    """Build connectors against ``fake`` (config keys and env overridable); closed afterwards."""
    made: list[JiraConnector] = []

    def make(env: dict[str, str] | None = None, http: HttpOptions = FAST, **keys: Any) -> JiraConnector:
        values = {"url": fake.url, "email_env": "JIRA_EMAIL", "token_env": "JIRA_API_TOKEN",
                  "change_jql": "project = CHG", **keys}
        connector = JiraConnector(JiraConfig(**values), env=ENV if env is None else env, http=http)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
