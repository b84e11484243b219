"""What a digest covers: the criteria in scope and the enabled streams with their intervals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from collector.catalog import Catalog
from collector.collect import plan_streams
from collector.config import Settings
from connectors.sdk.registry import discover

__all__ = ["StreamPlan", "enabled_streams", "filed_criteria", "in_scope_criteria"]


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """An enabled stream, the kinds it yields and how often its connector collects."""

    id: str
    kinds: frozenset[str]
    interval: timedelta


def enabled_streams(settings: Settings) -> list[StreamPlan]:
    """The enabled streams in declaration order (as `collector collect` would run them)."""
    registry = discover().connectors
    out: list[StreamPlan] = []
    for planned in plan_streams(settings):
        connector = registry[planned.connector]
        stream_type = next(s for s in connector.stream_types if s.name == planned.name)
        interval = settings.connectors[planned.connector].interval
        out.append(StreamPlan(planned.id, frozenset(stream_type.kinds), interval))
    return out


def filed_criteria(settings: Settings, streams: list[StreamPlan], catalog: Catalog) -> dict[str, list[str]]:
    """Criterion -> the enabled streams filing under it (per-stream override, else kind default)."""
    filed: dict[str, list[str]] = {}
    for stream in streams:
        for kind in sorted(stream.kinds):
            for criterion in settings.filing.get(stream.id, catalog.kind_filing[kind]):
                targets = filed.setdefault(criterion, [])
                if stream.id not in targets:
                    targets.append(stream.id)
    return filed


def in_scope_criteria(settings: Settings, streams: list[StreamPlan], catalog: Catalog) -> tuple[str, ...]:
    """``[controls].in_scope`` when set, else every criterion an enabled stream files under;
    in catalog order."""
    wanted = set(settings.in_scope) if settings.in_scope else set(
        filed_criteria(settings, streams, catalog)
    )
    return tuple(c for c in catalog.criteria if c in wanted)
