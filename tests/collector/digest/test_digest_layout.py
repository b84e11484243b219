"""The HTML digest's layout in a real headless Chromium at a phone's 390 px and a desktop's 1280 px:
no sideways scroll, headings and captions within the screen, a readable reason column, and only
the days with exceptions of a criterion coloured as exception days."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdp import Browser

from collector.digest.render import write_files

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

# Measured in the page through DevTools (the digest's CSP forbids scripts of its own).
PROBE = """JSON.stringify({
  scroll: document.scrollingElement.scrollWidth, inner: innerWidth,
  clipped: [...document.querySelectorAll('h1, h2, caption, p')].filter(e => {
    const r = document.createRange(); r.selectNodeContents(e);
    return e.scrollWidth > e.clientWidth + 1 || r.getBoundingClientRect().right > innerWidth + 1;
  }).map(e => e.tagName + ': ' + e.textContent.slice(0, 40)),
  reason: [...document.querySelectorAll('#exceptions tbody tr')].map(
    r => r.children[4].getBoundingClientRect().width),
  bars: [...document.querySelectorAll('#chart rect')].filter(r => r.getAttribute('height') !== '3')
    .map(r => [r.querySelector('title').textContent, r.getAttribute('fill')]),
})"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the module."""
    assert CHROMIUM is not None
    browser = Browser(CHROMIUM, tmp_path_factory.mktemp("profile"))
    yield browser
    browser.close()


def _measure(browser: Browser, page: Path, width: int, shot: Path) -> dict[str, Any]:
    browser.open(page.as_uri(), width)
    browser.screenshot(shot)
    found: dict[str, Any] = json.loads(browser.evaluate(PROBE))
    return found


@pytest.mark.parametrize("width", [390, 1280])
def test_digest_fits_the_screen(width: int, digest: dict[str, Any], browser: Browser,
                                tmp_path: Path) -> None:
    """At 390 and 1280 px the page never scrolls sideways (wide tables scroll inside their own
    box), no heading, caption or paragraph runs past the screen, the exceptions' reason column is
    at least 150 px wide, and a screenshot of the whole page is saved."""
    paths = write_files(digest, tmp_path / "out")
    shot = tmp_path / f"digest-{width}.png"
    m = _measure(browser, paths["html"], width, shot)
    assert m["inner"] == width and m["scroll"] <= m["inner"], m
    assert m["clipped"] == []
    assert m["reason"] and min(m["reason"]) >= 150, m["reason"]
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_only_days_with_exceptions_of_the_criterion_are_coloured(digest: dict[str, Any],
                                                                  browser: Browser, tmp_path: Path) -> None:
    """A bar has the exception colour exactly on the days that criterion has exception records:
    CC7.2's single exception (Thursday) colours Thursday only, though the criterion has
    exceptions this week."""
    paths = write_files(digest, tmp_path / "out")
    m = _measure(browser, paths["html"], 1280, tmp_path / "chart.png")
    coloured = {title.split(":")[0] for title, fill in m["bars"] if fill == "#c26b00"}
    expected = {f"{c['id']} {day}" for c in digest["criteria"]
                for day, n, records in zip(digest["days"], c["exceptions_by_day"],
                                           c["records_by_day"], strict=True) if n and records}
    assert coloured == expected
    assert {x for x in coloured if x.startswith("CC7.2")} == {"CC7.2 2026-11-26"}
    cc72 = next(c for c in digest["criteria"] if c["id"] == "CC7.2")
    assert cc72["status"] == "exceptions" and sum(1 for n in cc72["records_by_day"] if n) > 1


def test_the_scroll_check_catches_a_page_wider_than_the_screen(browser: Browser, tmp_path: Path) -> None:
    """The measurement is real: a 600 px wide block on a 390 px phone scrolls sideways."""
    page = tmp_path / "wide.html"
    page.write_text('<!DOCTYPE html><html lang="en"><head><meta name="viewport" '
                    'content="width=device-width, initial-scale=1"><title>x</title></head>'
                    '<body><div style="width:600px">wide</div></body></html>')
    m = _measure(browser, page, 390, tmp_path / "wide.png")
    assert m["scroll"] > 390
