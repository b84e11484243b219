"""The HTML digest in a real headless Chromium: it renders, logs no console errors, shows coverage."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from collector.digest.render import write_files

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (CI installs it and runs these tests)",
)


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``page`` with networking extras off and console logging to stderr."""
    assert CHROMIUM is not None, "CI is set but chromium is missing: .ci/run must install it"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra,
         page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_chromium_renders_the_digest_without_console_errors(digest: dict[str, Any], tmp_path: Path) -> None:
    """Chromium renders the HTML digest with no console messages (no blocked requests, no errors),
    its DOM shows the coverage figure, and the screenshot is saved as an artifact."""
    paths = write_files(digest, tmp_path / "out")
    shot = tmp_path / "digest-2026-W48.png"
    result = _chromium(paths["html"], tmp_path / "profile-shot", f"--screenshot={shot}",
                       "--window-size=1200,2000")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert _console(result.stderr) == []
    dom = _chromium(paths["html"], tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    assert '<strong id="coverage-ratio" style="font-size:32px;">25.0%</strong>' in dom.stdout
    assert '<strong id="coverage-count">1 of 4</strong>' in dom.stdout
    print(f"screenshot: {shot}")


def test_console_check_catches_an_external_request(tmp_path: Path) -> None:
    """The console check is real: a page that tries to load a remote image under the digest's CSP
    produces a console message that the check reports."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>x</title>"
        '</head><body><img alt="" src="https://example.invalid/pixel.png"></body></html>'
    )
    result = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("example.invalid" in line for line in _console(result.stderr))
