"""Fixtures for the daemon tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _daemon import DaemonProcess


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Daemons started by a test, killed at the end whatever happened."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()
