"""Access reviews: a campaign per system and quarter, its population worksheet, decisions, progress."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from collector.config import Settings
from collector.errors import InputError, open_input
from collector.identities.accounts import ACCOUNT_STREAMS, Account, read_accounts
from collector.identities.decisions import REVIEW_TYPE, Decision, read_decisions, revocations
from collector.identities.link import link_accounts
from collector.manual.documents import (
    AddedDocument,
    DocumentFacts,
    Period,
    add_document,
    controls_requiring,
)
from collector.manual.streams import DOCUMENTS, AttestationStream, criteria_of, prepared_item, store_items
from collector.records import format_ts
from collector.windows import parse_window, window_containing
from connectors.sdk.items import Normalised
from storage import Store
from storage.blobs import BlobStore
from storage.identity_queries import bodies_with_prefix

__all__ = [
    "COLUMNS",
    "TITLE",
    "Campaign",
    "ImportedDecisions",
    "StartedCampaign",
    "campaign_status",
    "import_decisions",
    "start_review",
]

COLUMNS = ("campaign", "system", "account", "person", "link", "access", "last_activity", "decision",
           "comment")
"""The worksheet's header: the population's columns, then the two the reviewer fills in."""
_DECISIONS = ("keep", "revoke")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/.]+(\.[^@\s/.]+)+")
_MAX_COMMENT = 500
TITLE = re.compile(r"access review ((okta|github|aws)-(\d{4}-Q[1-4])) population \((\d+) accounts\)")
"""A campaign worksheet's document title: its campaign, system, quarter and population."""


def _title(campaign: str, population: int) -> str:
    # The count in the title lets the digest show a campaign's progress without reading the blob.
    return f"access review {campaign} population ({population} accounts)"


def _row_account(account: Account) -> str:
    """The worksheet's ``account`` cell: unique within the system (Okta login, ``org/login``, ARN)."""
    return account.name if account.system == "okta" else account.key


@dataclass(frozen=True, slots=True)
class Campaign:
    """A started campaign: its id (``<system>-<quarter>``), its worksheet document and the rows of
    its population by account, each with the account's source key and linked person."""

    id: str
    system: str
    quarter: str
    started_at: str
    document: str
    file_sha256: str
    rows: dict[str, dict[str, str]]


def _quarter(settings: Settings, quarter: str | None, now: datetime) -> tuple[str, Period]:
    window = (parse_window(quarter, settings.windows.timezone) if quarter
              else window_containing(now, "quarter", settings.windows.timezone))
    if window.period != "quarter":
        raise InputError(f"--quarter {quarter}: expected a quarter such as 2026-Q4")
    return window.id, Period(format_ts(window.start), format_ts(window.end), window.start, window.end)


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """A worksheet cell a spreadsheet shows as text: vendor text starting like a formula (an Okta
    login ``=2+3@acme.example``) gets a leading ``'`` (OWASP's CSV-injection defence)."""
    return "'" + value if value.startswith(_FORMULA) else value


