"""`[windows] start`: the sealed chain begins with the observation period's first window, never
with empty windows back to a stray old record; without it, with the oldest record's window."""

from __future__ import annotations

from pathlib import Path

import pytest
from seal_helpers import Env, add, record

from collector.errors import ConfigError, InputError
from collector.seal.snapshot import Sealer, SealOptions


def _sealer(env: Env, start: str = "") -> Sealer:
    options = SealOptions(period="month", zone="UTC", out_dir=env.out, start=start)
    return Sealer(env.store, options, env.key, clock=env.clock)


def test_the_chain_begins_with_the_configured_start(env: Env) -> None:
    """With start 2026-09-15, a record from January does not drag the chain back: the genesis is
    2026-09, each window from there is sealed, and the January record is in none."""
    add(env.store, [record("2026-01-05T10:00:00"), record("2026-09-20T10:00:00"),
                    record("2026-10-02T10:00:00")])
    sealed = _sealer(env, "2026-09-15").seal("2026-10")
    assert [(s.window_id, s.records) for s in sealed] == [("2026-09", 1), ("2026-10", 1)]


def test_without_a_start_the_chain_begins_with_the_oldest_record(env: Env) -> None:
    """Unconfigured, the first sealed window is the one holding the oldest stored record, and the
    empty windows after it are sealed too (the chain has no gaps)."""
    add(env.store, [record("2026-07-05T10:00:00"), record("2026-10-02T10:00:00")])
    sealed = _sealer(env).seal("2026-10")
    assert [(s.window_id, s.records) for s in sealed] == [
        ("2026-07", 1), ("2026-08", 0), ("2026-09", 0), ("2026-10", 1)]


def test_sealing_a_window_before_the_start_is_refused(env: Env) -> None:
    """Asking for a window before the observation period begins is an input error naming both."""
    with pytest.raises(InputError, match=r"2026-08 is before \[windows\] start 2026-09-15"):
        _sealer(env, "2026-09-15").seal("2026-08")


@pytest.mark.parametrize("value", ['"2026-9-1"', '"soon"', '"2026-02-30"'])
def test_a_malformed_start_is_a_config_error(tmp_path: Path, value: str) -> None:
    """A start that is not a calendar date like 2026-09-01 is refused at load, naming the key."""
    from collector.config import load_settings

    (tmp_path / "config.toml").write_text(f"[windows]\nstart = {value}\n")
    with pytest.raises(ConfigError, match=r"windows\.start"):
        load_settings(tmp_path / "config.toml")
