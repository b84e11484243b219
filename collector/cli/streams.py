"""`collector streams`: each stream: enabled, interval, last run, cursor, records, and why it cannot run."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from collector.cli._common import add_json_option, print_json, settings_from

if TYPE_CHECKING:
    from collector.config import Settings
    from storage import Store

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``."""
    add_json_option(parser)


def _rows(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """The streams of every configured connector, and of any other connector that has runs."""
    from collector.collect import secret_problems
    from collector.durations import format_duration

    runs = store.latest_runs()
    counts = store.record_counts()
    registry = settings.registry
    # A connector that is not configured is imported only when its streams have runs to show.
    names = sorted(n for n in {*settings.connectors, *(sid.partition(".")[0] for sid in runs)}
                   if n in registry)
    rows = []
    for name in names:
        cfg = settings.connectors.get(name)
        # What stops this connector's enabled streams from running, checked without the network.
        blockers = [f"{p.key}: {p.problem}" for p in secret_problems(settings, name)] if cfg else []
        for stream_name in registry.stream_names(name):
            sid = f"{name}.{stream_name}"
            if cfg is None and sid not in runs:
                continue
            enabled = bool(cfg and cfg.enabled and (not cfg.streams or stream_name in cfg.streams))
            run = runs.get(sid)
            rows.append({
                "id": sid,
                "enabled": enabled,
                "interval": format_duration(cfg.interval) if cfg else None,
                "last_run_at": run.started_at if run else None,
                "status": run.status if run else "never_run",
                "error": run.error if run else None,
                "cursor": store.read_cursor(sid),
                "records": counts.get(sid, 0),
                "cannot_run": blockers if enabled else [],
            })
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the configured streams with their last run and record counts, and one warning line
    on stderr for each reason an enabled stream cannot run (a secret's variable unset), and for a
    missing sealing key; exit 0."""
    from rich.console import Console
    from rich.table import Table

    from collector.config import open_store

    settings = settings_from(args)
    store = open_store(settings)
    try:
        rows = _rows(settings, store)
    finally:
        store.close()
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        for blocker in row["cannot_run"]:
            print(f"collector: warning: {row['id']} cannot run: {blocker}", file=sys.stderr)
    key = settings.resolve(settings.signing.key_file)
    if not key.is_file():
        print(f"collector: warning: signing.key_file: {key} does not exist: no window can be sealed "
              "(`collector keys init` creates it)", file=sys.stderr)
    table = Table(title=f"Streams ({settings.path})", title_justify="left")
    for column in ("stream", "enabled", "every", "last run", "status", "records", "cursor"):
        table.add_column(column, justify="right" if column == "records" else "left")
    for row in rows:
        cursor = row["cursor"] or ""
        table.add_row(row["id"], "yes" if row["enabled"] else "no", row["interval"] or "-",
                      row["last_run_at"] or "-", row["status"], f"{row['records']:,}",
                      cursor if len(cursor) <= 40 else cursor[:37] + "...")
    Console(width=160).print(table)
    if not rows:
        print("no connectors configured", file=sys.stderr)
    return 0
