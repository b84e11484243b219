"""`sample` trusts nothing it has not checked: SHA256SUMS against a given key, and crafted manifests."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from seal_helpers import Env, add, extract, pack, record, resign, resum

from collector.cli import main
from collector.seal.keys import SealingKey, public_key_path, public_pem
from collector.seal.sample import sample
from collector.seal.verify import TrustedKeys, VerificationError, verify_snapshot


@pytest.fixture
def window(env: Env) -> Path:
    """A sealed October with a few records under CC6.1."""
    add(env.store, [record(f"2026-10-{d:02d}T00:00:00") for d in range(1, 9)])
    [snap] = env.sealer().seal("2026-10")
    return snap.path


def _steered(window: Path, tmp_path: Path, signer: SealingKey | None) -> Path:
    """The snapshot with another Merkle root (to steer the sample), SHA256SUMS recomputed and, with
    ``signer``, signed again by it."""
    members = extract(window)
    manifest = orjson.loads(members["manifest.json"])
    manifest["merkle"]["root"] = "0" * 64
    members["manifest.json"] = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)
    if signer is None:
        resum(members)
    else:
        members["keys/seal.pub.pem"] = public_pem(signer.public)
        resign(members, signer)
    out = tmp_path / "steered"
    out.mkdir(exist_ok=True)
    return pack(members, out / window.name)


def test_sample_with_a_key_refuses_a_snapshot_not_signed_by_it(env: Env, window: Path,
                                                               tmp_path: Path) -> None:
    """With --key or --fingerprint, a re-summed manifest (unsigned or signed by another key) is
    refused before any row is drawn; the genuine snapshot samples as before."""
    trust = TrustedKeys.load([public_key_path(env.key.path)])
    pinned = TrustedKeys.load([], [env.key.fingerprint])
    assert sample(window, "CC6.1", 3, trust=trust) == sample(window, "CC6.1", 3) == \
        sample(window, "CC6.1", 3, trust=pinned)
    attacker = SealingKey(Ed25519PrivateKey.generate(), tmp_path / "attacker.pem")
    for forged in (_steered(window, tmp_path, None), _steered(window, tmp_path, attacker)):
        assert sample(forged, "CC6.1", 3)  # SHA256SUMS agrees: only the signature can tell
        for keys in (trust, pinned):
            with pytest.raises(VerificationError, match=r"SHA256SUMS\.ed25519: SHA256SUMS is not signed"):
                sample(forged, "CC6.1", 3, trust=keys)


def test_sample_cli_checks_the_signature_with_key_and_exits_1(
        env: Env, window: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`collector sample --key PUB` on a forged snapshot exits 1 in one line; on the genuine one 0."""
    pub = str(public_key_path(env.key.path))
    assert main(["sample", str(window), "--criterion", "CC6.1", "--size", "2", "--key", pub]) == 0
    forged = _steered(window, tmp_path, None)
    capsys.readouterr()
    assert main(["sample", str(forged), "--criterion", "CC6.1", "--size", "2", "--key", pub]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not signed by a trusted key" in err


def _nested(window: Path, tmp_path: Path, key: SealingKey, depth: int = 100_000) -> Path:
    members = extract(window)
    members["manifest.json"] = b'{"merkle":{"root":' + b"[" * depth + b"]" * depth + b"}}"
    resign(members, key)
    out = tmp_path / "nested"
    out.mkdir(exist_ok=True)
    return pack(members, out / window.name)


def test_a_deeply_nested_manifest_is_one_error_for_sample_and_verify(env: Env, window: Path,
                                                                    tmp_path: Path) -> None:
    """A manifest nesting 100,000 arrays, signed by the trusted key, is a VerificationError naming
    manifest.json for both `sample` and `verify`, never a RecursionError."""
    nested = _nested(window, tmp_path, env.key)
    trust = TrustedKeys.load([public_key_path(env.key.path)])
    with pytest.raises(VerificationError, match=r"manifest\.json: .*nested deeper than 64 levels"):
        sample(nested, "CC6.1", 3)
    with pytest.raises(VerificationError, match=r"manifest\.json.*nested deeper than 64 levels"):
        verify_snapshot(nested, trust)
    # Between the parser's limits (orjson's 255, the stdlib's ~1000): still one error.
    shallow = _nested(window, tmp_path, env.key, depth=300)
    with pytest.raises(VerificationError, match="nested deeper"):
        verify_snapshot(shallow, trust)
