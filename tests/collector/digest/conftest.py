"""Fixtures for the digest tests: the seeded store and its W48 digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
from digest_seed import NOW, insert, seed_records, seed_runs, seeded_scope

from collector.digest import build_digest
from storage import Store


@pytest.fixture(autouse=True)
def _default_logging() -> Any:
    """structlog as the library ships it: a CLI test's configure_logging may have bound a captured,
    since-closed stderr."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def seeded_store(tmp_path: Path) -> Store:
    """A SQLite store holding the seeded records and runs."""
    store = Store.open(f"sqlite:///{tmp_path / 'evidence.db'}")
    insert(store, seed_records())
    seed_runs(store)
    return store


@pytest.fixture
def digest(seeded_store: Store) -> dict[str, Any]:
    """The W48 digest of the seeded store."""
    return build_digest(seeded_store, seeded_scope(), NOW)
