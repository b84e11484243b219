"""Crash safety: SIGKILL a collection at many points; after a rerun nothing is lost or duplicated."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

COUNT = 2400


def _config(folder: Path, delay_ms: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(
        '[storage]\nurl = "sqlite:///evidence.db"\nbatch_size = 100\n'
        f'[connectors.synthetic]\ncount = {COUNT}\ndelay_ms = {delay_ms}\nstreams = ["events"]\n'
    )
    return path


def _collect(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config), "collect"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'evidence'").fetchone() is None:
            return []  # killed while the new store's schema was being created: nothing committed
        return [r[0] for r in conn.execute("SELECT id FROM evidence ORDER BY id")]


def _filings(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM filings").fetchone()[0])


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Killed at 8 points mid-collection, each followed by a rerun, the store equals a clean run's."""
    clean = _config(tmp_path / "clean", 0)
    assert _collect(clean).wait(timeout=120) == 0
    expected = _ids(tmp_path / "clean" / "evidence.db")
    assert len(expected) == COUNT

    rng = random.Random(20261128)
    killed_mid_run = 0
    for attempt in range(8):
        folder = tmp_path / f"kill{attempt}"
        # 2 ms an item: a run of ~5 s, so the kills (0.8-3.5 s in) land mid-run even now that
        # start-up takes ~0.3 s instead of ~1 s.
        config = _config(folder, delay_ms=2)
        db = folder / "evidence.db"
        # Kill once or twice per store, at a random instant, then let a rerun finish.
        for _ in range(1 + attempt % 2):
            proc = _collect(config)
            time.sleep(rng.uniform(0.8, 3.5))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed_mid_run += 1
            proc.wait(timeout=30)
            if db.exists():
                stored = _ids(db)
                assert len(stored) == len(set(stored))
                assert set(stored) <= set(expected)
        final = _collect(_config(folder, delay_ms=0))
        assert final.wait(timeout=120) == 0
        assert _ids(db) == expected, f"attempt {attempt}: record set differs from a clean run"
        assert _filings(db) == 2 * COUNT
    assert killed_mid_run >= 6, "the kills should land while collections are running"
