"""The sealing key file: refused when others can read it or its group can write it, or when it is not a small regular file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.seal.keys import KeyFileError, create_key, load_sealing_key


def test_a_key_readable_by_others_is_refused_naming_the_chmod_fix(tmp_path: Path) -> None:
    """A sealing key with mode 0644, 0604 or 0660 is refused, and the message names `chmod 600 <path>`;
    0640 (a container reading a host secret through its group) is accepted."""
    key_file = tmp_path / "keys" / "seal.pem"
    create_key(key_file)
    os.chmod(key_file, 0o640)
    assert load_sealing_key(key_file).fingerprint
    for mode in (0o644, 0o604, 0o660):
        os.chmod(key_file, mode)
        with pytest.raises(KeyFileError) as caught:
            load_sealing_key(key_file)
        assert f"chmod 600 {key_file}" in str(caught.value) and f"{mode:04o}" in str(caught.value)
    os.chmod(key_file, 0o600)
    assert load_sealing_key(key_file).fingerprint


def test_key_file_on_dev_zero_is_one_line_not_an_endless_read(tmp_path: Path) -> None:
    """`key_file = "/dev/zero"` is refused in one line with exit 2 by `collector keys show`."""
    config = tmp_path / "config.toml"
    config.write_text('[signing]\nkey_file = "/dev/zero"\n')
    proc = subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config), "keys", "show"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "/dev/zero" in proc.stderr and "signing.key_file" in proc.stderr
