"""The built-in streams of evidence no API holds, run through the same pipeline as every connector."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from collector.canonical import canonical
from collector.catalog import Catalog, Filing
from collector.config import Settings
from collector.controls import ControlLibrary
from collector.errors import CollectorError
from collector.pipeline import Pipeline, RunResult
from connectors.sdk.base import ConnectorConfig, Stream, StreamOutput
from connectors.sdk.items import Cursor, Normalised, SourceItem
from storage import Store

__all__ = [
    "ATTESTATIONS",
    "DOCUMENTS",
    "PEOPLE_COVERAGE",
    "AttestationStream",
    "CoverageStream",
    "DerivedStream",
    "DocumentStream",
    "StoreFailed",
    "criteria_of",
    "prepared_item",
    "store_items",
]

DOCUMENTS = "manual.documents"
ATTESTATIONS = "manual.attestations"
PEOPLE_COVERAGE = "people.coverage"


class StoreFailed(CollectorError):
    """The store refused or failed a run of a manual stream; nothing of that run was kept."""


def criteria_of(library: ControlLibrary, control_ids: Iterable[str]) -> tuple[str, ...]:
    """The union of the named controls' criteria, in catalog order (so a record body is stable)."""
    wanted = {c for cid in control_ids if (control := library.get(cid)) for c in control.criteria}
    order = {c: i for i, c in enumerate(Catalog.builtin().criteria)}
    return tuple(sorted(wanted, key=lambda c: order.get(c, len(order))))


def prepared_item(key: str, observed_at: datetime, normalised: Normalised) -> SourceItem:
    """A source item whose normalised form is already known: what a person said, or a check found.

    Its raw bytes are the canonical JSON of the record's ``data``: for a document that holds the
    file's own SHA-256, so ``raw_sha256`` pins the statement and, through it, the file.
    """
    return SourceItem(key, observed_at, canonical(normalised.data), normalised)


class _Prepared(Stream[ConnectorConfig, None]):
    """A stream of items prepared before the run; ``normalise`` hands back what was prepared."""

    connector: ClassVar[str]

    def __init__(self, items: Sequence[SourceItem]) -> None:
        super().__init__(ConnectorConfig(), lambda: None, self.connector)
        self._items = items

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        """The prepared items, in the order given (the cursor is never used)."""
        yield from self._items

    def normalise(self, item: SourceItem) -> Normalised:
        """The item's prepared record content."""
        prepared: Normalised = item.obj
        return prepared


class DocumentStream(_Prepared):
    """``manual.documents``: one record per file and type (``<type>/<sha256>``)."""

    connector = "manual"
    name = "documents"
    kinds = frozenset({"document"})


class AttestationStream(_Prepared):
    """``manual.attestations``: one record per statement (``<type>/<person>/<item>`` at its time)."""

    connector = "manual"
    name = "attestations"
    kinds = frozenset({"attestation"})


class DerivedStream(Stream[ConnectorConfig, None]):
    """A check computed from stored records, as a state stream: its findings (``(source_key,
    Normalised)`` pairs) as of the run's ceiling, one read each run; no vendor is called."""

    mode = "state"
    derived_from: ClassVar[str]
    """The stream id's first part (``people``, ``identity``): where the check's records belong."""

    def __init__(self, check: Callable[[datetime], Iterable[tuple[str, Normalised]]]) -> None:
        super().__init__(ConnectorConfig(), lambda: None, self.derived_from)
        self._check = check

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        """One item per finding of the check made as of the run's ceiling."""
        for key, normalised in self._check(cursor.ceiling):
            yield prepared_item(key, cursor.ceiling, normalised)

    def normalise(self, item: SourceItem) -> Normalised:
        """The finding's record content."""
        prepared: Normalised = item.obj
        return prepared


class CoverageStream(DerivedStream):
    """``people.coverage``: a check of the roster against the required attestations, read at the
    run's ceiling (a state stream: each check is a new read)."""

    derived_from = "people"
    name = "coverage"
    kinds = frozenset({"attestation"})


def store_items(settings: Settings, store: Store, stream: Stream[Any, Any], *,
                clock: Callable[[], datetime] | None = None) -> RunResult:
    """Run ``stream`` through the pipeline as one transaction (its records, their filings and the
    run's final row), so a kill stores all of its items or none; raise `StoreFailed` when the run
    did not end ``ok``.

    One transaction holds every record in memory until it commits: about 1 KB a statement, so
    20 MB for an import of 20,000 rows.
    """
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    pipeline = Pipeline(store, Filing(Catalog.builtin(), settings.filing),
                        batch_size=2**31, flush_seconds=float("inf"), **extra)
    result = pipeline.run(stream, ConnectorConfig())
    if result.status != "ok":
        raise StoreFailed(f"{stream.id}: run {result.run_id} ended {result.status}: "
                          f"{result.error_class}: {result.error}")
    return result
