"""Status of each control, each criterion in scope, coverage and owners' actions: pure functions
over per-control aggregates the caller reads from the store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from collector.controls.library import Control, ControlLibrary
from collector.controls.scope import Exclusion, Scope

__all__ = [
    "ControlEvidence",
    "ControlState",
    "ControlStatus",
    "Coverage",
    "CriterionState",
    "CriterionStatus",
    "DueDocument",
    "OwnerAction",
    "OwnerActions",
    "PairTotals",
    "aggregate",
    "evaluate_control",
    "evaluate_controls",
    "evaluate_coverage",
    "evaluate_criteria",
    "owner_actions",
    "type1_gaps",
]

def _when(moment: datetime) -> str:
    """A time as the digest shows it elsewhere: RFC 3339 in UTC with "Z" (no microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


ControlStatus = Literal["operating", "exceptions", "stale", "no_evidence", "due"]
CriterionStatus = Literal["covered", "exceptions", "no_evidence", "no_control"]


@dataclass(frozen=True, slots=True)
class ControlEvidence:
    """What the store holds for one control, read for a period ending at ``as_of``.

    ``newest_at``: the newest record matched by the control's stream/kind selectors, observed
    at or before ``as_of`` (at any time, not only in the period). ``records`` and
    ``exceptions``: matched records, and those with status ``exception``, observed in the
    period. ``documents``: for each document type, the newest document or attestation of
    that type at or before ``as_of``.
    """

    newest_at: datetime | None = None
    records: int = 0
    exceptions: int = 0
    documents: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PairTotals:
    """Store totals for one (stream, kind) pair, as one grouped query returns them."""

    stream: str
    kind: str
    newest_at: datetime | None
    records: int
    exceptions: int


@dataclass(frozen=True, slots=True)
class DueDocument:
    """A required document type that is missing or older than its cadence at ``as_of``."""

    type: str
    last_at: datetime | None
    every: str

    def as_dict(self) -> dict[str, Any]:
        """``{"type", "last_at" (RFC 3339 or null), "every"}``."""
        return {"type": self.type, "every": self.every,
                "last_at": None if self.last_at is None else self.last_at.isoformat()}


@dataclass(frozen=True, slots=True)
class ControlState:
    """A control's status for a period, the figures behind it, and every problem found
    (``reasons``, most serious first; empty when the control is operating)."""

    control: Control
    status: ControlStatus
    last_evidence_at: datetime | None
    records: int
    exceptions: int
    due: tuple[DueDocument, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CriterionState:
    """A criterion in scope: its status, the controls mapped to it and those operating."""

    id: str
    status: CriterionStatus
    controls: tuple[str, ...]
    operating: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Coverage:
    """Criteria in scope, how many are designed (a control maps to them) and operating (a
    mapped control is operating), ``ratio`` = operating / in_scope to 3 places, exclusions."""

    in_scope: int
    designed: int
    operating: int
    ratio: float
    excluded: tuple[Exclusion, ...]

    def as_dict(self) -> dict[str, Any]:
        """The digest's ``coverage`` object."""
        return {"in_scope": self.in_scope, "designed": self.designed, "operating": self.operating,
                "ratio": self.ratio, "excluded": [e.as_dict() for e in self.excluded]}


@dataclass(frozen=True, slots=True)
class OwnerAction:
    """A control an owner must act on, its status and why."""

    control: str
    title: str
    status: ControlStatus
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OwnerActions:
    """One owner and the controls that need their action (possibly none)."""

    owner: str
    actions: tuple[OwnerAction, ...]


def aggregate(library: ControlLibrary, totals: Iterable[PairTotals],
              documents: Mapping[str, datetime]) -> dict[str, ControlEvidence]:
    """Fold per-(stream, kind) totals and the newest document per type into each control's
    evidence, keyed by control id. A pair counts once per control however many of its
    selectors match it."""
    newest: dict[str, datetime | None] = {c.id: None for c in library.controls}
    records = dict.fromkeys(newest, 0)
    exceptions = dict.fromkeys(newest, 0)
    for pair in totals:
        for control in library.for_record(pair.stream, pair.kind):
            records[control.id] += pair.records
            exceptions[control.id] += pair.exceptions
            current = newest[control.id]
            if pair.newest_at is not None and (current is None or pair.newest_at > current):
                newest[control.id] = pair.newest_at
    return {
        c.id: ControlEvidence(newest[c.id], records[c.id], exceptions[c.id],
                              {t: documents[t] for t, _ in c.documents if t in documents})
        for c in library.controls
    }


def evaluate_control(control: Control, evidence: ControlEvidence, as_of: datetime) -> ControlState:
    """The control's status at ``as_of``; the first of these that holds wins:

    1. ``exceptions``: at least one exception record in the period (a control failing is the
       most serious finding, whatever else is true);
    2. ``no_evidence``: nothing shows the control operating: with stream/kind selectors, no
       matching record at or before ``as_of``; with document selectors only, no document of
       any of its types;
    3. ``stale``: the newest matching record is older than the control's ``every``;
    4. ``due``: a required document type is missing or older than its cadence (its
       selector's ``every``, else the control's);
    5. ``operating``.

    Age is ``as_of`` minus the evidence time; evidence exactly ``every`` old is still current.
    ``reasons`` lists every problem found, not only the winning one.
    """
    due = tuple(
        DueDocument(doc_type, evidence.documents.get(doc_type), cadence.text)
        for doc_type, cadence in control.documents
        if doc_type not in evidence.documents or as_of - evidence.documents[doc_type] > cadence.period
    )
    reasons: list[str] = []
    found: list[ControlStatus] = []
    if evidence.exceptions:
        found.append("exceptions")
        reasons.append(f"{evidence.exceptions} exception record(s) in the period")
    if control.automated:
        if evidence.newest_at is None:
            found.append("no_evidence")
            reasons.append(f"no matching record at or before {_when(as_of)}")
        elif as_of - evidence.newest_at > control.every.period:
            found.append("stale")
            reasons.append(f"newest record {_when(evidence.newest_at)} is older than "
                           f"its cadence {control.every.text}")
    elif not evidence.documents:
        found.append("no_evidence")
    if due:
        found.append("due")
        reasons.extend(
            f"document {d.type!r} missing" if d.last_at is None
            else f"document {d.type!r} of {_when(d.last_at)} is older than {d.every}"
            for d in due
        )
    order: tuple[ControlStatus, ...] = ("exceptions", "no_evidence", "stale", "due")
    status: ControlStatus = next((s for s in order if s in found), "operating")
    times = [t for t in (evidence.newest_at, *evidence.documents.values()) if t is not None]
    return ControlState(control, status, max(times) if times else None, evidence.records,
                        evidence.exceptions, due, tuple(reasons))


def evaluate_controls(library: ControlLibrary, evidence: Mapping[str, ControlEvidence],
                      as_of: datetime) -> tuple[ControlState, ...]:
    """Every control of the library in order; a control missing from ``evidence`` has none."""
    empty = ControlEvidence()
    return tuple(evaluate_control(c, evidence.get(c.id, empty), as_of) for c in library.controls)


def evaluate_criteria(scope: Scope, states: Sequence[ControlState]) -> tuple[CriterionState, ...]:
    """Each criterion in scope, in scope order; the first of these that holds wins:
    ``no_control`` (no control maps to it: a design gap), ``exceptions`` (a mapped control
    has exceptions), ``covered`` (a mapped control is operating), ``no_evidence`` (its
    controls are all stale, due or without evidence: an operating gap)."""
    out: list[CriterionState] = []
    for criterion in scope.criteria:
        mapped = [s for s in states if criterion in s.control.criteria]
        operating = tuple(s.control.id for s in mapped if s.status == "operating")
        status: CriterionStatus
        if not mapped:
            status = "no_control"
        elif any(s.status == "exceptions" for s in mapped):
            status = "exceptions"
        else:
            status = "covered" if operating else "no_evidence"
        out.append(CriterionState(criterion, status, tuple(s.control.id for s in mapped), operating))
    return tuple(out)


def evaluate_coverage(scope: Scope, criteria: Sequence[CriterionState]) -> Coverage:
    """Coverage of the criteria in scope (never only those some stream files under):
    designed = with at least one mapped control, operating = with at least one mapped
    control operating (even if another mapped control has exceptions)."""
    in_scope = len(scope.criteria)
    designed = sum(1 for c in criteria if c.controls)
    operating = sum(1 for c in criteria if c.operating)
    ratio = round(operating / in_scope, 3) if in_scope else 0.0
    return Coverage(in_scope, designed, operating, ratio, scope.excluded)


def owner_actions(states: Sequence[ControlState]) -> tuple[OwnerActions, ...]:
    """Every owner (sorted), each with the controls not operating (in library order) and why."""
    by_owner: dict[str, list[OwnerAction]] = {}
    for state in states:
        actions = by_owner.setdefault(state.control.owner, [])
        if state.status != "operating":
            actions.append(OwnerAction(state.control.id, state.control.title, state.status, state.reasons))
    return tuple(OwnerActions(owner, tuple(by_owner[owner])) for owner in sorted(by_owner))


def type1_gaps(criteria: Sequence[CriterionState], states: Sequence[ControlState]) -> tuple[str, ...]:
    """What stands between the organisation and a Type 1 report, one line each: criteria in
    scope no control maps to, and controls without current evidence. Empty means ready."""
    gaps = [f"{c.id}: no control maps to it" for c in criteria if c.status == "no_control"]
    mapped = {cid for c in criteria for cid in c.controls}
    gaps.extend(f"{s.control.id} ({s.control.owner}): {s.status}: {'; '.join(s.reasons)}"
                for s in states
                if s.control.id in mapped and s.status in ("no_evidence", "stale", "due"))
    return tuple(gaps)
