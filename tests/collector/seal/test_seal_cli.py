"""The `keys`, `seal`, `verify` commands end to end with a config file and a real store."""

from __future__ import annotations

import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from seal_helpers import add, record

from collector.cli import main
from storage import Store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[storage]\nurl = "sqlite:///data/evidence.db"\n'
                    '[scope]\ncategories = ["security"]\n')
    return path


def _last_month() -> str:
    first = datetime.now(UTC).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def test_keys_init_writes_a_private_key_0600_and_prints_the_openssl_fingerprint(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`keys init` writes the key (0600) and `seal-ed25519.pub.pem`; the fingerprint is openssl's SPKI SHA-256."""
    assert main(["--config", str(config), "keys", "init"]) == 0
    out = capsys.readouterr().out
    key = config.parent / "data" / "keys" / "seal-ed25519.pem"
    pub = key.with_name("seal-ed25519.pub.pem")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and pub.exists()
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    import hashlib

    fp = hashlib.sha256(der).hexdigest()
    assert f"fingerprint:  {fp}" in out
    assert main(["--config", str(config), "keys", "init"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["--config", str(config), "keys", "show"]) == 0
    assert fp in capsys.readouterr().out


def test_seal_without_a_key_names_the_config_key(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sealing before `keys init` is exit 2 naming [signing].key_file and what to run."""
    assert main(["--config", str(config), "seal"]) == 2
    err = capsys.readouterr().err
    assert "signing.key_file" in err and "collector keys init" in err


def test_seal_verify_and_amend_from_the_command_line(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`seal` seals the due window into data/snapshots, `verify` passes, `--amend` picks up late records."""
    month = _last_month()
    assert main(["--config", str(config), "keys", "init"]) == 0
    store = Store.open(f"sqlite:///{config.parent / 'data' / 'evidence.db'}")
    add(store, [record(f"{month}-0{d}T10:00:00") for d in range(1, 6)])
    capsys.readouterr()
    code = main(["--config", str(config), "seal", "--window", month])
    assert code == 0, capsys.readouterr().err
    tar = config.parent / "data" / "snapshots" / f"{month}.tar"
    assert f"sealed {tar} (5 records" in capsys.readouterr().out
    pub = config.parent / "data" / "keys" / "seal-ed25519.pub.pem"
    assert main(["verify", str(tar), "--key", str(pub)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {month}.tar: window {month}, 5 records")
    assert main(["--config", str(config), "seal", "--window", month, "--amend"]) == 0
    assert "nothing to amend" in capsys.readouterr().out
    add(store, [record(f"{month}-07T10:00:00")])
    store.close()
    assert main(["--config", str(config), "seal", "--window", month, "--amend"]) == 0
    amend = tar.with_name(f"{month}.amend-1.tar")
    assert amend.exists()
    assert main(["verify", str(tar), str(amend), "--key", str(pub)]) == 0
    assert "OK chain of 2 snapshots" in capsys.readouterr().out


def test_seal_refuses_an_unfinished_window_and_amend_without_window(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The current window cannot be sealed, and --amend needs --window: exit 2, one line each."""
    assert main(["--config", str(config), "keys", "init"]) == 0
    this_month = datetime.now(UTC).strftime("%Y-%m")
    capsys.readouterr()
    assert main(["--config", str(config), "seal", "--window", this_month]) == 2
    assert "has not ended" in capsys.readouterr().err
    assert main(["--config", str(config), "seal", "--amend"]) == 2
    assert "--amend needs --window" in capsys.readouterr().err
    assert main(["--config", str(config), "seal", "--window", "2026-13"]) == 2


def test_seal_writes_to_the_configured_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`[seal] out_dir` (relative to the config's folder) is where `seal` writes, without --out."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "sqlite:///data/evidence.db"\n[seal]\nout_dir = "sealed/here"\n')
    month = _last_month()
    assert main(["--config", str(config), "keys", "init"]) == 0
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'evidence.db'}")
    add(store, [record(f"{month}-02T10:00:00")])
    store.close()
    capsys.readouterr()
    assert main(["--config", str(config), "seal", "--window", month]) == 0
    assert (tmp_path / "sealed" / "here" / f"{month}.tar").is_file()
    assert not (tmp_path / "data" / "snapshots").exists()
    config.write_text('[seal]\nout_dir = ""\n')
    assert main(["--config", str(config), "seal"]) == 2
    assert "seal.out_dir" in capsys.readouterr().err


def test_public_key_is_named_pub_pem_and_an_earlier_name_is_still_found(tmp_path: Path) -> None:
    """A new key's public half is `seal-ed25519.pub.pem`; a key made when it was written as
    `seal-ed25519.pem.pub.pem` is still found under that name."""
    from collector.seal.keys import create_key, public_key_path

    key = create_key(tmp_path / "new" / "seal-ed25519.pem")
    assert public_key_path(key.path) == tmp_path / "new" / "seal-ed25519.pub.pem"
    assert public_key_path(key.path).is_file()
    assert not (tmp_path / "new" / "seal-ed25519.pem.pub.pem").exists()
    old = create_key(tmp_path / "old" / "seal-ed25519.pem")
    public_key_path(old.path).rename(tmp_path / "old" / "seal-ed25519.pem.pub.pem")
    assert public_key_path(old.path) == tmp_path / "old" / "seal-ed25519.pem.pub.pem"
