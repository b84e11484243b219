"""One digest run, as the CLI and the daemon's weekly job perform it: build, write, then deliver."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config import Settings
from collector.digest.build import build_digest, scope_from_settings
from collector.digest.deliver import Delivery, check_delivery_config, deliver
from collector.digest.render import write_files
from storage import Store

__all__ = ["DigestRun", "run_digest", "write_digest"]


@dataclass(frozen=True)
class DigestRun:
    """What one digest run produced: the digest, the files written and each delivery's outcome."""

    digest: dict[str, Any]
    paths: dict[str, Path]
    deliveries: list[Delivery]

    @property
    def delivered(self) -> bool:
        """Whether every configured delivery succeeded."""
        return all(d.ok for d in self.deliveries)


def run_digest(settings: Settings, store: Store, *, week: str | None = None,
               out_dir: Path | None = None, now: datetime | None = None,
               env: Mapping[str, str] | None = None, send: bool = True) -> DigestRun:
    """Check people coverage (when ``[people]`` requires something), build the digest of ``week``
    (default: the last complete one), write its three files to ``out_dir`` (default
    ``[digest].out_dir``), then deliver it where configured. A roster that cannot be read is
    said in the digest's ``people.error``; it never stops the digest."""
    if send:
        check_delivery_config(settings)
    now = now or datetime.now(UTC)
    scope = scope_from_settings(settings, week, now)
    people_error = _check_people(settings, store, now)
    digest = build_digest(store, scope, now)
    if people_error is not None:
        digest["people"]["error"] = people_error
    paths = write_files(digest, out_dir or settings.resolve(settings.digest.out_dir))
    results = deliver(settings, store, digest, paths, now, os.environ if env is None else env) \
        if send else []
    return DigestRun(digest, paths, results)


def _check_people(settings: Settings, store: Store, now: datetime) -> str | None:
    """A fresh people-coverage read for the digest to show; the reason when none could be made."""
    from collector.errors import CollectorError
    from collector.manual.people import check_people

    try:
        check_people(settings, store, now=now)
    except CollectorError as exc:
        return str(exc)
    return None


def write_digest(settings: Settings, store: Store, week: str | None = None) -> Path:
    """The daemon's weekly job: write and deliver the digest of ``week`` (None: the last complete
    ISO week in ``[windows].timezone``); return the path of ``digest-<week>.json``. A failed
    delivery is logged and recorded (reported in the next digest), not raised."""
    return run_digest(settings, store, week=week).paths["json"]
