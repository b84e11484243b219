"""`collector identities`: people with their accounts per system, unlinked accounts, how each was linked."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli._common import add_json_option, print_json, settings_from

__all__ = ["add_arguments", "run"]

_SYSTEMS = ("okta", "github", "aws")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``."""
    add_json_option(parser)


def _cell(accounts: list[dict[str, Any]], system: str) -> str:
    from rich.markup import escape

    return "\n".join(escape(f"{a['account']} ({a['how']}{'' if a['active'] else ', inactive'})")
                     for a in accounts if a["system"] == system) or "-"


def run(args: argparse.Namespace) -> int:
    """Print the directory the newest stored reads make (no vendor call); exit 0."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from collector.config import open_store
    from collector.identities import link_accounts, read_accounts
    from collector.identities.report import directory_report

    settings = settings_from(args)
    store = open_store(settings)
    try:
        with store.engine.connect() as conn:
            reads = read_accounts(conn)
    finally:
        store.close()
    report = directory_report(link_accounts(reads, settings.identities))
    if args.json:
        print_json(report)
        return 0
    console = Console(width=160)
    reads_text = ", ".join(f"{s} {report['reads'].get(s) or 'never read'}" for s in _SYSTEMS)
    table = Table(title=f"People ({reads_text})", title_justify="left")
    for column in ("person", "left Okta", *_SYSTEMS):
        table.add_column(column)
    for person in report["people"]:
        table.add_row(escape(person["email"]), person["left_at"] or "-",
                      *(_cell(person["accounts"], s) for s in _SYSTEMS))
    console.print(table)
    unlinked = Table(title="Accounts linked to no person", title_justify="left")
    for column in ("system", "account", "active", "why"):
        unlinked.add_column(column)
    for account in report["unlinked"]:
        unlinked.add_row(account["system"], escape(account["account"]), "yes" if account["active"] else "no",
                         escape(account["why"]))
    console.print(unlinked if report["unlinked"] else "accounts linked to no person: none")
    services = ", ".join(escape(f"{a['system']}:{a['account']}") for a in report["service_accounts"])
    console.print(f"service accounts: {services or 'none'}")
    return 0
