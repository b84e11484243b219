"""Renders a digest dict to Markdown and self-contained HTML (Jinja2), and writes the three files."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import orjson

from collector.digest.text import clean, md_escape
from collector.filemodes import DELIVERABLE, DELIVERABLE_DIR, make_dirs

__all__ = ["chart_model", "digest_paths", "exception_rows", "render_html", "render_markdown",
           "write_files"]

_CHART_WIDTH = 760
_LABEL_W = 90
_VALUE_W = 110
_ROW_H = 40
_HEAD_H = 28
_GAP = 6


@cache
def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("collector", "templates"),
        # Markdown is not HTML: HTML-escaping it would corrupt the text. Its env escapes every
        # printed string for Markdown instead (md_escape: vendor text cannot add a link, an
        # image beacon or raw HTML); the HTML env escapes everything for HTML. Both strip
        # control and bidi characters.
        autoescape=autoescape,  # noqa: S701
        finalize=_finalize_html if autoescape else md_escape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = lambda n: f"{int(n):,}"
    env.filters["pct"] = lambda r: f"{float(r) * 100:.1f}%"
    env.filters["signed"] = lambda n: f"{n:+d}" if isinstance(n, int) else f"{n * 100:+.1f} pp"
    env.filters["short"] = lambda rid: str(rid)[:12]
    env.filters["ts"] = lambda t: "never" if not t else f"{t[:10]} {t[11:16]} UTC"
    env.filters["mdcell"] = _md_cell
    env.filters["due"] = _due
    env.tests["weblink"] = _is_web_link
    return env


def _finalize_html(value: Any) -> Any:
    """Every printed string cleaned of control and bidi characters (autoescape then escapes it);
    markup the templates made themselves (a macro's output) is left as it is."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return clean(value)
    return value


def _md_cell(value: Any) -> str:
    """A value as text for a Markdown cell ("" for None); the Markdown env's finalize escapes it
    (pipes, line breaks and the rest of Markdown's syntax) when it is printed."""
    return "" if value is None else str(value)


def _due(due: list[dict[str, Any]]) -> str:
    """Overdue documents as text: ``type (never)`` or ``type (last YYYY-MM-DD, every 90d)``."""
    return ", ".join(f"{d['type']} (never)" if not d["last_at"]
                     else f"{d['type']} (last {d['last_at'][:10]}, every {d['every']})" for d in due)


def _is_web_link(url: Any) -> bool:
    """Only http(s) links are rendered as links; anything else (javascript:, data:) stays text."""
    return isinstance(url, str) and url.lower().startswith(("https://", "http://"))


def _day_label(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day.strftime('%a')} {day.day}"


def chart_model(digest: dict[str, Any]) -> dict[str, Any]:
    """Geometry of the per-criterion, per-day bar chart: one row per criterion, bars scaled to
    the row's own maximum so a quiet criterion's gaps stay visible; each bar carries that day's
    exception records of the criterion (only those days are drawn as exception days)."""
    days = digest["days"]
    rows = [c for c in digest["criteria"] if c["in_scope"] or c["records_week"]]
    plot_w = _CHART_WIDTH - _LABEL_W - _VALUE_W
    slot = plot_w / len(days)
    bar_w = slot - _GAP
    out_rows = []
    for index, control in enumerate(rows):
        top = _HEAD_H + index * _ROW_H
        peak = max(control["records_by_day"]) or 1
        bars = []
        exceptions = control.get("exceptions_by_day") or [0] * len(days)
        for d, value in enumerate(control["records_by_day"]):
            height = 0.0 if value == 0 else max(2.0, (_ROW_H - 10) * value / peak)
            bars.append({
                "x": round(_LABEL_W + d * slot + _GAP / 2, 1),
                "y": round(top + _ROW_H - 4 - height, 1),
                "w": round(bar_w, 1), "h": round(height, 1), "value": value,
                "exceptions": exceptions[d], "day": days[d],
            })
        out_rows.append({
            "id": control["id"], "status": control["status"], "top": top,
            "label_y": top + _ROW_H / 2 + 4, "base_y": top + _ROW_H - 4,
            "peak": max(control["records_by_day"]), "total": control["records_week"], "bars": bars,
        })
    return {
        "width": _CHART_WIDTH, "height": _HEAD_H + len(rows) * _ROW_H + 8,
        "plot_x": _LABEL_W, "plot_end": _LABEL_W + plot_w, "value_x": _CHART_WIDTH - _VALUE_W + 8,
        "days": [{"label": _day_label(d), "x": round(_LABEL_W + (i + 0.5) * slot, 1)}
                 for i, d in enumerate(days)],
        "rows": out_rows,
    }


def exception_rows(digest: dict[str, Any]) -> list[dict[str, Any]]:
    """The exceptions listing: each line under every criterion it is filed under (criteria-table
    order, then the lines' order), with the occurrences filed under that criterion, so the
    listing under a criterion adds up to the criteria table's exceptions this week."""
    position = {c["id"]: i for i, c in enumerate(digest["criteria"])}
    rows = []
    for line in digest["exceptions"]:
        by = line.get("by_criterion") or {}
        keys = line.get("source_keys") or [line["source_key"]]
        label = line["source_key"] if len(keys) < 2 else f"{line['source_key']} (+{len(keys) - 1} more)"
        for criterion in line.get("criteria") or [line["control"]]:
            rows.append({"criterion": criterion, "e": line, "key_label": label,
                         "occurrences": by.get(criterion, line["occurrences"])})
    rows.sort(key=lambda r: position.get(r["criterion"], len(position)))
    return rows


def _context(digest: dict[str, Any]) -> dict[str, Any]:
    criteria = digest["criteria"]
    owner_of = {c["id"]: c["owner"] for c in digest["controls"]}
    in_scope = [c for c in criteria if c["in_scope"]]
    return {
        "d": digest,
        "day_labels": [_day_label(d) for d in digest["days"]],
        "acting": [o for o in digest["owners"] if o["actions"]],
        "idle": [o["owner"] for o in digest["owners"] if not o["actions"]],
        "design_gaps": [c for c in in_scope if not c["controls"]],
        # An operating gap: controls map to the criterion, none of them operating this week.
        "operating_gaps": [
            {"id": c["id"], "title": c["title"], "status": c["status"],
             "controls": [{"id": cid, "owner": owner_of.get(cid, "")} for cid in c["controls"]]}
            for c in in_scope if c["controls"] and not c["operating"]
        ],
        "missing": [c for c in in_scope if c["status"] == "no_evidence"],
        "troubled_streams": [s for s in digest["streams"] if s["status"] != "ok"],
        "exception_total": sum(e["occurrences"] for e in digest["exceptions"]),
        "exception_rows": exception_rows(digest),
        "chart": chart_model(digest),
    }


def render_markdown(digest: dict[str, Any]) -> str:
    """The digest as Markdown (the same figures as the JSON)."""
    return _env(False).get_template("digest.md.j2").render(_context(digest))


def render_html(digest: dict[str, Any]) -> str:
    """The digest as one self-contained HTML page: inline CSS and SVG, no external requests."""
    return _env(True).get_template("digest.html.j2").render(_context(digest))


def digest_paths(out_dir: Path, week: str) -> dict[str, Path]:
    """Where the digest of ``week`` is written: ``digest-<week>.{json,md,html}``."""
    return {ext: out_dir / f"digest-{week}.{ext}" for ext in ("json", "md", "html")}


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), DELIVERABLE)  # mkstemp's 0600: a digest is for people
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(digest: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Render and write the three files (each replaced atomically); return their paths."""
    make_dirs(out_dir, DELIVERABLE_DIR)
    paths = digest_paths(out_dir, digest["week"])
    _write_atomic(paths["json"], orjson.dumps(digest, option=orjson.OPT_INDENT_2) + b"\n")
    _write_atomic(paths["md"], render_markdown(digest).encode())
    _write_atomic(paths["html"], render_html(digest).encode())
    return paths
