"""`collector intake`: one pass over the intake folder, as the daemon makes every `[intake] interval`."""

from __future__ import annotations

import argparse
import sys

from collector.cli._common import settings_from

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the folder is ``[intake] folder``."""
    del parser


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every ready file was stored, 1 when one was rejected or could not be stored."""
    from collector.cli.evidence import report_people
    from collector.config import open_store
    from collector.errors import ConfigError
    from collector.manual import intake_pass, open_files

    settings = settings_from(args)
    if not settings.intake.folder:
        raise ConfigError(str(settings.path), "intake.folder", "not set: name the folder to watch")
    blobs = open_files(settings)
    store = open_store(settings)
    try:
        report = intake_pass(settings, store, blobs)
        if report.busy:
            print("collector: the intake folder is being processed by another process (the daemon?)",
                  file=sys.stderr)
            return 1
        for name in report.stored:
            print(f"stored     {name}")
        for name in report.already:
            print(f"already    {name}")
        for name, reason in report.rejected.items():
            print(f"rejected   {name}: {reason}")
        for name, reason in report.failed.items():
            print(f"failed     {name}: {reason} (left in place)")
        for name in report.waiting:
            print(f"waiting    {name} (no sidecar yet, or still being written)")
        if report.stored or report.attestations:
            report_people(settings, store)
    finally:
        store.close()
    return 1 if report.rejected or report.failed else 0
