"""The organisation's controls: the library, the criteria in scope, and status per control and criterion."""

from __future__ import annotations

from collector.controls.library import (
    STARTER_FILE,
    Cadence,
    Control,
    ControlLibrary,
    Selector,
    parse_cadence,
    starter_text,
)
from collector.controls.scope import DEFAULT_CATEGORIES, Exclusion, Scope, resolve_scope
from collector.controls.status import (
    ControlEvidence,
    ControlState,
    ControlStatus,
    Coverage,
    CriterionState,
    CriterionStatus,
    DueDocument,
    OwnerAction,
    OwnerActions,
    PairTotals,
    aggregate,
    evaluate_control,
    evaluate_controls,
    evaluate_coverage,
    evaluate_criteria,
    owner_actions,
    type1_gaps,
)

__all__ = [
    "DEFAULT_CATEGORIES",
    "STARTER_FILE",
    "Cadence",
    "Control",
    "ControlEvidence",
    "ControlLibrary",
    "ControlState",
    "ControlStatus",
    "Coverage",
    "CriterionState",
    "CriterionStatus",
    "DueDocument",
    "Exclusion",
    "OwnerAction",
    "OwnerActions",
    "PairTotals",
    "Scope",
    "Selector",
    "aggregate",
    "evaluate_control",
    "evaluate_controls",
    "evaluate_coverage",
    "evaluate_criteria",
    "owner_actions",
    "parse_cadence",
    "resolve_scope",
    "starter_text",
    "type1_gaps",
]