def _uncell(value: str) -> str:
    """The value `_cell` quoted, whether the file kept the ``'`` or a spreadsheet dropped it."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA) else value


def _worksheet(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue().encode()


def _read_csv(data: bytes, name: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row by lowercased header) for every non-blank row; `InputError` on a bad file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in ("campaign", "account", "decision", "comment") if c not in header]
        if missing:
            raise InputError(f"{name}: line 1: missing column(s) {', '.join(missing)} (the worksheet's "
                             f"header is {','.join(COLUMNS)})")
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if any(cell.strip() for cell in row):
                yield line, {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: not valid CSV: {exc}") from None


def _campaigns(store: Store, blobs: BlobStore) -> dict[str, Campaign]:
    """Every started campaign, from its stored worksheet document (the first one stored wins)."""
    found: dict[str, Campaign] = {}
    with store.engine.connect() as conn:
        documents = bodies_with_prefix(conn, DOCUMENTS, f"{REVIEW_TYPE}/")
    for record_id, _, text in documents:
        body = orjson.loads(text)
        title = str(body["data"].get("title") or "")
        match = TITLE.fullmatch(title)
        if match is None or match.group(1) in found:
            continue
        sha = str(body["data"]["file_sha256"])
        with blobs.open(sha) as stream:
            data = stream.read()
        rows = {}
        for _, cells in _read_csv(data, f"worksheet {sha}"):
            row = {k: _uncell(v) for k, v in cells.items()}
            rows[row["account"]] = row
        found[match.group(1)] = Campaign(match.group(1), match.group(2), match.group(3), body["observed_at"],
                                         record_id, sha, rows)
    return found


@dataclass(frozen=True, slots=True)
class StartedCampaign:
    """``review start``: the campaign, its worksheet written to ``path``, and whether this call
    started it (False: it was started before, and its stored worksheet was written again)."""

    campaign: Campaign
    path: Path
    new: bool


def start_review(settings: Settings, store: Store, blobs: BlobStore, system: str, *,
                 quarter: str | None = None, out: Path | None = None,
                 now: datetime | None = None) -> StartedCampaign:
    """Write the population of ``system``'s newest stored read as the campaign's worksheet (CSV:
    campaign, system, account, person, link, access, last activity, then empty decision and
    comment) and store it as an ``access_review`` document of the controls requiring that type.

    A campaign is started once: starting it again writes its stored worksheet again. Raises
    `InputError` for an unknown system or quarter, a system never read, or a library in which
    no control requires ``access_review``.
    """
    now = now or datetime.now(UTC)
    if system not in ACCOUNT_STREAMS:
        raise InputError(f"--system {system}: expected one of {', '.join(ACCOUNT_STREAMS)}")
    quarter_id, period = _quarter(settings, quarter, now)
    campaign_id = f"{system}-{quarter_id}"
    path = out or Path(f"access-review-{campaign_id}.csv")
    existing = _campaigns(store, blobs).get(campaign_id)
    if existing is not None:
        with blobs.open(existing.file_sha256) as stream:
            path.write_bytes(stream.read())
        return StartedCampaign(existing, path, new=False)
    controls = controls_requiring(settings.library, REVIEW_TYPE)
    if not controls:
        raise InputError(f"no control of {settings.library.source} requires {REVIEW_TYPE!r} "
                         f"(add {{document = \"{REVIEW_TYPE}\"}} to a control's evidence)")
    with store.engine.connect() as conn:
        reads = read_accounts(conn, format_ts(now))
    if reads.read_at.get(system) is None:
        raise InputError(f"--system {system}: no {ACCOUNT_STREAMS[system]} read is stored yet; collect it "
                         f"first (collector collect --stream {ACCOUNT_STREAMS[system]})")
    directory = link_accounts(reads, settings.identities)
    rows = []
    for link in directory.links():
        account = link.account
        if account.system != system:
            continue
        rows.append({"campaign": campaign_id, "system": system, "account": _row_account(account),
                     "person": link.person or "", "link": link.how, "access": account.access,
                     "last_activity": account.last_activity or "", "decision": "", "comment": ""})
    rows.sort(key=lambda r: r["account"])
    path.write_bytes(_worksheet(rows))
    facts = DocumentFacts(REVIEW_TYPE, controls, title=_title(campaign_id, len(rows)), period=period,
                          observed_at=now)
    added = add_document(settings, store, blobs, path, facts, now=now,
                         display_name=f"access-review-{campaign_id}.csv")
    campaign = Campaign(campaign_id, system, quarter_id, format_ts(now), added.record_id, added.sha256,
                        {r["account"]: r for r in rows})
    return StartedCampaign(campaign, path, new=added.new)


@dataclass(frozen=True, slots=True)
class ImportedDecisions:
    """``review import``: the decision file stored as a document and the decisions stored."""

    document: AddedDocument
    keep: int
    revoke: int


def import_decisions(settings: Settings, store: Store, blobs: BlobStore, path: Path, reviewer: str, *,
                     now: datetime | None = None) -> ImportedDecisions:
    """Turn each decided row (``keep`` or ``revoke``, with a comment) of a filled-in worksheet into
    an ``access_review`` attestation by ``reviewer``, after storing the file as a document.

    Every row is checked first; the first bad one is an `InputError` naming the file and line
    and nothing is stored: an unknown campaign, an account not in the campaign's population, a
    decision other than keep/revoke, or a second decision for the same row (in the file, or
    already stored by anyone).
    """
    now = now or datetime.now(UTC)
    who = reviewer.strip().lower()
    if not _EMAIL.fullmatch(who):
        raise InputError(f"--reviewer {reviewer!r}: expected the reviewer's email address")
    with open_input(path) as stream:
        data = stream.read()
    campaigns = _campaigns(store, blobs)
    with store.engine.connect() as conn:
        stored = {d.row: d for d in read_decisions(conn)}
        reads = read_accounts(conn)
    okta_ids = {a.name: a.key for a in reads.accounts.get("okta", ())}
    decided: list[tuple[int, Campaign, dict[str, str], str, str]] = []
    first_line: dict[str, int] = {}
    for line, row in _read_csv(data, str(path)):
        decision = row.get("decision", "").lower()
        if not decision:
            continue
        where = f"{path}: line {line}"
        if decision not in _DECISIONS:
            raise InputError(f"{where}: decision {row['decision']!r} is not keep or revoke")
        campaign = campaigns.get(row.get("campaign", ""))
        if campaign is None:
            raise InputError(f"{where}: campaign {row.get('campaign', '')!r} was never started "
                             "(collector review start)")
        population_row = campaign.rows.get(_uncell(row.get("account", "")))
        if population_row is None:
            raise InputError(f"{where}: account {row.get('account', '')!r} is not in the population of "
                             f"{campaign.id}")
        key = f"{campaign.id}/{population_row['account']}"
        if key in first_line:
            raise InputError(f"{where}: a second decision for {key} (first on line {first_line[key]})")
        if key in stored:
            earlier = stored[key]
            raise InputError(f"{where}: {key} was already decided ({earlier.decision} by {earlier.reviewer} "
                             f"at {earlier.at})")
        comment = " ".join(row.get("comment", "").split())
        if len(comment) > _MAX_COMMENT or not comment.isprintable():
            raise InputError(f"{where}: comment must be printable text of at most {_MAX_COMMENT} characters")
        first_line[key] = line
        decided.append((line, campaign, population_row, decision, comment))
    if not decided:
        raise InputError(f"{path}: no row has a decision (keep or revoke); nothing to import")
    controls = controls_requiring(settings.library, REVIEW_TYPE)
    ids = sorted({c.id for _, c, _, _, _ in decided})
    facts = DocumentFacts(REVIEW_TYPE, controls, title=f"access review decisions {', '.join(ids)} by {who}",
                          owner=who, approved_by=who, observed_at=now)
    # The bytes parsed above are the bytes stored (the file may change on disk meanwhile).
    with tempfile.TemporaryDirectory(prefix="review-import-") as folder:
        copy = Path(folder) / "decisions.csv"
        copy.write_bytes(data)
        document = add_document(settings, store, blobs, copy, facts, now=now, display_name=path.name)
    criteria = criteria_of(settings.library, controls)
    stamp = format_ts(now)
    items = []
    for line, campaign, population_row, decision, comment in decided:
        account = population_row["account"]
        account_key = okta_ids.get(account, account) if campaign.system == "okta" else account
        body: dict[str, Any] = {
            "type": REVIEW_TYPE, "person": who, "item": f"{campaign.id}/{account}", "at": stamp,
            "campaign": campaign.id, "system": campaign.system, "account": account,
            "account_key": account_key,
            "subject": population_row.get("person") or None, "decision": decision, "comment": comment,
            "worksheet_sha256": campaign.file_sha256, "file_sha256": document.sha256, "line": line,
        }
        items.append(prepared_item(f"{REVIEW_TYPE}/{who}/{campaign.id}/{account}", now, Normalised(
            kind="attestation", actor=who, source_url=None, data=body, criteria=criteria)))
    store_items(settings, store, AttestationStream(items))
    keep = sum(1 for d in decided if d[3] == "keep")
    return ImportedDecisions(document, keep, len(decided) - keep)


def campaign_status(settings: Settings, store: Store, blobs: BlobStore, *,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """Each started campaign's progress, oldest first: population, decided, keep, revoke, and its
    revocations done, pending and overdue (against the newest stored reads)."""
    stamp = format_ts(now or datetime.now(UTC))
    campaigns = _campaigns(store, blobs)
    with store.engine.connect() as conn:
        decisions = read_decisions(conn, stamp)
        reads = read_accounts(conn, stamp)
    by_campaign: dict[str, list[Decision]] = {}
    for decision in decisions:
        by_campaign.setdefault(decision.campaign, []).append(decision)
    states = {r.decision.record_id: r.state
              for r in revocations(decisions, reads, settings.identities.revoke_grace)}
    out = []
    for campaign in sorted(campaigns.values(), key=lambda c: (c.started_at, c.id)):
        mine = by_campaign.get(campaign.id, [])
        revoke = [d for d in mine if d.decision == "revoke"]
        out.append({
            "campaign": campaign.id, "system": campaign.system, "quarter": campaign.quarter,
            "started_at": campaign.started_at, "worksheet_sha256": campaign.file_sha256,
            "population": len(campaign.rows), "decided": len(mine), "keep": len(mine) - len(revoke),
            "revoke": len(revoke),
            "revocations": {s: sum(1 for d in revoke if states.get(d.record_id) == s)
                            for s in ("done", "pending", "overdue")},
        })
    return out
