"""Snapshots sealed in schema v2 keep verifying, sampling and re-sealing byte for byte in every
later version, and the current schema chains after them."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from seal_helpers import upgraded_store

from collector.cli import main
from collector.seal import _format as fmt
from collector.seal.snapshot import Sealer
from collector.seal.verify import TrustedKeys, verify_chain

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "snapshots" / "v2-store"
V2 = [FIXTURES / "2026-09.tar", FIXTURES / "2026-10.tar"]
FINGERPRINT = (FIXTURES / "FINGERPRINT").read_text().strip()


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[tuple[Sealer, Path]]:
    """The v2 store, copied and opened by this version (so migrated), with a new sealing key."""
    with upgraded_store(FIXTURES, tmp_path) as opened:
        yield opened


def test_v2_chain_verifies_against_the_pinned_fingerprint(capsys: pytest.CaptureFixture[str]) -> None:
    """The stored v2 chain verifies with the fingerprint handed over out of band."""
    assert main(["verify", *map(str, V2), "--fingerprint", FINGERPRINT]) == 0
    assert "OK chain of 2 snapshots" in capsys.readouterr().out


def test_v2_sample_draws_from_the_criterion_population(capsys: pytest.CaptureFixture[str]) -> None:
    """Sampling a v2 snapshot by criterion prints the population header and rows of that criterion."""
    assert main(["sample", str(V2[1]), "--criterion", "CC6.1", "--size", "3", "--seed", "auditor"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == ",".join(fmt.CSV_HEADER) and len(rows) == 4


def test_v2_plain_tools_route(tmp_path: Path) -> None:
    """openssl verifies the v2 signature and sha256sum the v2 sums, with no collector code."""
    subprocess.run(["tar", "-xf", str(V2[1]), "-C", str(tmp_path)], check=True)
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "keys/seal.pub.pem", "-rawin",
                    "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.ed25519"], cwd=tmp_path, check=True,
                   capture_output=True)
    subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=tmp_path, check=True,
                   capture_output=True)


def test_v2_snapshots_reseal_byte_for_byte(upgraded: tuple[Sealer, Path]) -> None:
    """Re-sealing the windows the store sealed in v2 writes exactly the v2 tars again."""
    sealer, _ = upgraded
    for path in V2:
        [again] = sealer.reproduce(path.stem)
        assert again.reproduced and again.path.read_bytes() == path.read_bytes()


def test_the_current_schema_chains_after_the_last_v2_window(upgraded: tuple[Sealer, Path]) -> None:
    """The next window is sealed in the current schema, links to the v2 snapshot before it, and
    the mixed chain verifies (the organisation rotated its key with the upgrade)."""
    sealer, pub = upgraded
    [sealed] = sealer.seal("2026-11")
    with tarfile.open(sealed.path) as tar:
        manifest = orjson.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["schema"] == fmt.SCHEMA
    trust = TrustedKeys.load([FIXTURES / "seal.pub.pem", pub])
    done = verify_chain([*V2, sealed.path], trust)
    assert [v.schema for v in done] == [fmt.SCHEMA_V2] * 2 + [fmt.SCHEMA]
    assert done[2].previous == done[1].link()
