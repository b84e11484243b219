"""The tamper matrix: every change to a snapshot or chain is caught, by both routes where they see it."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from seal_helpers import Env, Members, add, extract, lines, pack, record, resum

from collector.cli import main
from collector.seal.keys import public_pem


@dataclass
class Chain:
    env: Env
    paths: list[Path]
    work: Path

    def members(self, index: int) -> Members:
        return extract(self.paths[index])


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """Three sealed windows, August to October, with exceptions in each."""
    from seal_helpers import Clock

    from collector.seal.keys import create_key
    from storage import Store

    base = tmp_path_factory.mktemp("chain")
    store = Store.open(f"sqlite:///{base / 'e.db'}")
    env = Env(store, create_key(base / "keys" / "seal.pem"), base / "snapshots", Clock())
    for month in ("08", "09", "10"):
        add(store, [record(f"2026-{month}-{d:02d}T0{d % 10}:00:00",
                           exception="no MFA" if d % 4 == 0 else None) for d in range(1, 21)])
    sealed = env.sealer().seal("2026-10")
    store.close()
    return Chain(env, [s.path for s in sealed], base)


def collector_route(paths: list[Path], pub: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *map(str, paths), "--key", str(pub)])
    return code, capsys.readouterr().err


def plain_route(path: Path, pinned: Path, work: Path) -> bool:
    """True when `sha256sum -c --strict` and `openssl pkeyutl -verify -rawin` (pinned key) both pass."""
    out = work / (path.name + ".x")
    out.mkdir()
    with tarfile.open(path) as tar:
        tar.extractall(out, filter="data")
    sums = subprocess.run(["sha256sum", "-c", "--strict", "--quiet", "SHA256SUMS"], cwd=out,
                          capture_output=True, check=False)
    sig = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pinned), "-rawin",
                          "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.ed25519"], cwd=out,
                         capture_output=True, check=False)
    return sums.returncode == 0 and sig.returncode == 0


def flip_record_byte(m: Members, c: Chain) -> None:
    ls = lines(m)
    ls[1] = ls[1].replace(b"evt-", b"evu-", 1)
    m["records.jsonl"] = b"".join(ls)


def delete_line(m: Members, c: Chain) -> None:
    ls = lines(m)
    del ls[2]
    m["records.jsonl"] = b"".join(ls)


def duplicate_line(m: Members, c: Chain) -> None:
    ls = lines(m)
    ls.insert(2, ls[1])
    m["records.jsonl"] = b"".join(ls)


def reorder_lines(m: Members, c: Chain) -> None:
    ls = lines(m)
    ls[0], ls[1] = ls[1], ls[0]
    m["records.jsonl"] = b"".join(ls)


def add_file(m: Members, c: Chain) -> None:
    m["notes.txt"] = b"nothing to see\n"


def remove_file(m: Members, c: Chain) -> None:
    del m["criteria/CC6.1.csv"]


def edit_manifest(m: Members, c: Chain) -> None:
    assert b'"CC6.1":20' in m["manifest.json"]
    m["manifest.json"] = m["manifest.json"].replace(b'"CC6.1":20', b'"CC6.1":19')


def edit_population(m: Members, c: Chain) -> None:
    m["criteria/CC6.1.csv"] = m["criteria/CC6.1.csv"].replace(b",exception,", b",ok,", 1)


def edit_oscal(m: Members, c: Chain) -> None:
    m["oscal/assessment-results.json"] = m["oscal/assessment-results.json"].replace(
        b"not-satisfied", b"satisfied", 1)


def forge_signature(m: Members, c: Chain) -> None:
    m["SHA256SUMS.ed25519"] = Ed25519PrivateKey.generate().sign(m["SHA256SUMS"])


def resign_with_own_key(m: Members, c: Chain) -> None:
    """Edit a record, fix every hash, sign with another key and ship that key's public half."""
    ls = lines(m)
    del ls[0]
    m["records.jsonl"] = b"".join(ls)
    resum(m)
    attacker = Ed25519PrivateKey.generate()
    m["keys/seal.pub.pem"] = public_pem(attacker.public_key())
    resum(m)
    m["SHA256SUMS.ed25519"] = attacker.sign(m["SHA256SUMS"])


def resign_population_with_real_key(m: Members, c: Chain) -> None:
    """The operator drops an exception from a population file and re-signs with the real key."""
    csv = m["criteria/CC6.1.csv"].splitlines(keepends=True)
    m["criteria/CC6.1.csv"] = b"".join(row for row in csv if b",exception," not in row)
    resum(m)
    m["SHA256SUMS.ed25519"] = c.env.key.sign(m["SHA256SUMS"])


@dataclass(frozen=True)
class Case:
    mutate: Callable[[Members, Chain], None]
    expect: str
    plain: bool  # whether sha256sum + openssl see it


