"""Secrets: canary tokens in every secret variable never reach an output, the database, a digest or a snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_kit import small_world
from reliability_secrets import Canaries, Scan, scan_files, secret_run, slack_receiver


@pytest.mark.slow
def test_canary_secrets_appear_in_no_output_and_no_file(tmp_path: Path) -> None:
    """collect, digest (delivered to a Slack receiver), keys init, seal, streams and verify at debug log
    level, then a collect with every token wrong (401s): no canary in any stdout, stderr or file byte."""
    with small_world() as (world, ep), slack_receiver() as receiver:
        scan = secret_run(world, ep, tmp_path / "run", receiver)
    assert scan.leaks == [], scan.commands
    assert scan.files >= 6 and any(c.startswith("collect with wrong tokens: exit 1") for c in scan.commands)


def test_the_scanner_finds_a_planted_canary(tmp_path: Path) -> None:
    """A canary written into a file, or its Jira basic-auth form, is reported (so a clean scan means something)."""
    canaries = Canaries.fresh("http://127.0.0.1:9")
    (tmp_path / "a.db").write_bytes(b"\x00header" + canaries.env["GITHUB_TOKEN"].encode() + b"\x00")
    (tmp_path / "b.log").write_text(f"Authorization: Basic {canaries.forms['Jira basic auth']}\n")
    scan = Scan()
    scan_files(scan, canaries, tmp_path)
    assert sorted(scan.leaks) == ["a.db: GITHUB_TOKEN", "b.log: Jira basic auth"]
