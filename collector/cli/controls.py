"""`collector controls`: the criteria with titles, framework mappings, filed streams and record counts."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli._common import add_json_option, print_json, settings_from

__all__ = ["add_arguments", "run"]

_LABEL = {"soc2": "SOC 2", "iso27001": "ISO 27001:2022", "nist-csf": "NIST CSF 2.0"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--framework`` and ``--json``."""
    parser.add_argument("--framework", choices=tuple(_LABEL), default="soc2")
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    """Print every criterion of the catalog with its filing and counts; exit 0."""
    from rich.console import Console
    from rich.table import Table

    from collector.catalog import Catalog
    from collector.collect import plan_streams
    from collector.config import open_store
    from collector.digest.scope import filed_criteria, in_scope_criteria

    settings = settings_from(args)
    catalog = Catalog.builtin()
    streams = plan_streams(settings)
    filed = filed_criteria(settings, streams, catalog)
    in_scope = set(in_scope_criteria(settings, streams, catalog))
    store = open_store(settings)
    try:
        counts = store.filing_counts()
    finally:
        store.close()
    rows: list[dict[str, Any]] = []
    for criterion in catalog.criteria.values():
        rows.append({
            "id": criterion.id,
            "title": criterion.title,
            "mapped": list(criterion.mapped(args.framework)),
            "in_scope": criterion.id in in_scope,
            "streams": filed.get(criterion.id, []),
            "records": counts.get(criterion.id, 0),
        })
    if args.json:
        print_json(rows)
        return 0
    label = _LABEL[args.framework]
    table = Table(title=f"Criteria ({label} view)", title_justify="left")
    columns = ["criterion", "title"]
    if args.framework != "soc2":
        columns.append(label)
    columns += ["in scope", "filed from", "records"]
    for column in columns:
        table.add_column(column, justify="right" if column == "records" else "left")
    for row in rows:
        cells = [row["id"], row["title"]]
        if args.framework != "soc2":
            cells.append(", ".join(row["mapped"]) or "-")
        cells += ["yes" if row["in_scope"] else "", ", ".join(row["streams"]) or "-",
                  f"{row['records']:,}"]
        table.add_row(*cells)
    Console(width=200).print(table)
    return 0
