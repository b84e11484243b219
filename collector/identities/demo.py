"""The demo's access review: an AWS campaign started 10 days ago whose one revocation is overdue today."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.catalog import Catalog, Filing
from collector.collect import open_connector
from collector.config import Settings
from collector.identities.checks import run_identity_checks
from collector.identities.review import StartedCampaign, import_decisions, start_review
from collector.pipeline import Pipeline
from storage import Store
from storage.blobs import BlobStore

__all__ = ["REVIEW_AGE", "DemoReview", "fill_in", "seed_review"]

REVIEW_AGE = timedelta(days=10)
"""How long ago the demo's review was made: past the default 7d revoke_grace."""
_DECISIONS = {"alice": ("keep", "admin on call"), "bob": ("revoke", "moved to sales; no AWS need"),
              "ci-deploy": ("keep", "deploy pipeline"), "svc-deploy": ("keep", "deploy pipeline")}


@dataclass(frozen=True, slots=True)
class DemoReview:
    """The campaign started and how many decisions were stored."""

    started: StartedCampaign
    decisions: int


def seed_review(settings: Settings, store: Store, blobs: BlobStore, folder: Path,
                now: datetime) -> DemoReview:
    """Read aws.iam_users as of ``now - REVIEW_AGE`` (the fake's accounts have not changed since),
    start that quarter's AWS review on it, decide keep for alice and the service users and revoke
    for bob (whose IAM user stays), then run the identity checks as of ``now``: bob's revocation
    is overdue. Dennis Ritchie's row is left undecided, so the campaign shows as in progress."""
    then = now - REVIEW_AGE
    connector = open_connector(settings, "aws")
    try:
        pipeline = Pipeline(store, Filing(Catalog.builtin(), settings.filing), clock=lambda: then)
        pipeline.run(connector.stream("iam_users"), connector.config)
    finally:
        connector.close()
    folder.mkdir(parents=True, exist_ok=True)
    sheet = folder / "access-review-aws.csv"
    started = start_review(settings, store, blobs, "aws", out=sheet, now=then + timedelta(hours=1))
    decided = fill_in(sheet, lambda account: _DECISIONS.get(account.rpartition("/")[2], ("", "")),
                      folder / "access-review-aws-decided.csv")
    done = import_decisions(settings, store, blobs, decided, "security-lead@example.com",
                            now=then + timedelta(hours=2))
    # The collection before stamped its reads with the real clock, which may be past ``now``.
    run_identity_checks(settings, store, now=max(now, datetime.now(UTC)))
    return DemoReview(started, done.keep + done.revoke)


def fill_in(sheet: Path, decide: Callable[[str], tuple[str, str]], out: Path) -> Path:
    """A reviewer's pass over a worksheet, as a spreadsheet saves it: each row's decision and
    comment from ``decide(account)`` ("" leaves the row undecided), written to ``out``."""
    rows = list(csv.DictReader(io.StringIO(sheet.read_text())))
    for row in rows:
        row["decision"], row["comment"] = decide(row["account"])
    text = io.StringIO()
    writer = csv.DictWriter(text, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out.write_text(text.getvalue())
    return out
