"""Vendor text in the digest: Markdown and HTML escaped in every rendering, control and bidi
characters stripped everywhere (the JSON included), whatever a source system sends."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from digest_seed import NOW, at, insert, record, seed_records, seeded_scope
from markdown_it import MarkdownIt

from collector.digest import build_digest, render_html, render_markdown
from collector.digest.text import clean, md_escape
from storage import Store

LINK = "[Re-authenticate here](https://evil.example/login)"
BEACON = "![](https://evil.example/beacon.gif)"
HOSTILE = {
    "source_key": "<script>alert(1)</script>",
    "actor": "<img src=x onerror=alert(1)>",
    "reason": f"Backup FAILED\x00 {LINK} {BEACON} \u202etxt.exe *bold* `code` |pipe| www.evil.example",
}


class _Tags(HTMLParser):
    """Every tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


@pytest.fixture
def hostile(tmp_path: Path) -> dict[str, Any]:
    """The W48 digest of the seeded store plus one backup job whose vendor text is hostile, this week
    and the week before (so it is in the exceptions, and a source key is in the changes list)."""
    store = Store.open(f"sqlite:///{tmp_path / 'evidence.db'}")
    rows = seed_records()
    for day in (20, 26):
        r = record("aws.backup_jobs", HOSTILE["source_key"] + str(day), "backup_result", at(day),
                   ("A1.2",), HOSTILE["reason"], actor=HOSTILE["actor"] + str(day))
        rows.append(r)
    insert(store, rows)
    try:
        return build_digest(store, seeded_scope(), NOW)
    finally:
        store.close()


def test_markdown_digest_renders_vendor_text_as_text(hostile: dict[str, Any]) -> None:
    """Rendered by a CommonMark renderer (raw HTML allowed, tables on), the Markdown digest has no
    script, image or vendor-made link: only the record links the digest makes itself, and the
    hostile strings show literally."""
    markdown = render_markdown(hostile)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    parsed = _parse(html)
    tags = {t for t, _ in parsed.tags}
    assert not tags & {"script", "img", "em", "del"}  # the template's own bold is <strong>
    hrefs = [a.get("href") or "" for t, a in parsed.tags if t == "a"]
    assert hrefs and all(h.startswith("https://source.invalid/") for h in hrefs), hrefs
    assert not [t for t, a in parsed.tags if "onerror" in a]
    text = "".join(parsed.text)
    assert HOSTILE["source_key"] in text and HOSTILE["actor"] in text
    assert LINK in text and BEACON in text and "*bold*" in text and "|pipe|" in text
    # The changes list (new exceptions) names the actor (backup jobs are events), escaped too.
    assert f"{HOSTILE['actor']}26: Backup FAILED" in text


def test_every_rendering_strips_nul_and_bidi_overrides(hostile: dict[str, Any]) -> None:
    """NUL and U+202E reach none of the JSON, Markdown or HTML digest."""
    renderings = [orjson.dumps(hostile).decode(), render_markdown(hostile), render_html(hostile)]
    for text in renderings:
        assert "\x00" not in text and "\u202e" not in text and "\\u0000" not in text
    reasons = {e["reason"] for e in hostile["exceptions"] if e["stream"] == "aws.backup_jobs"}
    assert f"Backup FAILED {LINK} {BEACON} txt.exe *bold* `code` |pipe| www.evil.example" in reasons


def test_html_digest_escapes_vendor_text(hostile: dict[str, Any]) -> None:
    """The HTML digest shows the hostile strings as text: no script, image or event handler."""
    parsed = _parse(render_html(hostile))
    assert not [t for t, a in parsed.tags if t in ("script", "img") or "onerror" in a]
    assert HOSTILE["source_key"] + "26" in "".join(parsed.text)


def test_md_escape_and_clean_contract() -> None:
    """Escaping keeps intra-word underscores and e-mail addresses readable, defuses autolinks,
    and cleaning turns line breaks into spaces while dropping other controls and bidi marks."""
    assert md_escape("first_last@acme.example no_evidence") == "first_last@acme.example no_evidence"
    assert md_escape("_x_ https://a.example www.b.example") == (
        "\\_x\\_ https:\\/\\/a.example www\\.b.example")
    assert clean("a\tb\r\nc\x00\x1b[31m\u2066d\u2069") == "a b  c[31md"
    assert md_escape(7) == 7
