"""Connector discovery: third parties registered under the entry-point group are found."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from connectors.sdk.registry import ENTRY_POINT_GROUP, discover


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
