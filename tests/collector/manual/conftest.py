"""Fixtures for the manual evidence tests: a config, its store (SQLite and PostgreSQL) and blob store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from manual_helpers import Env, open_env


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> Iterator[Env]:
    """A config over a fresh store on each backend, with a local blob store and a CSV roster of three."""
    opened = open_env(tmp_path, store_url)
    yield opened
    opened.store.close()


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[Env]:
    """The same over SQLite only, for tests about files rather than the database."""
    opened = open_env(tmp_path, f"sqlite:///{tmp_path / 'evidence.db'}")
    yield opened
    opened.store.close()
