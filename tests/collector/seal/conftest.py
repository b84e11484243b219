"""Fixtures for the snapshot tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from seal_helpers import Clock, Env

from collector.seal.keys import create_key
from storage import Store


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A fresh SQLite store, a new sealing key and an output directory."""
    store = Store.open(f"sqlite:///{tmp_path / 'evidence.db'}")
    key = create_key(tmp_path / "keys" / "seal.pem")
    yield Env(store, key, tmp_path / "snapshots", Clock())
    store.close()

