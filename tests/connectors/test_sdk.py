"""The connector SDK: the synthetic connector passes the contract; discovery finds third parties."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.sdk import Checkpoint, Cursor, Normalised, RetriableError, SourceItem, json_leq
from connectors.sdk.contract import (
    ContractViolation,
    check_declared,
    check_errors_typed,
    check_run,
)
from connectors.sdk.registry import ENTRY_POINT_GROUP, discover
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


def test_json_leq_orders_cursor_shapes() -> None:
    """Cursor order: scalars, lists lexicographically, objects key by key."""
    assert json_leq(None, 1) and json_leq(1, 2) and not json_leq(3, 2)
    assert json_leq({"a": "k1"}, {"a": "k2", "b": "x"}) and not json_leq({"a": "k3"}, {"a": "k2"})
    assert not json_leq({"c": 1}, {"a": 1})
    assert json_leq(["2026-01-01", "u1"], ["2026-01-01", "u2"])


def test_third_party_connector_is_discovered_via_entry_point(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution registering under the entry-point group is found; a broken one is skipped and reported."""
    pkg = tmp_path / "acme_conn.py"
    pkg.write_text(
        "from connectors.synthetic import SyntheticConnector\n"
        "class AcmeConnector(SyntheticConnector):\n    name = 'acme'\n"
    )
    dist = tmp_path / "acme_conn-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-conn\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nacme = acme_conn:AcmeConnector\nbroken = acme_conn:Missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover()
    assert "acme" in found.connectors and found.connectors["acme"].stream_ids() == (
        "acme.events", "acme.users")
    assert "broken" in found.skipped and "Missing" in found.skipped["broken"]
    sys.modules.pop("acme_conn", None)
