"""The criteria in scope: every criterion of the chosen categories, minus exclusions with reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.catalog import CATEGORIES, Catalog
from collector.errors import ConfigError

__all__ = ["DEFAULT_CATEGORIES", "Exclusion", "Scope", "resolve_scope"]

DEFAULT_CATEGORIES = ("security",)
"""``[scope] categories`` when unset: the common criteria CC1.1-CC9.2."""


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A criterion of a chosen category that the organisation leaves out, and why."""

    criterion: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """``{"criterion": ..., "reason": ...}`` as the digest shows it."""
        return {"criterion": self.criterion, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Scope:
    """The criteria in scope in catalog order (exclusions removed), and the exclusions."""

    categories: tuple[str, ...]
    criteria: tuple[str, ...]
    excluded: tuple[Exclusion, ...]


def resolve_scope(catalog: Catalog, categories: Sequence[str] = DEFAULT_CATEGORIES,
                  exclude: Sequence[Mapping[str, Any]] = (), file: str = "config") -> Scope:
    """Every criterion whose catalog category is in ``categories``, minus ``exclude`` entries
    ({criterion, reason} tables as read from ``[scope] exclude``).

    Raises ConfigError naming ``file`` and the key for: no category, an unknown or repeated
    category, an exclusion with an unknown key, without a reason, naming a criterion not in
    scope, or naming one twice.
    """
    if not categories:
        raise ConfigError(file, "scope.categories", "name at least one category")
    for category in categories:
        if category not in CATEGORIES:
            raise ConfigError(file, "scope.categories",
                              f"unknown category {category!r} (known: {', '.join(sorted(CATEGORIES))})")
    if len(set(categories)) != len(categories):
        raise ConfigError(file, "scope.categories", "a category is listed twice")
    chosen = tuple(cid for cid, c in catalog.criteria.items() if c.category in categories)
    excluded: dict[str, Exclusion] = {}
    for index, entry in enumerate(exclude):
        key = f"scope.exclude[{index}]"
        unknown = sorted(set(entry) - {"criterion", "reason"})
        if unknown:
            raise ConfigError(file, key, f"unknown key {unknown[0]!r} (known keys: criterion, reason)")
        criterion, reason = entry.get("criterion"), entry.get("reason")
        if not isinstance(criterion, str):
            raise ConfigError(file, f"{key}.criterion", "required: the criterion id to exclude")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(file, f"{key}.reason",
                              f"excluding {criterion} needs a reason an auditor can read")
        if criterion not in chosen:
            raise ConfigError(file, f"{key}.criterion", f"{criterion!r} is not in scope "
                                                        f"(categories: {', '.join(categories)})")
        if criterion in excluded:
            raise ConfigError(file, f"{key}.criterion", f"{criterion} is excluded twice")
        excluded[criterion] = Exclusion(criterion, reason.strip())
    in_scope = tuple(c for c in chosen if c not in excluded)
    ordered = tuple(excluded[c] for c in chosen if c in excluded)
    return Scope(tuple(categories), in_scope, ordered)
