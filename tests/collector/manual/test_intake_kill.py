"""The intake folder survives kill -9 at random points: no document lost, none stored or moved twice."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from manual_helpers import rows, write_config

from collector.config import load_settings
from collector.manual import open_files
from storage import Store

GOOD = 40
BAD = 3
KILLS = 12
INTAKE = '\n[intake]\nfolder = "intake"\nsettle = "0s"\n'
SIDECAR = 'type = "restore-test"\ncontrol = "AV-03"\nobserved_at = "2026-09-{day:02d}"\n'


def _fill(folder: Path, seed: int) -> dict[str, str]:
    """GOOD documents (64 KiB to 1 MiB of random bytes) and BAD ones, each with its sidecar, named
    for the seed; the good ones' SHA-256 by name."""
    rng = random.Random(seed)
    good: dict[str, str] = {}
    for n in range(GOOD):
        body = rng.randbytes(rng.randint(64, 1024) * 1024)
        name = f"{seed}-report-{n:02d}.bin"
        (folder / name).write_bytes(body)
        (folder / f"{name}.toml").write_text(SIDECAR.format(day=n % 28 + 1))
        good[name] = hashlib.sha256(body).hexdigest()
    for n in range(BAD):
        (folder / f"{seed}-bad-{n}.bin").write_bytes(rng.randbytes(1000))
        (folder / f"{seed}-bad-{n}.bin.toml").write_text('type = "restore-test"\ncontrol = "AC-01"\n')
    return good


def _intake(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config), "intake"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _migrated(config: Path) -> None:
    """Create the store, so every timed or killed run starts from a migrated one."""
    Store.open(load_settings(config).storage_url).close()


def _timed(directory: Path, seed: int | None) -> float:
    """Seconds one uninterrupted pass takes over a folder filled like the test's (or empty)."""
    (directory / "intake").mkdir(parents=True)
    if seed is not None:
        _fill(directory / "intake", seed)
    config = write_config(directory, f"sqlite:///{directory / 'evidence.db'}", INTAKE)
    _migrated(config)
    started = time.monotonic()
    _intake(config).wait(timeout=120)
    return time.monotonic() - started


def _pending(folder: Path) -> list[str]:
    """Every file left in the intake folder (journals and temp files included), the lock aside."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != ".intake.lock")


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """A one-pass `collector intake` SIGKILLed 12 times at random instants (the folder refilled
    whenever it empties), then run to the end: every good document has exactly one record, its
    blob and one place in processed/; every bad one is in rejected/ with its reason; no journal,
    temp or pending file is left."""
    rng = random.Random(20261120)
    folder = tmp_path / "intake"
    folder.mkdir()
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'evidence.db'}", INTAKE)
    _migrated(config)
    # Calibrated here: start-up alone (an empty folder), then a whole pass over a full one.
    start_up = _timed(tmp_path / "empty", seed=None)
    full = _timed(tmp_path / "twin", seed=0)

    good: dict[str, str] = {}
    batches = kills = interrupted = 0
    while kills < KILLS:
        if not _pending(folder):  # everything processed: a new batch to interrupt
            batches += 1
            good.update(_fill(folder, seed=batches))
        proc = _intake(config)
        time.sleep(rng.uniform(start_up / 2, full))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            interrupted += proc.wait() == -signal.SIGKILL
        else:
            proc.wait()
        kills += 1
    for _ in range(2):  # run to the end: once with files left, once more proves there is nothing
        _intake(config).wait(timeout=120)

    assert interrupted >= KILLS // 2, f"only {interrupted} of {kills} runs were killed mid-pass"
    assert _pending(folder) == []
    processed = sorted(p.name for p in (folder / "processed").iterdir())
    assert processed == sorted([*good, *(f"{n}.toml" for n in good)])
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == sorted(
        f"{b}-bad-{n}.bin{s}" for b in range(1, batches + 1) for n in range(BAD) for s in ("", ".toml", ".error"))
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    try:
        keys = [r["source_key"] for r in rows(store, "manual.documents")]
    finally:
        store.close()
    assert sorted(keys) == sorted(f"restore-test/{sha}" for sha in good.values())
    blobs = open_files(settings)
    assert all(blobs.exists(sha) for sha in good.values())
    for name, sha in good.items():
        assert hashlib.sha256((folder / "processed" / name).read_bytes()).hexdigest() == sha
