"""Files named on the command line or in the config are read with a cap: one line and exit 2, never a hang."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

_ONE_GIB = 1 << 30


def _limited() -> None:
    # Without the caps these commands read /dev/zero until memory runs out: keep that bounded.
    resource.setrlimit(resource.RLIMIT_AS, (_ONE_GIB * 2, _ONE_GIB * 2))


def _collector(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli", *args], capture_output=True,
                          text=True, timeout=120, preexec_fn=_limited)


@pytest.mark.parametrize(("args", "named"), [
    (("--config", "/dev/zero", "collect"), "/dev/zero: the config file is larger than 1,048,576 bytes"),
    (("verify", "{snap}", "--key", "/dev/zero"), "--key /dev/zero: is larger than 65,536 bytes"),
    (("verify", "{snap}", "--fingerprint", "0" * 64, "--tsa-ca", "/dev/zero"),
     "--tsa-ca /dev/zero: is larger than 1,048,576 bytes"),
    (("sample", "{snap}", "--criterion", "CC6.1", "--size", "1", "--key", "/dev/zero"), "--key /dev/zero"),
], ids=["--config", "verify --key", "verify --tsa-ca", "sample --key"])
def test_dev_zero_is_refused_in_one_line(tmp_path: Path, args: tuple[str, ...], named: str) -> None:
    """`/dev/zero` given as a config, a public key or a TSA CA is refused at its cap, exit 2, one line."""
    snap = tmp_path / "2026-10.tar"
    snap.write_bytes(b"\0" * 1024)  # never opened: the key or CA is read first
    proc = _collector(*(a.format(snap=snap) for a in args))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and named in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["[" * 100_000 + "]" * 100_000, "{a = " * 3000 + "1" + "}" * 3000],
                         ids=["arrays", "inline tables"])
def test_a_deeply_nested_toml_config_is_one_line(tmp_path: Path, value: str) -> None:
    """A config nesting arrays or inline tables thousands deep is `invalid TOML`, exit 2, one line."""
    config = tmp_path / "config.toml"
    config.write_text(f"deep = {value}\n")
    proc = _collector("--config", str(config), "streams")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "invalid TOML: arrays or tables nested too deeply" in proc.stderr
