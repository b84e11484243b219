"""The connector registry: names without imports, each connector imported once, broken third parties named."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sdk.registry import ENTRY_POINT_GROUP, ConnectorLoadError, Registry
from connectors.synthetic import SyntheticConnector


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution registering a working connector `acme` and a broken `broken`."""
    (tmp_path / "acme_reg.py").write_text(
        "from connectors.synthetic import SyntheticConnector\n"
        "class AcmeConnector(SyntheticConnector):\n    name = 'acme'\n"
    )
    dist = tmp_path / "acme_reg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-reg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nacme = acme_reg:AcmeConnector\nbroken = acme_reg:Missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("acme_reg", None)


def test_built_in_names_need_no_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """A built-in connector is found and loaded without reading the installed distributions."""
    import importlib.metadata

    def refuse(**_: object) -> None:
        raise AssertionError("entry points read for a built-in name")

    monkeypatch.setattr(importlib.metadata, "entry_points", refuse)
    registry = Registry()
    assert "synthetic" in registry
    assert registry.load("synthetic") is SyntheticConnector
    assert registry.load("synthetic") is registry.load("synthetic")


def test_a_third_party_is_loaded_by_name_and_a_broken_one_is_named(third_party: Path) -> None:
    """An entry-point connector loads on first use; a broken one raises ConnectorLoadError naming its target."""
    registry = Registry()
    assert {"acme", "broken", "aws", "synthetic"} <= set(registry.names())
    assert "acme_reg" not in sys.modules  # listed, not imported
    assert registry.load("acme").stream_ids() == ("acme.events", "acme.users")
    with pytest.raises(ConnectorLoadError, match="acme_reg:Missing: AttributeError"):
        registry.load("broken")
    assert registry.stream_names("broken") == ()


def test_unknown_names_and_streams() -> None:
    """A name no connector has is not in the registry; stream IDs are checked against the connector named."""
    registry = Registry()
    assert "salesforce" not in registry
    with pytest.raises(KeyError):
        registry.load("salesforce")
    assert registry.knows_stream("synthetic.events")
    assert not registry.knows_stream("synthetic.nothing")
    assert not registry.knows_stream("salesforce.accounts")
    assert not registry.knows_stream("synthetic")


def test_builtin_stream_table_matches_the_declared_streams() -> None:
    """BUILTIN_STREAMS (read without importing a connector) lists exactly what each built-in declares."""
    from connectors.sdk.registry import BUILTIN, BUILTIN_STREAMS, load_builtin

    assert set(BUILTIN_STREAMS) == set(BUILTIN)
    for name in BUILTIN:
        assert BUILTIN_STREAMS[name] == load_builtin(name).stream_names(), name
