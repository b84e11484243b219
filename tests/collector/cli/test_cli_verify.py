"""`collector verify` names the flag to fix; the library it calls says only what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.errors import CollectorError
from collector.seal.keys import FingerprintError, KeyFileError, NoTrustedKeyError
from collector.seal.verify import TrustedKeys


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """A file that exists where a snapshot is expected (trust is refused before it is read)."""
    path = tmp_path / "2026-10.tar"
    path.write_bytes(b"")
    return path


def test_trusted_keys_errors_name_the_problem_not_a_flag(tmp_path: Path) -> None:
    """TrustedKeys.load names the file or fingerprint at fault and never spells a CLI flag."""
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    cases: list[tuple[type[CollectorError], list[str], list[str], str]] = [
        (KeyFileError, [str(tmp_path / "missing.pem")], [], "missing.pem: No such file"),
        (KeyFileError, [str(not_pem)], [], "not.pem: not a PEM public key"),
        (FingerprintError, [], ["abc"], "abc: expected 64 hex digits"),
        (NoTrustedKeyError, [], [], "no trusted key"),
    ]
    for error, keys, fingerprints, text in cases:
        with pytest.raises(error) as caught:
            TrustedKeys.load(keys, fingerprints)
        assert text in str(caught.value) and "--" not in str(caught.value)
        assert caught.value.exit_code == 2


def test_verify_names_the_flag_that_fixes_it(tmp_path: Path, snapshot: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Each trust problem is exit 2 with one line that starts from the flag to fix."""
    missing = tmp_path / "missing.pem"
    cases = [
        (["--key", str(missing)], f"collector: error: --key {missing}: No such file"),
        (["--fingerprint", "abc"], "collector: error: --fingerprint abc: expected 64 hex digits"),
        ([], "collector: error: no trusted key: pass --key PUB.pem or --fingerprint HEX"),
    ]
    for flags, line in cases:
        assert main(["verify", str(snapshot), *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith(line) and len(err.strip().splitlines()) == 1
