"""Values that flow out of a stream: the partial order on cursor values."""

from __future__ import annotations

from connectors.sdk import json_leq


def test_json_leq_orders_cursor_shapes() -> None:
    """Cursor order: scalars, lists lexicographically, objects key by key."""
    assert json_leq(None, 1) and json_leq(1, 2) and not json_leq(3, 2)
    assert json_leq({"a": "k1"}, {"a": "k2", "b": "x"}) and not json_leq({"a": "k3"}, {"a": "k2"})
    assert not json_leq({"c": 1}, {"a": 1})
    assert json_leq(["2026-01-01", "u1"], ["2026-01-01", "u2"])
