"""Fixtures for the Okta connector tests: a seeded fake org on loopback and configs pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.config import Settings, load_settings
from connectors.okta import OktaConfig, OktaConnector
from connectors.sdk.base import HttpOptions
from sandbox.okta import DEFAULT_TOKEN, FakeOkta
from sandbox.okta_data import OktaOrg, seed_org

ENV = {"OKTA_API_TOKEN": DEFAULT_TOKEN}
FAST = HttpOptions(max_attempts=6, deadline=20.0, backoff=0.01, max_backoff=0.05, timeout=0.5)
"""Retry policy for tests that inject many faults: same attempts, tiny waits, short timeout."""


@pytest.fixture(scope="session")
def anchor() -> datetime:
    """The seeded org's "now": an hour before the real clock, so every event is before a run's ceiling."""
    return (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


@pytest.fixture(scope="session")
def org(anchor: datetime) -> OktaOrg:
    """The seeded org, shared by every test: tests add events to a fake, never to this org."""
    return seed_org(seed=7, now=anchor, days=60)


@pytest.fixture
def fake(org: OktaOrg) -> Iterator[FakeOkta]:
    with FakeOkta(org) as server:
        yield server


@pytest.fixture
def connector_for(fake: FakeOkta) -> Iterator[Callable[..., OktaConnector]]:
    """Build OktaConnectors against the fake; each is closed after the test."""
    made: list[OktaConnector] = []

    def make(env: dict[str, str] | None = None, http: HttpOptions | None = FAST,
             **config: Any) -> OktaConnector:
        # settle 0s unless a test says otherwise: the fake shows every event as soon as it is made.
        connector = OktaConnector(OktaConfig(org_url=fake.url, **{"settle": timedelta(0), **config}),
                                  env=ENV if env is None else env, http=http)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def settings_for(tmp_path: Path, fake: FakeOkta) -> Callable[..., Settings]:
    """Write a config file with an [connectors.okta] section for the fake, and load it."""

    def make(name: str = "config", batch_size: int = 1000, **okta: Any) -> Settings:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        lines = [f'[storage]\nurl = "sqlite:///{folder / "evidence.db"}"\nbatch_size = {batch_size}\n',
                 f'[connectors.okta]\norg_url = "{fake.url}"']
        okta = {"settle": "0s", **okta}
        lines += [f"{key} = {orjson.dumps(value).decode()}" for key, value in okta.items()]
        path = folder / "config.toml"
        path.write_text("\n".join(lines) + "\n")
        return load_settings(path)

    return make
