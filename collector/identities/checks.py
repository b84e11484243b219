"""The derived identity checks (offboarding, orphan accounts, overdue revocations) from stored state only."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog

from collector.catalog import Catalog, Filing
from collector.config import Settings
from collector.durations import format_duration
from collector.identities.accounts import ACCOUNT_STREAMS, Reads, read_accounts
from collector.identities.decisions import Decision, read_decisions, revocations
from collector.identities.link import Directory, link_accounts
from collector.manual.streams import DerivedStream
from collector.pipeline import Pipeline, RunResult
from collector.records import format_ts, parse_ts
from connectors.sdk.base import ConnectorConfig
from connectors.sdk.items import Normalised
from storage import Store

__all__ = [
    "CHECK_INPUTS",
    "CRITERIA",
    "OFFBOARDING",
    "ORPHANS",
    "REVOCATIONS",
    "offboarding_findings",
    "orphan_findings",
    "revocation_findings",
    "run_identity_checks",
]

log = structlog.get_logger("collector.identities")

OFFBOARDING = "identity.offboarding"
ORPHANS = "identity.orphans"
REVOCATIONS = "identity.revocations"
CRITERIA = ("CC6.2", "CC6.3")
"""Every identity finding is filed under CC6.2 (accounts registered and removed) and CC6.3
(access granted, changed and removed on authorisation)."""

CHECK_INPUTS = frozenset(ACCOUNT_STREAMS.values())
"""A collection of any of these streams is followed by the identity checks."""

Finding = tuple[str, Normalised]


def _finding(actor: str | None, data: dict[str, Any], exception: str | None = None) -> Normalised:
    return Normalised(kind="account", actor=actor, source_url=None, data=data, exception=exception,
                      criteria=CRITERIA)


def offboarding_findings(directory: Directory, settings: Settings) -> Iterator[Finding]:
    """One exception per GitHub or AWS account still active in its system's newest read made
    more than ``offboarding_grace`` after its person was deactivated or suspended in Okta; a
    record (status ok, ``state`` ``within_grace``) per account still active within the grace, so
    the digest can say where someone who just left still has access; then one summary (status
    ok) with the counts, so a check that finds nothing is on record too."""
    grace = settings.identities.offboarding_grace
    grace_text = format_duration(grace)
    departed = within = 0
    late = 0
    for person in directory.people.values():
        if person.left_at is None:
            continue
        departed += 1
        deadline = parse_ts(person.left_at) + grace
        for link in person.links:
            account = link.account
            if account.system == "okta" or not account.active:
                continue
            data = {"person": person.email, "system": account.system, "account": account.label,
                    "account_key": account.key, "link": link.how, "deactivated_at": person.left_at,
                    "grace": grace_text, "read_at": account.read_at, "access": account.access}
            key = f"{account.system}/{account.key}"
            if parse_ts(account.read_at) <= deadline:
                within += 1
                yield key, _finding(person.email, {**data, "state": "within_grace"})
                continue
            late += 1
            reason = (f"{account.system} account {account.label} still active more than {grace_text} "
                      f"after {person.email} was deactivated in Okta ({person.left_at})")
            yield key, _finding(person.email, {**data, "state": "overdue"}, reason)
    yield "summary", _finding(None, {
        "grace": grace_text, "departed": departed, "active_within_grace": within,
        "active_after_grace": late, "reads": dict(directory.reads.read_at)})


def orphan_findings(directory: Directory, settings: Settings) -> Iterator[Finding]:
    """One exception per active GitHub or AWS account linked to no person that is not a declared
    service account, then one summary (status ok) with the counts."""
    orphans = 0
    for link in directory.unlinked:
        account = link.account
        if account.system == "okta" or not account.active:
            continue
        orphans += 1
        yield f"{account.system}/{account.key}", _finding(account.name, {
            "system": account.system, "account": account.label, "account_key": account.key,
            "email": account.email, "why": link.why, "read_at": account.read_at, "access": account.access,
        }, f"{account.system} account {account.label} links to no person and is not a declared "
           f"service account: {link.why}")
    linked = sum(1 for p in directory.people.values() for link in p.links if link.account.system != "okta")
    yield "summary", _finding(None, {
        "accounts": sum(len(directory.reads.accounts.get(s, ())) for s in ("github", "aws")),
        "linked": linked, "service_accounts": len(directory.service), "orphans": orphans,
        "reads": {s: directory.reads.read_at.get(s) for s in ("github", "aws")}})


def revocation_findings(reads: Reads, decisions: Iterable[Decision], settings: Settings) -> Iterator[Finding]:
    """Per ``revoke`` decision not yet carried out: an exception when overdue (still active in a
    read made more than ``revoke_grace`` after the decision), a record (status ok) while pending;
    then one summary with the counts (done ones are counted, the account streams' reads show them)."""
    grace = settings.identities.revoke_grace
    grace_text = format_duration(grace)
    counts = {"done": 0, "pending": 0, "overdue": 0}
    for rev in revocations(decisions, reads, grace):
        counts[rev.state] += 1
        if rev.state == "done":
            continue
        d = rev.decision
        reason = None
        if rev.state == "overdue":
            reason = (f"{d.system} account {d.account} still active more than {grace_text} after "
                      f"{d.reviewer} decided to revoke it in review {d.campaign} ({d.at})")
        yield d.row, _finding(d.subject, {
            "campaign": d.campaign, "system": d.system, "account": d.account, "account_key": d.account_key,
            "person": d.subject, "reviewer": d.reviewer, "decided_at": d.at, "decision": d.record_id,
            "grace": grace_text, "state": rev.state, "read_at": rev.read_at}, reason)
    yield "summary", _finding(None, {"grace": grace_text, "revokes": sum(counts.values()), **counts,
                                     "reads": dict(reads.read_at)})


class _CheckStream(DerivedStream):
    """A derived identity check: its findings as of the run's ceiling, one read each run."""

    derived_from = "identity"
    kinds = frozenset({"account"})
    name: ClassVar[str]


class OffboardingStream(_CheckStream):
    """``identity.offboarding``."""

    name = "offboarding"


class OrphansStream(_CheckStream):
    """``identity.orphans``."""

    name = "orphans"


class RevocationsStream(_CheckStream):
    """``identity.revocations``."""

    name = "revocations"


def run_identity_checks(settings: Settings, store: Store, collected: Collection[str] | None = None, *,
                        now: datetime | None = None) -> list[RunResult]:
    """Run each identity check whose inputs are stored, as its own run of its own stream, when
    ``collected`` names an input stream (None: run them regardless). Reads only stored records.

    A check whose inputs were never read is skipped (offboarding needs okta.users and a GitHub
    or AWS read; orphans a GitHub or AWS read; revocations a stored ``revoke`` decision). A
    check that fails is a failed run in the list; a store that cannot be read is logged and
    no check runs (the collection that triggered them has stored its records already).
    """
    if collected is not None and not CHECK_INPUTS.intersection(collected):
        return []
    at = now or datetime.now(UTC)
    stamp = format_ts(at)
    try:
        with store.engine.connect() as conn:
            reads = read_accounts(conn, stamp)
            decisions = read_decisions(conn, stamp)
    except Exception as exc:  # the store went away between the collection and its checks
        log.error("identity_checks_failed", error_class=type(exc).__name__, error=str(exc)[:300])
        return []
    streams: list[_CheckStream] = []
    has_accounts = any(reads.read_at.get(s) for s in ("github", "aws"))
    if has_accounts:
        directory = link_accounts(reads, settings.identities)
        if reads.read_at.get("okta"):
            streams.append(OffboardingStream(lambda _: offboarding_findings(directory, settings)))
        streams.append(OrphansStream(lambda _: orphan_findings(directory, settings)))
    if any(d.decision == "revoke" for d in decisions):
        streams.append(RevocationsStream(lambda _: revocation_findings(reads, decisions, settings)))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), settings.filing), batch_size=2**31,
                        flush_seconds=float("inf"), clock=lambda: at)
    results = [pipeline.run(stream, ConnectorConfig()) for stream in streams]
    for result in results:
        log.info("identity_checked", stream=result.stream, status=result.status, records=result.records_new)
    return results
