"""Commands over the store and the config: `collect`, `streams` and `controls`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["open_store", "register", "settings_from"]


def register(sub: Any) -> None:
    """Add `collect`, `streams` and `controls` to the command parser."""
    p = sub.add_parser("collect", help="collect once from every enabled stream (or those named)")
    p.add_argument("--stream", action="append", metavar="ID", default=[],
                   help="a stream ID such as okta.system_log; repeatable")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("streams", help="each stream: enabled, schedule, last run, status, cursor")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_streams)

    p = sub.add_parser("controls", help="criteria, their filing and coverage")
    p.add_argument("--framework", choices=("soc2", "iso27001", "nist-csf"), default="soc2")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_controls)


def settings_from(args: argparse.Namespace, default_level: str = "warning") -> Any:
    """Configure logging and load the validated settings named by --config."""
    from collector.config import config_path, load_settings
    from collector.logs import configure_logging

    configure_logging(args.log_level or default_level)
    return load_settings(config_path(args.config))


def open_store(settings: Any) -> Any:
    """Open (and migrate) the configured store; a failure names the key, exit 2."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from collector.errors import ConfigError
    from storage import Store, StoreError

    try:
        return Store.open(settings.storage_url)
    except (StoreError, OSError) as exc:  # OSError: the database's folder cannot be made
        raise ConfigError(str(settings.path), "storage.url", str(exc).splitlines()[0]) from None
    except (ArgumentError, NoSuchModuleError) as exc:  # not a URL SQLAlchemy knows
        raise ConfigError(str(settings.path), "storage.url",
                          f"not a database URL this collector can open: {exc}") from None


def cmd_collect(args: argparse.Namespace) -> int:
    """`collector collect`: exit 0 when every stream succeeded, 1 when any failed or was partial."""
    from rich.console import Console
    from rich.table import Table

    from collector.collect import collect, plan_streams

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

    def on_batch(report: Any) -> None:
        counts[report.stream] = counts.get(report.stream, 0) + report.items
        if status is not None:
            status.update(f"{report.stream}: {counts[report.stream]:,} items")

    def on_start(item: Any) -> None:
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
    for column in ("stream", "status", "items", "new records", "failures", "seconds", "error"):
        table.add_column(column, justify="right" if column in ("items", "new records",
                                                                "failures", "seconds") else "left")
    for r in results:
        table.add_row(r.stream, r.status, f"{r.items:,}", f"{r.records_new:,}", str(r.failures),
                      f"{r.seconds:.1f}", (r.error or "")[:120])
    Console(width=160).print(table)
    return 0 if all(r.status == "ok" for r in results) else 1


def cmd_streams(args: argparse.Namespace) -> int:
    """`collector streams`: the configured streams with their last run and record counts."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from collector.durations import format_duration
    from connectors.sdk.registry import discover

    settings = settings_from(args)
    store = open_store(settings)
    try:
        runs = store.latest_runs()
        counts = store.record_counts()
        rows = []
        for name, connector in sorted(discover().connectors.items()):
            cfg = settings.connectors.get(name)
            for stream_name in connector.stream_names():
                sid = f"{name}.{stream_name}"
                enabled = bool(cfg and cfg.enabled and (not cfg.streams
                                                        or stream_name in cfg.streams))
                if cfg is None and sid not in runs:
                    continue
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
                })
    finally:
        store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
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


def cmd_controls(args: argparse.Namespace) -> int:
    """`collector controls`: criteria with titles, mappings, filed streams and record counts."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from collector.catalog import Catalog
    from collector.digest.scope import enabled_streams, filed_criteria, in_scope_criteria

    settings = settings_from(args)
    catalog = Catalog.builtin()
    streams = enabled_streams(settings)
    filed = filed_criteria(settings, streams, catalog)
    in_scope = set(in_scope_criteria(settings, streams, catalog))
    store = open_store(settings)
    try:
        counts = store.filing_counts()
    finally:
        store.close()
    rows = []
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
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    label = {"soc2": "SOC 2", "iso27001": "ISO 27001:2022", "nist-csf": "NIST CSF 2.0"}
    table = Table(title=f"Criteria ({label[args.framework]} view)", title_justify="left")
    columns = ["criterion", "title"]
    if args.framework != "soc2":
        columns.append(label[args.framework])
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
