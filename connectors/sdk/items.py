"""Values that flow out of a stream: source items, checkpoints, failures, and the cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "KEEP",
    "KINDS",
    "Checkpoint",
    "Cursor",
    "ItemFailure",
    "JSONValue",
    "Normalised",
    "Skipped",
    "SourceItem",
    "json_leq",
]

JSONValue = Any
"""A JSON-representable value (str, int, bool, None, list, dict with str keys)."""

KINDS = frozenset(
    {
        "access_log",
        "mfa_status",
        "user_lifecycle",
        "access_change",
        "code_change",
        "change_ticket",
        "config_state",
        "backup_result",
        "incident",
        "account",
        "document",
        "attestation",
    }
)


class _Keep:
    """Marker: storing this item does not move the cursor."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass(frozen=True, slots=True)
class Cursor:
    """What a stream starts from: the last committed value and the run's fixed time bounds.

    ``ceiling`` is the instant the run began; a stream never reads events after it, so a
    run is a bounded slice and the next run starts where this one's ceiling was.
    ``floor`` is how far back a first run reads (ceiling minus the configured backfill).
    """

    value: JSONValue
    ceiling: datetime
    floor: datetime


# SourceItem and Normalised are made once per item on the hot path: slots but not frozen, since a
# frozen dataclass's __init__ costs three times as much (object.__setattr__ per field). Nothing
# holds them past the item they describe.
@dataclass(slots=True)
class SourceItem:
    """One item as received: its source key, when it happened or was read, and the raw bytes.

    ``cursor`` is the stream position once this item (and every item before it) is stored;
    ``KEEP`` leaves the position where it was.
    """

    key: str
    observed_at: datetime
    raw: bytes
    obj: Any
    cursor: JSONValue = KEEP


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Advance the cursor without an item (for example, a log file that held no relevant event)."""

    cursor: JSONValue


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """An item that could not be read; the cursor never advances past it in this run."""

    key: str
    error: str
    error_class: str = "ItemError"


@dataclass(frozen=True, slots=True)
class Skipped:
    """Items a stream read and deliberately did not yield, counted under ``reason`` in the run's
    statistics (for example AssumeRole calls made by AWS services): dropped by design, not lost."""

    reason: str
    count: int = 1


@dataclass(slots=True)
class Normalised:
    """A source item normalised: what the record says, before the pipeline hashes and files it."""

    kind: str
    actor: str | None
    source_url: str | None
    data: dict[str, Any]
    exception: str | None = None
    criteria: tuple[str, ...] | None = None
    """The criteria this one item is filed under, when a person chose them for it (the built-in
    manual streams: the criteria of the controls named when a document was added). None, for
    every connector stream: the pipeline files the record by its stream's filing."""


def json_leq(a: JSONValue, b: JSONValue) -> bool:
    """Partial order on cursor values: scalars by value, lists lexicographically, dicts per key."""
    if a is None:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in b and json_leq(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return tuple(a) <= tuple(b)
    try:
        return bool(a <= b)
    except TypeError:
        return False
