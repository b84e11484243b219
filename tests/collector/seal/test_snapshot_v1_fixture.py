"""Snapshots sealed in schema v1 keep verifying and sampling in every later version."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from collector.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "snapshots" / "v1"
CHAIN = [FIXTURES / "2026-10.tar", FIXTURES / "2026-11.tar"]
FINGERPRINT = (FIXTURES / "FINGERPRINT").read_text().strip()


def test_v1_chain_verifies_against_the_pinned_fingerprint(capsys: pytest.CaptureFixture[str]) -> None:
    """The stored v1 chain verifies with the fingerprint handed over out of band."""
    assert main(["verify", *map(str, CHAIN), "--fingerprint", FINGERPRINT]) == 0
    out = capsys.readouterr().out
    assert "2026-10" in out and "2026-11" in out


def test_v1_snapshot_fails_against_another_key() -> None:
    """A v1 snapshot does not verify against a fingerprint that is not its signer's."""
    assert main(["verify", str(CHAIN[0]), "--fingerprint", "0" * 64]) == 1


def test_v1_sample_draws_from_the_criterion_population(capsys: pytest.CaptureFixture[str]) -> None:
    """Sampling a v1 snapshot by criterion prints the population header and only that criterion's rows."""
    assert main(["sample", str(CHAIN[1]), "--control", "CC6.1", "--size", "5", "--seed", "auditor"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "record_id,observed_at,stream,source_key,actor,status,exception_reason,source_url"
    assert len(rows) == 2  # the one CC6.1 record of 2026-11


def test_v1_plain_tools_route(tmp_path: Path) -> None:
    """openssl verifies the v1 signature and sha256sum the v1 sums, with no collector code."""
    work = tmp_path / "x"
    work.mkdir()
    shutil.copy(CHAIN[1], work / "s.tar")
    subprocess.run(["tar", "-xf", "s.tar"], cwd=work, check=True)
    (work / "s.tar").unlink()
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "keys/seal.pub.pem", "-rawin",
                    "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.ed25519"], cwd=work, check=True,
                   capture_output=True)
    subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=work, check=True, capture_output=True)
