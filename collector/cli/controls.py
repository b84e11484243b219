"""`collector controls`: the organisation's controls and their status, the criteria in scope and their
gaps, and `controls init` to copy the starter library for tailoring."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.cli._common import add_json_option, print_json, settings_from

if TYPE_CHECKING:
    from collector.catalog import Catalog
    from collector.config import Settings

__all__ = ["add_arguments", "run"]

_LABEL = {"soc2": "SOC 2", "iso27001": "ISO 27001:2022", "nist-csf": "NIST CSF 2.0"}
DEFAULT_PATH = "controls.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``init [PATH]``, ``--criteria``, ``--framework`` and ``--json``."""
    parser.add_argument("action", nargs="?", choices=("init",), default=None,
                        help="init: copy the starter control library to PATH for tailoring")
    parser.add_argument("path", nargs="?", metavar="PATH", default=None,
                        help=f"where `init` writes the library (default ./{DEFAULT_PATH})")
    parser.add_argument("--criteria", action="store_true",
                        help="the criteria in scope with their controls and gaps, and the exclusions")
    parser.add_argument("--framework", choices=tuple(_LABEL), default=None,
                        help="criteria view with each criterion's references in this framework "
                             "(implies --criteria)")
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    """`init`: write the starter library (exit 2 if PATH exists). Otherwise print the controls (or,
    with --criteria/--framework, the criteria) judged on the week and window to date; exit 0."""
    from collector.errors import InputError

    if args.action == "init":
        return _init(Path(args.path or DEFAULT_PATH))
    if args.path is not None:
        raise InputError(f"unexpected argument {args.path!r} (only `controls init` takes a PATH)")
    settings = settings_from(args)
    report = _report(settings, datetime.now(UTC))
    if args.criteria or args.framework is not None:
        return _print_criteria(settings, report, args.framework or "soc2", args.json)
    return _print_controls(report, args.json)


def _init(target: Path) -> int:
    """Copy the starter library to ``target``, never over an existing file."""
    import os

    from collector.controls import ControlLibrary, starter_text
    from collector.errors import InputError
    from collector.filemodes import DELIVERABLE

    try:
        with target.open("x", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), DELIVERABLE)  # 0644 whatever the umask: a config file
            handle.write(starter_text())
    except FileExistsError:
        raise InputError(f"{target}: already exists; `collector controls init` never overwrites "
                         "a library (name another PATH, or tailor the one you have)") from None
    print(f"wrote the starter control library ({len(ControlLibrary.starter())} controls) to {target}")
    print("tailor its owners, statements and cadences, then put this in your config "
          "(a relative path is read from the config file's folder):")
    print(f"[controls]\nlibrary = {json.dumps(str(target))}")
    return 0


def _report(settings: Settings, now: datetime) -> dict[str, Any]:
    """Every control judged on the week to date and the window to date as of ``now``, and the
    criteria in scope judged by their controls."""
    from collector.config import open_store
    from collector.controls import evaluate_controls, evaluate_coverage, evaluate_criteria
    from collector.digest.evidence import Period, control_entry, read_evidence
    from collector.windows import window_containing

    zone = settings.windows.timezone
    week = window_containing(now, "week", zone)
    window = window_containing(now, settings.windows.period, zone)
    library = settings.library
    store = open_store(settings)
    try:
        with store.read_snapshot() as conn:
            reading = read_evidence(conn, (Period("week", week.start, now),
                                          Period("window", window.start, now)))
        counts = store.filing_counts()
    finally:
        store.close()
    states = evaluate_controls(library, reading.control_evidence(library, "week"), now)
    states_window = evaluate_controls(library, reading.control_evidence(library, "window"), now)
    criteria = evaluate_criteria(settings.scope, states)
    return {
        "week": week.id, "window": window.id, "as_of": now,
        "controls": [control_entry(w, x) for w, x in zip(states, states_window, strict=True)],
        "criteria": criteria,
        "coverage": evaluate_coverage(settings.scope, criteria).as_dict(),
        "records": counts,
        "library": settings.controls_library or library.source,
    }


