"""Fixtures for the identity tests: a config with [identities] over a fresh store on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from identity_seed import IdEnv, open_id_env


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> Iterator[IdEnv]:
    """A config with the [identities] block over a fresh store (SQLite and PostgreSQL)."""
    opened = open_id_env(tmp_path, store_url)
    yield opened
    opened.store.close()


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[IdEnv]:
    """The same over SQLite only."""
    opened = open_id_env(tmp_path, f"sqlite:///{tmp_path / 'evidence.db'}")
    yield opened
    opened.store.close()
