"""The control catalog (SOC 2 criteria and their ISO 27001 / NIST CSF mappings) and filing."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from collector.errors import CatalogError
from connectors.sdk.items import KINDS

__all__ = ["FRAMEWORKS", "Catalog", "Criterion", "Filing"]

FRAMEWORKS = ("soc2", "iso27001", "nist-csf")
CATEGORIES = frozenset(
    {"security", "availability", "confidentiality", "processing_integrity", "privacy"}
)
_ID = re.compile(r"^(CC[1-9]\.[1-9]|A1\.[1-3]|C1\.[12]|PI1\.[1-5]|P[1-8]\.[1-7])$")
_ISO = re.compile(r"^A\.(5\.([1-9]|[12]\d|3[0-7])|6\.[1-8]|7\.([1-9]|1[0-4])|8\.([1-9]|[12]\d|3[0-4]))$")
_NIST = re.compile(r"^(GV\.(OC|RM|RR|PO|OV|SC)|ID\.(AM|RA|IM)|PR\.(AA|AT|DS|PS|IR)|"
                   r"DE\.(CM|AE)|RS\.(MA|AN|CO|MI)|RC\.(RP|CO))-\d{2}$")


@dataclass(frozen=True, slots=True)
class Criterion:
    """One Trust Services Criterion with its mappings to other frameworks."""

    id: str
    category: str
    title: str
    iso27001: tuple[str, ...]
    nist_csf: tuple[str, ...]

    def mapped(self, framework: str) -> tuple[str, ...]:
        """The ids this criterion maps to in ``framework``."""
        if framework == "soc2":
            return (self.id,)
        return self.iso27001 if framework == "iso27001" else self.nist_csf


def _load_toml(name: str) -> dict[str, Any]:
    text = resources.files("collector").joinpath("data", name).read_text("utf-8")
    return tomllib.loads(text)


def _criterion(entry: Any, seen: set[str], where: str) -> Criterion:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: each [[criteria]] entry must be a table")
    cid = entry.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise CatalogError(f"{where}: criterion id {cid!r} is not a SOC 2 criterion id")
    if cid in seen:
        raise CatalogError(f"{where}: criterion {cid} is listed twice")
    seen.add(cid)
    if entry.get("category") not in CATEGORIES:
        raise CatalogError(f"{where}: {cid} has unknown category {entry.get('category')!r}")
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        raise CatalogError(f"{where}: {cid} has no title")
    iso = tuple(entry.get("iso27001", ()))
    nist = tuple(entry.get("nist_csf", ()))
    for ref in iso:
        if not _ISO.match(ref):
            raise CatalogError(f"{where}: {cid} maps to {ref!r}, not an ISO 27001:2022 Annex A id")
    for ref in nist:
        if not _NIST.match(ref):
            raise CatalogError(f"{where}: {cid} maps to {ref!r}, not a NIST CSF 2.0 subcategory")
    return Criterion(cid, entry["category"], title.strip(), iso, nist)


@dataclass(frozen=True)
class Catalog:
    """Every criterion by id, in catalog order, and the default kind -> criteria filing."""

    criteria: Mapping[str, Criterion]
    kind_filing: Mapping[str, tuple[str, ...]]

    @staticmethod
    @cache
    def builtin() -> Catalog:
        """The shipped catalog; a broken built-in file is a bug and stops the program."""
        return Catalog.from_data(
            _load_toml("criteria.toml"), _load_toml("filing.toml"), "collector/data"
        )

    @classmethod
    def from_data(cls, criteria_doc: Mapping[str, Any], filing_doc: Mapping[str, Any],
                  where: str) -> Catalog:
        """Validate catalog data: ids, categories, mappings, and that filing names real things."""
        seen: set[str] = set()
        entries = criteria_doc.get("criteria")
        if not isinstance(entries, list) or not entries:
            raise CatalogError(f"{where}: no [[criteria]] entries")
        criteria = {c.id: c for c in (_criterion(e, seen, where) for e in entries)}
        kinds = filing_doc.get("kinds")
        if not isinstance(kinds, dict):
            raise CatalogError(f"{where}: filing has no [kinds] table")
        filing: dict[str, tuple[str, ...]] = {}
        for kind, targets in kinds.items():
            if kind not in KINDS:
                raise CatalogError(f"{where}: filing names unknown evidence kind {kind!r}")
            for target in targets:
                if target not in criteria:
                    raise CatalogError(f"{where}: filing of {kind} names unknown criterion {target!r}")
            filing[kind] = tuple(targets)
        missing = KINDS - filing.keys()
        if missing:
            raise CatalogError(f"{where}: filing has no entry for kind(s) {sorted(missing)}")
        return cls(criteria, filing)

    def criteria_for(self, kinds: Iterable[str]) -> tuple[str, ...]:
        """Union of default criteria for ``kinds``, in catalog order."""
        wanted = {c for k in kinds for c in self.kind_filing[k]}
        return tuple(c for c in self.criteria if c in wanted)


@dataclass(frozen=True)
class Filing:
    """Resolves the criteria a record is filed under: per-stream override, else its kind's default."""

    catalog: Catalog
    overrides: Mapping[str, tuple[str, ...]]

    def controls(self, stream: str, kind: str) -> tuple[str, ...]:
        """Criteria for a record of ``kind`` from ``stream``, sorted for a stable record body."""
        override = self.overrides.get(stream)
        return override if override is not None else self.catalog.kind_filing[kind]