def _print_controls(report: dict[str, Any], as_json: bool) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    rows = [{"id": c["id"], "owner": c["owner"], "status": c["status"],
             "status_window": c["status_window"], "last_evidence_at": c["last_evidence_at"],
             "criteria": c["criteria"], "title": c["title"], "every": c["every"],
             "records_week": c["records_week"], "exceptions_week": c["exceptions_week"],
             "records_window": c["records_window"], "reasons": c["reasons"], "due": c["due"]}
            for c in report["controls"]]
    if as_json:
        print_json(rows)
        return 0
    table = Table(title=f"Controls ({escape(report['library'])}): week {report['week']} and window "
                        f"{report['window']} to date", title_justify="left")
    for column in ("control", "owner", "status", "window", "last evidence", "records this week",
                   "criteria", "title"):
        table.add_column(column, justify="right" if column.startswith("records") else "left")
    for row in rows:
        last = row["last_evidence_at"]
        # The library is the organisation's text: "[draft]" in a title is text, not rich markup.
        table.add_row(*map(escape, (row["id"], row["owner"], row["status"], row["status_window"],
                                    f"{last[:10]} {last[11:16]} UTC" if last else "never",
                                    f"{row['records_week']:,}", ", ".join(row["criteria"]),
                                    row["title"])))
    console = Console(width=200)
    console.print(table)
    console.print(_coverage_line(report["coverage"]), highlight=False)
    return 0


def _coverage_line(cov: dict[str, Any]) -> str:
    return (f"Coverage: operating {cov['operating']} of {cov['in_scope']} criteria in scope "
            f"({cov['ratio'] * 100:.1f}%), designed {cov['designed']} of {cov['in_scope']}, "
            f"{len(cov['excluded'])} excluded")


def _print_criteria(settings: Settings, report: dict[str, Any], framework: str, as_json: bool) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from collector.catalog import Catalog
    from collector.collect import plan_streams
    from collector.digest.scope import filed_criteria

    catalog = Catalog.builtin()
    filed = filed_criteria(settings, plan_streams(settings), catalog)
    judged = {state.id: state for state in report["criteria"]}
    reasons = {e.criterion: e.reason for e in settings.scope.excluded}
    rows: list[dict[str, Any]] = []
    # Every criterion of the catalog, in its order: those in scope judged by their controls, the
    # excluded ones with their reason, those of categories not chosen only as references.
    for criterion in catalog.criteria:
        state = judged.get(criterion)
        if state is None:
            mapped = [c.id for c in settings.library.for_criterion(criterion)]
            rows.append(_criterion_row(catalog, framework, criterion, filed, report["records"],
                                       in_scope=False, excluded=reasons.get(criterion), status=None,
                                       controls=mapped, operating=[], gap=None))
            continue
        gap = "design" if not state.controls else "operating" if not state.operating else None
        rows.append(_criterion_row(catalog, framework, criterion, filed, report["records"],
                                   in_scope=True, excluded=None, status=state.status,
                                   controls=list(state.controls), operating=list(state.operating),
                                   gap=gap))
    if as_json:
        print_json(rows)
        return 0
    label = _LABEL[framework]
    table = Table(title=f"Criteria in scope ({label} view), judged on week {report['week']} to date",
                  title_justify="left")
    columns = ["criterion", "title"] + ([label] if framework != "soc2" else [])
    columns += ["status", "controls", "gap", "filed from", "records"]
    for column in columns:
        table.add_column(column, justify="right" if column == "records" else "left")
    for row in rows:
        if not row["in_scope"]:
            continue
        cells = [row["id"], row["title"]]
        if framework != "soc2":
            cells.append(", ".join(row["mapped"]) or "-")
        cells += [row["status"], ", ".join(row["controls"]) or "-", row["gap"] or "",
                  ", ".join(row["streams"]) or "-", f"{row['records']:,}"]
        table.add_row(*cells)
    console = Console(width=200)
    console.print(table)
    excluded = [r for r in rows if r["excluded"] is not None]
    if excluded:
        out = Table(title="Excluded from scope", title_justify="left")
        for column in ("criterion", "title", "reason"):
            out.add_column(column)
        for row in excluded:
            out.add_row(row["id"], row["title"], escape(row["excluded"]))
        console.print(out)
    others = sum(1 for r in rows if not r["in_scope"] and r["excluded"] is None)
    console.print(f"{others} criteria of other categories are not in scope "
                  f"([scope] categories = {list(settings.scope.categories)}).", markup=False,
                  highlight=False)
    console.print(_coverage_line(report["coverage"]), highlight=False)
    return 0


def _criterion_row(catalog: Catalog, framework: str, criterion: str, filed: dict[str, list[str]],
                   records: dict[str, int], **fields: Any) -> dict[str, Any]:
    entry = catalog.criteria[criterion]
    return {"id": criterion, "title": entry.title, "mapped": list(entry.mapped(framework)), **fields,
            "streams": filed.get(criterion, []), "records": records.get(criterion, 0)}
