"""A store sealed in schema v1 keeps re-sealing its v1 snapshots byte for byte, and chains v2 after them."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from seal_helpers import upgraded_store

from collector.cli import main
from collector.seal.snapshot import Sealer
from collector.seal.verify import TrustedKeys, verify_chain
from storage.snapshots import snapshot_rows

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "snapshots" / "v1-store"
V1 = [FIXTURES / "2026-09.tar", FIXTURES / "2026-10.tar"]


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[tuple[Sealer, Path]]:
    """The v1 store, copied and opened by this version (so migrated), with a new sealing key."""
    with upgraded_store(FIXTURES, tmp_path) as opened:
        yield opened


def test_v1_snapshots_reseal_byte_for_byte_after_the_upgrade(upgraded: tuple[Sealer, Path]) -> None:
    """Re-sealing the windows the store sealed in v1 writes exactly the v1 tars again."""
    sealer, _ = upgraded
    for path in V1:
        [again] = sealer.reproduce(path.stem)
        assert again.reproduced and again.path.read_bytes() == path.read_bytes()


def test_a_v2_window_chains_after_the_last_v1_one(upgraded: tuple[Sealer, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The next window is sealed in v2 and links to the v1 snapshot before it; the mixed chain
    verifies (two keys trusted: the organisation rotated its key with the upgrade)."""
    sealer, pub = upgraded
    sealed = sealer.seal("2026-11")
    assert [s.window_id for s in sealed] == ["2026-11"]
    with tarfile.open(sealed[0].path) as tar:
        manifest = orjson.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["schema"] == "evidence-collector/snapshot/v3"
    assert manifest["previous"]["window"] == "2026-10" and manifest["genesis"] is False
    trust = TrustedKeys.load([FIXTURES / "seal.pub.pem", pub])
    done = verify_chain([*V1, sealed[0].path], trust)
    assert [v.schema for v in done] == ["evidence-collector/snapshot/v1"] * 2 + [manifest["schema"]]
    assert done[2].previous == done[1].link()
    assert [r.window_id for r in snapshot_rows(sealer.store)] == ["2026-09", "2026-10", "2026-11"]
    assert main(["verify", *map(str, V1), str(sealed[0].path), "--key", str(FIXTURES / "seal.pub.pem"),
                 "--key", str(pub)]) == 0
    assert "OK chain of 3 snapshots" in capsys.readouterr().out
