"""What the enabled streams file under (the criteria in scope are ``Settings.scope``)."""

from __future__ import annotations

from collections.abc import Sequence

from collector.catalog import Catalog
from collector.collect import PlannedStream
from collector.config import Settings

__all__ = ["filed_criteria"]


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
