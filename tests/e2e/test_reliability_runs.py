"""Crash safety and fault tolerance of `collector collect` against the whole sandbox (every vendor fake)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

import pytest
from reliability_kit import (
    RecordSet,
    clear_faults,
    cli,
    fakes,
    fault_rounds,
    kill_rounds,
    latest_runs,
    lift_rate_limits,
    record_set,
    slow_down,
    small_world,
    store_problems,
    write_config,
)

from sandbox._http import Status


@dataclass
class Clean:
    """A started world and what a fault-free collection from it stores."""

    world: Any
    endpoints: Any
    expected: RecordSet
    seconds: float


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clean]:
    """A three-week world and one clean collection of all thirteen streams, taken with the fakes slowed
    as the crash test slows them (so its duration is the span the kills are spread over)."""
    with small_world() as (world, ep):
        lift_rate_limits(world)
        slow_down(world, 0.03)
        folder = tmp_path_factory.mktemp("clean")
        started = time.monotonic()
        result = cli(write_config(folder, ep), "collect")
        seconds = time.monotonic() - started
        clear_faults(world)
        assert result.returncode == 0, result.stderr[-2000:]
        db = folder / "evidence.db"
        assert store_problems(db) == []
        yield Clean(world, ep, record_set(db), seconds)


def test_clean_collection_covers_every_stream(clean: Clean) -> None:
    """The baseline holds records of all thirteen streams (else the comparisons below prove little)."""
    streams = {s for s, _ in clean.expected.events} | {s for s, *_ in clean.expected.states}
    assert len(streams) == 13
    assert len(clean.expected.events) > 1000


@pytest.mark.slow
def test_sigkill_at_20_random_points_loses_and_duplicates_nothing(clean: Clean, tmp_path: Path) -> None:
    """SIGKILLed at 20 seeded random instants of collections against slowed fakes, every store, rerun
    once, holds exactly the clean run's event records and state reads, with a sound database."""
    slow_down(clean.world, 0.03)
    try:
        report = kill_rounds(clean.world, clean.endpoints, tmp_path, clean.expected,
                             kills=20, seed=20261128, span=clean.seconds)
    finally:
        clear_faults(clean.world)
    assert report.failures == []
    assert (report.survived, report.tried) == (20, 20)
    # The kills are spread over the run: several streams were being collected when one landed.
    assert len({w.split()[1] for w in report.where}) >= 4, report.where


@pytest.mark.slow
def test_random_vendor_faults_end_ok_or_converge_on_rerun(clean: Clean, tmp_path: Path) -> None:
    """With 429s (vendor headers), 5xx, truncated, slow and dropped answers injected at random in every
    fake, each stream ends ok with the clean records, or not ok and converges within three reruns."""
    report = fault_rounds(clean.world, clean.endpoints, tmp_path, clean.expected, rounds=2, seed=7)
    assert report.failures == [], report.rounds
    assert report.injected >= 20, report.rounds
    assert report.converged == report.injected


@pytest.mark.slow
def test_a_vendor_down_for_a_whole_run_fails_its_streams_then_converges(clean: Clean, tmp_path: Path) -> None:
    """Jira answering 503 to every request exhausts the client's retries: its streams end failed
    naming it, the collection exits 1 with no traceback, every other stream is ok with the clean
    records, and the first run after Jira recovers completes the store."""
    jira = fakes(clean.world)["jira"]
    lift_rate_limits(clean.world)
    folder = tmp_path / "outage"
    config = write_config(folder, clean.endpoints)
    db = folder / "evidence.db"
    jira.faults.random(Random(1), 1.0, [Status(503)])
    try:
        first = cli(config, "collect")
    finally:
        clear_faults(clean.world)
    assert first.returncode == 1, first.stderr[-2000:]
    assert "Traceback" not in first.stderr
    runs = latest_runs(db)
    down = {s: r for s, r in runs.items() if s.startswith("jira.")}
    assert down and all(status == "failed" and "503" in (error or "") for status, error in down.values()), down
    assert all(status == "ok" for s, (status, _) in runs.items() if s not in down), runs
    got = record_set(db)
    for stream in runs:
        if stream not in down:
            assert got.stream(stream) == clean.expected.stream(stream), stream
    assert store_problems(db) == []
    again = cli(config, "collect")
    assert again.returncode == 0, again.stderr[-2000:]
    assert record_set(db).differences(clean.expected) == []
