"""Access-review decisions as stored attestations, and where each revocation stands."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import orjson
from sqlalchemy import Connection

from collector.identities.accounts import Reads
from collector.manual.streams import ATTESTATIONS
from collector.records import parse_ts
from storage.identity_queries import bodies_with_prefix

__all__ = ["REVIEW_TYPE", "Decision", "Revocation", "read_decisions", "revocations"]

REVIEW_TYPE = "access_review"
"""The document type of a worksheet and of a decision file, and the attestation type of a decision."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One reviewer's decision on one row of a campaign's population: ``keep`` or ``revoke``."""

    campaign: str
    system: str
    account_key: str
    account: str
    subject: str | None
    decision: str
    comment: str
    reviewer: str
    at: str
    record_id: str

    @property
    def row(self) -> str:
        """``<campaign>/<account>``: the worksheet row decided (one decision per row, ever)."""
        return f"{self.campaign}/{self.account}"


def read_decisions(conn: Connection, before: str | None = None) -> list[Decision]:
    """Every stored access-review decision (observed at or before ``before``), oldest first."""
    found = []
    for record_id, _, body in bodies_with_prefix(conn, ATTESTATIONS, f"{REVIEW_TYPE}/", before):
        data = orjson.loads(body).get("data") or {}
        if not isinstance(data.get("campaign"), str) or data.get("decision") not in ("keep", "revoke"):
            continue  # an access_review attestation imported by other means: not a campaign row
        found.append(Decision(data["campaign"], str(data.get("system")), str(data.get("account_key")),
                              str(data.get("account")), data.get("subject"), data["decision"],
                              str(data.get("comment") or ""), str(data.get("person")), str(data.get("at")),
                              record_id))
    return found


@dataclass(frozen=True, slots=True)
class Revocation:
    """A ``revoke`` decision and where it stands in the newest read of its system: ``done`` (the
    account is gone or cannot get in), ``pending`` (still active, within ``revoke_grace`` or not
    read since the decision) or ``overdue`` (still active in a read made later than the grace)."""

    decision: Decision
    state: str
    read_at: str | None


def revocations(decisions: Iterable[Decision], reads: Reads, grace: timedelta) -> list[Revocation]:
    """Where each ``revoke`` decision stands (see `Revocation`), in decision order."""
    by_key = {(a.system, a.key): a for a in reads.all()}
    out = []
    for decision in decisions:
        if decision.decision != "revoke":
            continue
        read_at = reads.read_at.get(decision.system)
        account = by_key.get((decision.system, decision.account_key))
        if read_at is None or read_at <= decision.at:
            state = "pending"  # no read since the decision: nothing is known yet
        elif account is None or not account.active:
            state = "done"
        elif parse_ts(read_at) > parse_ts(decision.at) + grace:
            state = "overdue"
        else:
            state = "pending"
        out.append(Revocation(decision, state, read_at))
    return out
