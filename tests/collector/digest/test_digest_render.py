"""Markdown and HTML renderings: the same figures as the JSON, self-contained, escaped, accessible."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson

from collector.digest import render_html, render_markdown
from collector.digest.render import write_files


class _Tables(HTMLParser):
    """Collects each table (by id) as rows of cell texts, and every tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._table = dict(attrs).get("id") or f"t{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def _md_rows(markdown: str, header: str) -> list[list[str]]:
    """Body rows of the Markdown table whose header row starts with ``| header |``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def test_markdown_and_html_show_the_json_figures(digest: dict[str, Any]) -> None:
    """Every criterion's counts, every control's status and owner, every owner's action, every
    exception line and every stream status in the JSON appear identically in the Markdown and the
    HTML tables, and both state the coverage."""
    markdown, html = render_markdown(digest), render_html(digest)
    tables = _parse(html).tables
    expected = [[c["id"], c["status"].replace("_", " "), c["records_week"], c["records_window"],
                 c["exceptions_week"], ", ".join(c["controls"])] for c in digest["criteria"]]
    md = [[r[0], r[2].replace("_", " "), _n(r[3]), _n(r[4]), _n(r[5]), r[7]]
          for r in _md_rows(markdown, "criterion")]
    ht = [[r[0], r[2], _n(r[3]), _n(r[4]), _n(r[5]), r[7]] for r in tables["criteria"][1:]]
    assert md == expected == ht
    exp_c = [[c["id"], c["owner"], c["status"].replace("_", " "), c["records_week"],
              c["exceptions_week"], c["status_window"].replace("_", " "), c["records_window"]]
             for c in digest["controls"]]
    md_c = [[r[0], r[2], r[3].replace("_", " "), _n(r[6]), _n(r[7]), r[8].replace("_", " "), _n(r[9])]
            for r in _md_rows(markdown, "control")]
    ht_c = [[r[0], r[2], r[3], _n(r[6]), _n(r[7]), r[8], _n(r[9])] for r in tables["controls"][1:]]
    assert md_c == exp_c == ht_c and len(exp_c) == 46
    exp_a = [[o["owner"], a["control"], a["status"].replace("_", " "), "; ".join(a["reasons"])]
             for o in digest["owners"] for a in o["actions"]]
    md_a = [[r[0], r[1], r[3].replace("_", " "), r[4]] for r in _md_rows(markdown, "owner")]
    ht_a = [[r[0], r[1], r[3], r[4]] for r in tables["actions"][1:]]
    assert md_a == exp_a == ht_a and exp_a
    exp_x = [[c["id"], e["stream"], e["source_key"], e["reason"], e["by_criterion"][c["id"]],
              ", ".join(e["controls"])] for c in digest["criteria"] for e in digest["exceptions"]
             if c["id"] in e["criteria"]]
    md_x = [[r[0], r[1], r[2], r[4], _n(r[5]), r[9]] for r in _md_rows(markdown, "criterion | stream")]
    ht_x = [[r[0], r[1], r[2], r[4], _n(r[5]), r[9]] for r in tables["exceptions"][1:]]
    assert md_x == exp_x == ht_x
    exp_s = [[s["id"], s["status"], s["records_week"]] for s in digest["streams"]]
    assert [[r[0], r[1], _n(r[3])] for r in _md_rows(markdown, "stream")] == exp_s
    assert [[r[0], r[1], _n(r[3])] for r in tables["streams"][1:]] == exp_s
    daily = [[c["id"], *c["records_by_day"], c["records_week"]] for c in digest["criteria"]]
    assert [[r[0], *map(_n, r[1:])] for r in tables["daily"][1:]] == daily
    assert [[r[0], *map(_n, r[1:])] for r in _md_rows(markdown, "criterion | Mon 23")] == daily
    assert "operating 1 of 4 criteria in scope (25.0%); designed 4 of 4" in markdown
    assert "25.0%" in html and "1 of 4" in html and "4 of 4" in html
    for line in digest["exceptions"]:
        assert line["record_id"][:12] in markdown and line["record_id"] in html


def test_html_is_self_contained_and_accessible(digest: dict[str, Any]) -> None:
    """The HTML loads nothing from elsewhere (no src, stylesheet link, script or url()), forbids it
    by CSP, and gives its tables captions and scoped headers and its chart a title and description."""
    html = render_html(digest)
    parsed = _parse(html)
    assert not [t for t, a in parsed.tags if "src" in a or t in ("script", "link", "iframe", "img")]
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html
    assert html.count("<caption") == len(parsed.tables)
    ths = [a for t, a in parsed.tags if t == "th"]
    assert ths and all(a.get("scope") in ("col", "row") for a in ths)
    svg = next(a for t, a in parsed.tags if t == "svg")
    assert svg["role"] == "img" and svg["aria-labelledby"] == "chart-title chart-desc"
    assert '<title id="chart-title">' in html and '<desc id="chart-desc">' in html
    assert "CC6.1: 5, 4, 2, 4, 2, 2, 2 (week 21)" in html
    assert '<html lang="en">' in html


def test_hostile_source_values_are_escaped(digest: dict[str, Any]) -> None:
    """Markup or table syntax in a source key or reason cannot inject HTML or break a Markdown row."""
    hostile = copy.deepcopy(digest)
    hostile["exceptions"][0]["source_key"] = '<script>alert(1)</script>|x'
    hostile["exceptions"][0]["reason"] = 'a "quoted" <b>reason</b>'
    hostile["exceptions"][0]["source_url"] = 'javascript:alert(1)" onclick="x'
    html = render_html(hostile)
    assert "<script>" not in html and "<b>reason" not in html and 'onclick="x' not in html
    assert "javascript:" not in html
    markdown = render_markdown(hostile)
    row = _md_rows(markdown, "criterion | stream")[0]
    assert row[2] == "&lt;script&gt;alert(1)&lt;/script&gt;\\|x" and len(row) == 10


def test_write_files_writes_three_files(digest: dict[str, Any], tmp_path: Path) -> None:
    """The JSON file round-trips to the digest; the .md and .html sit beside it, named for the week."""
    paths = write_files(digest, tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == [
        "digest-2026-W48.html", "digest-2026-W48.json", "digest-2026-W48.md"]
    assert orjson.loads(paths["json"].read_bytes()) == digest
    assert paths["md"].read_text().startswith("# Evidence coverage digest 2026-W48")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_hostile_library_values_are_escaped(digest: dict[str, Any]) -> None:
    """Markup or table syntax in a control's title, owner or reasons (the organisation's own library
    file) cannot inject HTML or break a Markdown row of the controls or the owners' actions."""
    hostile = copy.deepcopy(digest)
    hostile["controls"][0]["title"] = "<img src=x onerror=alert(1)>|t"
    hostile["controls"][0]["owner"] = "<b>owner</b>|o"
    owner = next(o for o in hostile["owners"] if o["actions"])
    owner["owner"] = "<script>x</script>|a"
    owner["actions"][0]["reasons"] = ["<i>why</i>|r"]
    html = render_html(hostile)
    assert "<img" not in html and "<b>owner" not in html and "<script>" not in html
    assert "<i>why" not in html
    markdown = render_markdown(hostile)
    controls = _md_rows(markdown, "control")
    assert controls[0][1] == "&lt;img src=x onerror=alert(1)&gt;\\|t" and len(controls[0]) == 11
    actions = _md_rows(markdown, "owner")
    assert actions[0][0] == "&lt;script&gt;x&lt;/script&gt;\\|a"
    assert actions[0][4] == "&lt;i&gt;why&lt;/i&gt;\\|r"
    assert len(actions[0]) == 5
