"""What a digest covers: the criteria the enabled streams file under, and the criteria in scope."""

from __future__ import annotations

from collections.abc import Sequence

from collector.catalog import Catalog
from collector.collect import PlannedStream
from collector.config import Settings

__all__ = ["filed_criteria", "in_scope_criteria"]


def filed_criteria(settings: Settings, streams: Sequence[PlannedStream],
                   catalog: Catalog) -> dict[str, list[str]]:
    """Criterion -> the enabled streams filing under it (per-stream override, else kind default)."""
    filed: dict[str, list[str]] = {}
    for stream in streams:
        for kind in sorted(stream.kinds):
            for criterion in settings.filing.get(stream.id, catalog.kind_filing[kind]):
                targets = filed.setdefault(criterion, [])
                if stream.id not in targets:
                    targets.append(stream.id)
    return filed


def in_scope_criteria(settings: Settings, streams: Sequence[PlannedStream],
                      catalog: Catalog) -> tuple[str, ...]:
    """The criteria in scope (``[scope]``: categories minus exclusions), in catalog order; never
    only those the enabled streams happen to file under, which made coverage 100% by construction."""
    del streams  # kept for callers; scope no longer depends on what is enabled
    return tuple(c for c in catalog.criteria if c in set(settings.scope.criteria))
