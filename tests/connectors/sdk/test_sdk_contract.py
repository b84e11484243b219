"""The contract every connector passes: the synthetic connector passes it, and it catches violations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.sdk import Checkpoint, Cursor, Normalised, RetriableError, Skipped, SourceItem
from connectors.sdk.contract import (
    ContractViolation,
    check_declared,
    check_errors_typed,
    check_run,
)
from connectors.synthetic import SyntheticConfig, SyntheticConnector, SyntheticEvents


def test_synthetic_connector_passes_the_contract() -> None:
    """The worked-example connector declares its streams offline and yields a monotone cursor."""
    check_declared(SyntheticConnector)
    connector = SyntheticConnector(SyntheticConfig(count=50))
    assert check_run(connector, "events") == 50
    assert check_run(connector, "events", cursor_value=20) == 50
    check_run(connector, "users")
    error = check_errors_typed(lambda: SyntheticConnector(SyntheticConfig(count=5, fail_at=0)), "events")
    assert isinstance(error, RetriableError)


class _Backwards(SyntheticEvents):
    def fetch(self, cursor: Cursor) -> Iterator[Any]:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        yield SourceItem("a", now, b"{}", {}, cursor=5)
        yield Checkpoint(3)

    def normalise(self, item: SourceItem) -> Normalised:
        return Normalised("access_log", None, None, {})


class _BackwardsConnector(SyntheticConnector):
    stream_types = (_Backwards,)


def test_contract_catches_a_cursor_moving_backwards() -> None:
    """The contract test fails a stream whose cursor goes back."""
    with pytest.raises(ContractViolation, match="backwards"):
        check_run(_BackwardsConnector(SyntheticConfig()), "events")


def test_contract_catches_untyped_errors() -> None:
    """A connector that leaks a raw exception fails the typed-errors rule."""
    class Leaky(SyntheticEvents):
        def fetch(self, cursor: Cursor) -> Iterator[Any]:
            raise KeyError("oops")
            yield

    class LeakyConnector(SyntheticConnector):
        stream_types = (Leaky,)

    with pytest.raises(ContractViolation, match="untyped KeyError"):
        check_errors_typed(lambda: LeakyConnector(SyntheticConfig()), "events")


@pytest.mark.parametrize(("skipped", "violation"), [
    (Skipped("AssumeRole by an AWS service", 3), False),
    (Skipped("", 1), True),
    (Skipped("noise", 0), True),
])
def test_contract_accepts_a_skipped_count_with_a_reason(skipped: Skipped, violation: bool) -> None:
    """A stream may report items it drops by design as Skipped(reason, count >= 1); anything less fails."""
    class Skipping(SyntheticEvents):
        def fetch(self, cursor: Cursor) -> Iterator[Any]:
            yield skipped

    class SkippingConnector(SyntheticConnector):
        stream_types = (Skipping,)

    if violation:
        with pytest.raises(ContractViolation, match="Skipped needs a reason"):
            check_run(SkippingConnector(SyntheticConfig()), "events")
    else:
        assert check_run(SkippingConnector(SyntheticConfig()), "events") is None
