"""Every file the collector writes has its mode by design, whatever the umask (tested under umask 000)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def _umask_000() -> None:
    os.umask(0)


def _run(config: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=300, preexec_fn=_umask_000)
    assert proc.returncode == 0, proc.stderr


def _mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def test_outputs_are_0600_or_0644_in_0700_or_0755_folders_under_umask_000(tmp_path: Path) -> None:
    """Under umask 000 the key and the SQLite store (with its WAL) are 0600 in 0700 folders, and
    snapshots, digests and the public key 0644 in 0755 folders: nothing is group or world writable."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "sqlite:///state/db/evidence.db"\n\n'
                      '[signing]\nkey_file = "secrets/keys/seal.pem"\n\n'
                      '[digest]\nout_dir = "out/digests"\n\n'
                      '[connectors.synthetic]\ncount = 20\nusers = 2\n')
    _run(config, "keys", "init")
    _run(config, "collect")
    _run(config, "seal", "--out", str(tmp_path / "out" / "snapshots"))
    _run(config, "digest", "--no-deliver")
    _run(config, "controls", "init", str(tmp_path / "controls.toml"))
    snapshots = sorted((tmp_path / "out" / "snapshots").glob("*.tar"))
    digests = sorted((tmp_path / "out" / "digests").glob("digest-*"))
    assert len(digests) == 3 and snapshots
    expected = {
        "secrets": "0700", "secrets/keys": "0700", "secrets/keys/seal.pem": "0600",
        "secrets/keys/seal.pub.pem": "0644",
        "state": "0700", "state/db": "0700", "state/db/evidence.db": "0600",
        "out": "0755", "out/snapshots": "0755",
        **{f"out/snapshots/{s.name}": "0644" for s in snapshots},
        "out/digests": "0755", **{f"out/digests/{d.name}": "0644" for d in digests},
        "controls.toml": "0644",
    }
    assert {name: _mode(tmp_path / name) for name in expected} == expected
    for extra in (tmp_path / "state" / "db").iterdir():  # -wal and -shm follow the database file
        assert _mode(extra) == "0600", extra.name
