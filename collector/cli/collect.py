"""`collector collect`: one collection of every enabled stream (or those named); exit 1 if any failed."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from collector.cli._common import settings_from

if TYPE_CHECKING:
    from collector.collect import PlannedStream
    from collector.pipeline import BatchReport

__all__ = ["add_arguments", "run"]

_NUMERIC = ("items", "new records", "failures", "seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--stream ID``, repeatable."""
    parser.add_argument("--stream", action="append", metavar="ID", default=[],
                        help="a stream ID such as okta.system_log; repeatable")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every stream succeeded, 1 when any failed or was partial."""
    from rich.console import Console
    from rich.table import Table

    from collector.collect import collect, plan_streams
    from collector.config import open_store

    settings = settings_from(args)
    planned = plan_streams(settings, args.stream)
    if not planned:
        print("collector: no streams enabled; add a [connectors.<name>] section to "
              f"{settings.path}", file=sys.stderr)
        return 0
    store = open_store(settings)
    err = Console(stderr=True)
    counts: dict[str, int] = {}
    status = err.status("starting") if err.is_terminal else None
    if status is not None:
        status.start()

    def on_batch(report: BatchReport) -> None:
        counts[report.stream] = counts.get(report.stream, 0) + report.items
        if status is not None:
            status.update(f"{report.stream}: {counts[report.stream]:,} items")

    def on_start(item: PlannedStream) -> None:
        if status is not None:
            status.update(f"{item.id}: starting")
        else:
            print(f"collecting {item.id} ...", file=sys.stderr, flush=True)

    try:
        results = collect(settings, store, args.stream, on_batch=on_batch, on_start=on_start)
    finally:
        if status is not None:
            status.stop()
        store.close()
    table = Table(title="Collection", title_justify="left")
    for column in ("stream", "status", *_NUMERIC, "error"):
        table.add_column(column, justify="right" if column in _NUMERIC else "left")
    for r in results:
        table.add_row(r.stream, r.status, f"{r.items:,}", f"{r.records_new:,}", str(r.failures),
                      f"{r.seconds:.1f}", r.error or "")  # wrapped at words, never cut
    Console(width=160).print(table)
    return 0 if all(r.status == "ok" for r in results) else 1