CASES = {
    "flip a byte in a record": Case(flip_record_byte, "records.jsonl line 2 (record", True),
    "delete a line": Case(delete_line, "records.jsonl: holds 19 records, the manifest says 20", True),
    "duplicate a line": Case(duplicate_line, "line 3 (record", True),
    "reorder lines": Case(reorder_lines, "is out of (observed_at, id) order", True),
    "add a file": Case(add_file, "notes.txt: extra file, not listed in SHA256SUMS", False),
    "remove a file": Case(remove_file, "criteria/CC6.1.csv: missing (listed in SHA256SUMS)", True),
    "edit the manifest": Case(edit_manifest, "manifest.json: SHA-256 does not match SHA256SUMS", True),
    "edit a population file": Case(edit_population, "criteria/CC6.1.csv: SHA-256 does not match", True),
    "edit the OSCAL": Case(edit_oscal, "oscal/assessment-results.json: SHA-256 does not match", True),
    "forge the signature with another key": Case(
        forge_signature, "SHA256SUMS.ed25519: SHA256SUMS is not signed by a trusted key", True),
    "re-sign after editing, with another key": Case(
        resign_with_own_key, "SHA256SUMS.ed25519: SHA256SUMS is not signed by a trusted key", True),
    "re-sign a doctored population with the real key": Case(
        resign_population_with_real_key,
        "criteria/CC6.1.csv: does not list exactly the records filed under CC6.1", False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tampering_is_detected(name: str, chain: Chain, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Each tampering of the middle snapshot fails `collector verify` with the failing part named."""
    case = CASES[name]
    members = chain.members(1)
    case.mutate(members, chain)
    bad = pack(members, tmp_path / chain.paths[1].name)
    code, err = collector_route([bad], chain.env.pub, capsys)
    assert code == 1, err
    assert err.startswith(f"collector: error: {bad.name}: "), err
    assert case.expect in err, err
    assert len(err.strip().splitlines()) == 1
    # The plain-tool route sees what it can (it cannot see extra files or an operator's re-signing).
    assert plain_route(bad, chain.env.pub, tmp_path) is (not case.plain)


def test_untouched_chain_passes_both_routes(chain: Chain, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The sealed chain verifies with the collector (as a chain) and with the plain tools."""
    code, _ = collector_route(chain.paths, chain.env.pub, capsys)
    assert code == 0
    out = capsys.readouterr()
    for path in chain.paths:
        assert plain_route(path, chain.env.pub, tmp_path)
    assert out.err == ""


def test_rewriting_a_sealed_snapshot_with_the_real_key_breaks_the_chain(
        chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A snapshot re-signed by the operator still verifies alone, but the next link exposes it."""
    members = chain.members(1)
    members["README.txt"] += b"(edited later)\n"
    resum(members)
    members["SHA256SUMS.ed25519"] = chain.env.key.sign(members["SHA256SUMS"])
    rewritten = pack(members, tmp_path / chain.paths[1].name)
    code, err = collector_route([rewritten], chain.env.pub, capsys)
    assert code == 0, err
    code, err = collector_route([chain.paths[0], rewritten, chain.paths[2]], chain.env.pub, capsys)
    assert code == 1
    assert "2026-10.tar: manifest.json: previous.sums_sha256" in err and "chain is broken" in err


def test_a_missing_or_misordered_link_breaks_the_chain(
        chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    """Skipping a snapshot or giving them out of order fails, naming the link."""
    a, b, c = chain.paths
    code, err = collector_route([a, c], chain.env.pub, capsys)
    assert code == 1 and "2026-10.tar: manifest.json: previous.window is '2026-09'" in err
    code, err = collector_route([b, a], chain.env.pub, capsys)
    assert code == 1 and "2026-08.tar: manifest.json: is a genesis snapshot but follows 2026-09.tar" in err


def test_a_truncated_archive_is_rejected(chain: Chain, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A tar cut short is invalid, not a crash."""
    data = chain.paths[1].read_bytes()
    cut = tmp_path / "2026-09.tar"
    cut.write_bytes(data[: len(data) // 2])
    code, err = collector_route([cut], chain.env.pub, capsys)
    assert code == 1 and err.startswith("collector: error: 2026-09.tar: ")


def test_verify_requires_a_pinned_key(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --key or --fingerprint there is nothing to trust: exit 2 with what to pass."""
    assert main(["verify", str(chain.paths[0])]) == 2
    assert "--fingerprint" in capsys.readouterr().err


def test_fingerprint_pins_the_embedded_key_and_rotation_accepts_several(
        chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    """--fingerprint trusts the tar's key only if it matches; any of several trusted keys will do."""
    fp = chain.env.key.fingerprint
    assert main(["verify", str(chain.paths[0]), "--fingerprint", fp]) == 0
    assert main(["verify", str(chain.paths[0]), "--fingerprint", "0" * 64]) == 1
    other = chain.work / "other.pub.pem"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    assert main(["verify", str(chain.paths[0]), "--key", str(other)]) == 1
    assert main(["verify", str(chain.paths[0]), "--key", str(other), "--key", str(chain.env.pub)]) == 0
    capsys.readouterr()


def test_a_tsa_ca_that_is_not_a_certificate_is_bad_input(chain: Chain, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """--tsa-ca naming a file that is no certificate: exit 2, one line naming the option."""
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    capsys.readouterr()
    code = main(["verify", str(chain.paths[0]), "--key", str(chain.env.pub), "--tsa-ca", str(junk)])
    err = capsys.readouterr().err
    assert code == 2 and f"--tsa-ca {junk}: is not a PEM or DER X.509 certificate" in err
    assert "Traceback" not in err
