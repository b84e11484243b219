"""verify.sh inside a v3 snapshot: the plain-tool route passes a good snapshot and fails, naming the
file, on each tamper case those tools can see; `collector verify` holds the script's bytes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from seal_helpers import Env, add, extract, pack, record, resign
from test_verify_tamper import CASES

from collector.cli import main
from collector.seal import _format as fmt
from collector.seal._verify_sh import VERIFY_SH

SHELLS = [s for s in ("dash", "sh") if shutil.which(s)]


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Env, Path]:
    """One sealed window (2026-10) with exceptions, and the environment that sealed it."""
    from seal_helpers import Clock

    from collector.seal.keys import create_key
    from storage import Store

    base = tmp_path_factory.mktemp("vsh")
    store = Store.open(f"sqlite:///{base / 'e.db'}")
    env = Env(store, create_key(base / "keys" / "seal.pem"), base / "snapshots", Clock())
    add(store, [record(f"2026-10-{d:02d}T0{d % 10}:00:00", exception="no MFA" if d % 4 == 0 else None)
                for d in range(1, 21)])
    [snap] = env.sealer().seal("2026-10")
    store.close()
    return env, snap.path


def run_sh(tar: Path, fingerprint: str, work: Path, shell: str = "sh") -> subprocess.CompletedProcess[str]:
    """Extract ``tar`` into a fresh folder and run its verify.sh as an auditor would."""
    folder = Path(tempfile.mkdtemp(prefix="x-", dir=work))
    with tarfile.open(tar) as t:
        t.extractall(folder, filter="data")
    return subprocess.run([shell, str(folder / "verify.sh"), fingerprint], cwd=work,
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("shell", SHELLS)
def test_verify_sh_passes_a_good_snapshot(shell: str, sealed: tuple[Env, Path], tmp_path: Path) -> None:
    """An untouched snapshot passes verify.sh under a POSIX shell (dash) with the pinned fingerprint."""
    env, path = sealed
    done = run_sh(path, env.key.fingerprint.upper(), tmp_path, shell)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"verify.sh: OK: key {env.key.fingerprint}, signature, ")
    assert "none extra; no timestamp token" in done.stdout and done.stderr == ""


def test_verify_sh_is_in_the_snapshot_and_covered_by_the_signed_sums(sealed: tuple[Env, Path]) -> None:
    """verify.sh travels in every new snapshot, listed in SHA256SUMS like any file, and the README
    points to it instead of a package that is not published."""
    _, path = sealed
    m = extract(path)
    assert m[fmt.FILE_VERIFY_SH] == VERIFY_SH
    sums = fmt.parse_sums(m[fmt.FILE_SUMS])
    assert sums[fmt.FILE_VERIFY_SH] == hashlib.sha256(VERIFY_SH).hexdigest()
    readme = m[fmt.FILE_README].decode()
    assert "sh s/verify.sh" in readme and "pip install evidence-collector" not in readme
    assert "schema evidence-collector/snapshot/v3" in readme


SH_EXPECT = {
    "flip a byte in a record": "records.jsonl: SHA-256 does not match SHA256SUMS",
    "delete a line": "records.jsonl: SHA-256 does not match SHA256SUMS",
    "duplicate a line": "records.jsonl: SHA-256 does not match SHA256SUMS",
    "reorder lines": "records.jsonl: SHA-256 does not match SHA256SUMS",
    "add a file": "notes.txt: extra file: not listed in SHA256SUMS",
    "remove a file": "criteria/CC6.1.csv: missing (listed in SHA256SUMS)",
    "edit the manifest": "manifest.json: SHA-256 does not match SHA256SUMS",
    "edit a population file": "criteria/CC6.1.csv: SHA-256 does not match SHA256SUMS",
    "edit the OSCAL": "oscal/assessment-results.json: SHA-256 does not match SHA256SUMS",
    "forge the signature with another key":
        "SHA256SUMS.ed25519: is not a valid signature over SHA256SUMS by that key",
    "re-sign after editing, with another key": "keys/seal.pub.pem: fingerprint is ",
}


def test_the_tamper_matrix_is_covered() -> None:
    """Every tamper case is either caught by verify.sh or is the one plain tools cannot see."""
    assert set(CASES) == {*SH_EXPECT, "re-sign a doctored population with the real key"}


@pytest.mark.parametrize("name", list(SH_EXPECT))
def test_verify_sh_fails_naming_the_file(name: str, sealed: tuple[Env, Path], tmp_path: Path) -> None:
    """Each tamper case of the matrix makes verify.sh exit 1 with one line naming the file."""
    env, path = sealed
    members = extract(path)
    CASES[name].mutate(members, _Chain(env))  # type: ignore[arg-type]
    bad = pack(members, tmp_path / path.name)
    done = run_sh(bad, env.key.fingerprint, tmp_path)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith(f"verify.sh: FAILED: {SH_EXPECT[name]}"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""


def test_an_operators_re_signing_passes_plain_tools_but_not_collector_verify(
        sealed: tuple[Env, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A population doctored and re-signed with the real key passes verify.sh (hashes and signature
    hold), which is why the README sends the rest to `collector verify`, which names the file."""
    env, path = sealed
    members = extract(path)
    CASES["re-sign a doctored population with the real key"].mutate(members, _Chain(env))  # type: ignore[arg-type]
    bad = pack(members, tmp_path / path.name)
    assert run_sh(bad, env.key.fingerprint, tmp_path).returncode == 0
    assert main(["verify", str(bad), "--key", str(env.pub)]) == 1
    assert "criteria/CC6.1.csv: does not list exactly" in capsys.readouterr().err


def test_verify_sh_refuses_another_fingerprint_and_bad_usage(sealed: tuple[Env, Path],
                                                             tmp_path: Path) -> None:
    """A fingerprint that is not the key's fails naming the key file; no or a malformed
    fingerprint is a usage error (exit 2)."""
    _, path = sealed
    done = run_sh(path, "ab" * 32, tmp_path)
    assert done.returncode == 1 and "FAILED: keys/seal.pub.pem: fingerprint is " in done.stderr
    done = run_sh(path, "xyz", tmp_path)
    assert done.returncode == 2 and "expected 64 hex digits" in done.stderr


def test_collector_verify_refuses_a_replaced_verify_sh(sealed: tuple[Env, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A v3 snapshot whose verify.sh was swapped (and re-signed by the real key) fails
    `collector verify` naming verify.sh, so an auditor learns not to run it."""
    env, path = sealed
    members = extract(path)
    members[fmt.FILE_VERIFY_SH] = b"#!/bin/sh\necho 'verify.sh: OK'\n"
    resign(members, env.key)
    bad = pack(members, tmp_path / path.name)
    assert main(["verify", str(bad), "--key", str(env.pub)]) == 1
    assert "verify.sh: is not the script the collector writes" in capsys.readouterr().err
    del members[fmt.FILE_VERIFY_SH]
    resign(members, env.key)
    pack(members, bad)
    assert main(["verify", str(bad), "--key", str(env.pub)]) == 1
    assert "verify.sh: missing" in capsys.readouterr().err


class _Chain:
    """What the tamper matrix's mutations read of a chain: the environment (its key)."""

    def __init__(self, env: Env) -> None:
        self.env = env
