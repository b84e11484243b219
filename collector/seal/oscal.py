"""OSCAL assessment results for one snapshot, written as a stream.

Shape (and why): one result per snapshot whose ``start``/``end`` are the window bounds. Each
criterion's population is one observation whose evidence is its population file and
``records.jsonl``, listed in back-matter with their SHA-256 (and the Merkle root), so the file
stays proportional to criteria and exceptions rather than to records: at a million records a
per-record observation would roughly double the snapshot for data ``records.jsonl`` already
holds under the same signature. Each exception record is its own observation (its ``collected``
time, source link, record id and raw hash), and each criterion with exceptions gets one finding
``not-satisfied`` that points at them. Schema v2 adds the organisation's controls: the criteria
in scope are the reviewed controls (exclusions with their reasons), each control of the library
is an observation with its statement, criteria and owner (the owner a party in metadata with the
``control-owner`` role), its evidence ``controls/<ID>.csv``; every document in ``files/`` is a
back-matter resource with its hash. UUIDs are name-based (v5) on the Merkle root, so re-sealing
writes the same bytes; without a library (schema v1) the output is exactly v1's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from collector.seal._library import SealedLibrary

__all__ = ["OSCAL_VERSION", "ControlStats", "OscalInput", "write_assessment_results"]

OSCAL_VERSION = "1.1.2"
_NS = uuid.UUID("7b0c3c52-3f7e-5a51-9a7e-1f0f6a4c2d10")


@dataclass
class ControlStats:
    """A criterion's population in one snapshot."""

    count: int = 0
    exceptions: int = 0
    last_collected: str | None = None


@dataclass(frozen=True)
class OscalInput:
    """Everything the assessment results say about one snapshot."""

    window_id: str
    window_start: str
    window_end: str
    seq: int
    sealed_at: str
    merkle_root: str
    tree_size: int
    collector_version: str
    controls: dict[str, ControlStats]
    file_hashes: dict[str, str]
    exceptions: Callable[[], Iterable[dict[str, Any]]] = field(default=lambda: ())
    criteria_dir: str = "controls"
    """Where the criteria's populations are: ``controls`` in schema v1, ``criteria`` in v2."""
    library: SealedLibrary | None = None
    """Schema v2: the organisation's controls and the scope; None for schema v1."""
    org_controls: dict[str, ControlStats] = field(default_factory=dict)
    """Schema v2: each control's population, by control id."""
    label: str | None = None
    """What the snapshot is, for titles (default: the window, and the amendment)."""
    description: str | None = None
    """What the result holds (default: the records observed in the window)."""


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class _Ids:
    def __init__(self, seed: str) -> None:
        self.seed = seed

    def __call__(self, *parts: str) -> str:
        return str(uuid.uuid5(_NS, ":".join((self.seed, *parts))))


def _resources(src: OscalInput, ids: _Ids) -> list[dict[str, Any]]:
    out = []
    for name in sorted(src.file_hashes):
        resource: dict[str, Any] = {
            "uuid": ids("resource", name),
            "title": name,
            "rlinks": [{"href": f"../{name}", "hashes": [
                {"algorithm": "SHA-256", "value": src.file_hashes[name]}]}],
        }
        if name == "records.jsonl":
            resource["props"] = [
                {"name": "merkle-root", "value": src.merkle_root},
                {"name": "merkle-alg", "value": "rfc9162-sha256"},
                {"name": "tree-size", "value": str(src.tree_size)},
            ]
        out.append(resource)
    return out


def _population(src: OscalInput, ids: _Ids, control: str, stats: ControlStats) -> dict[str, Any]:
    csv_name = f"{src.criteria_dir}/{control}.csv"
    return {
        "uuid": ids("population", control),
        "title": f"Population of {control}",
        "description": (f"{stats.count} evidence records filed under {control} in window "
                        f"{src.window_id}, {stats.exceptions} of them exceptions."),
        "methods": ["EXAMINE"],
        "types": ["control-objective"],
        "props": [{"name": "records", "value": str(stats.count)},
                  {"name": "exceptions", "value": str(stats.exceptions)}],
        "relevant-evidence": [
            {"href": f"#{ids('resource', csv_name)}", "description": f"{csv_name}: the population"},
            {"href": f"#{ids('resource', 'records.jsonl')}", "description": "records.jsonl"},
        ],
        "collected": stats.last_collected or src.sealed_at,
    }


def _exception(ids: _Ids, rec: dict[str, Any]) -> dict[str, Any]:
    evidence = [{"href": f"#{ids('resource', 'records.jsonl')}",
                 "description": f"record {rec['id']} in records.jsonl"}]
    if rec.get("source_url"):
        evidence.insert(0, {"href": rec["source_url"], "description": "the item at its source"})
    props = [{"name": "record-id", "value": rec["id"]},
             {"name": "raw-sha256", "value": rec["raw_sha256"]},
             {"name": "stream", "value": rec["stream"]},
             {"name": "observed-at", "value": rec["observed_at"]}]
    return {
        "uuid": ids("exception", rec["id"]),
        "title": f"Exception: {rec['stream']} {rec['source_key']}"[:300],
        "description": rec["exception_reason"] or "exception",
        "methods": ["EXAMINE"],
        "types": ["finding"],
        "props": props,
        "relevant-evidence": evidence,
        "collected": rec["collected_at"],
    }


def _org_control(src: OscalInput, ids: _Ids, index: int) -> dict[str, Any]:
    assert src.library is not None
    c = src.library.controls[index]
    stats = src.org_controls.get(c.id, ControlStats())
    csv_name = f"controls/{c.id}.csv"
    props = [{"name": "control-id", "value": c.id}, {"name": "owner", "value": c.owner},
             {"name": "every", "value": c.every}, {"name": "records", "value": str(stats.count)},
             {"name": "exceptions", "value": str(stats.exceptions)},
             *({"name": "criterion", "value": criterion} for criterion in c.criteria)]
    return {
        "uuid": ids("control", c.id),
        "title": f"{c.id}: {c.title}"[:300],
        "description": (f"{c.statement}\n\nOwner: {c.owner}. Criteria: {', '.join(c.criteria)}. "
                        f"{stats.count} evidence records matched its selectors, "
                        f"{stats.exceptions} of them exceptions."),
        "props": props,
        "methods": ["EXAMINE"],
        "types": ["control-objective"],
        "subjects": [{"subject-uuid": ids("party", c.owner), "type": "party"}],
        "relevant-evidence": [
            {"href": f"#{ids('resource', csv_name)}", "description": f"{csv_name}: the population"},
            {"href": f"#{ids('resource', 'records.jsonl')}", "description": "records.jsonl"},
        ],
        "collected": stats.last_collected or src.sealed_at,
    }


def _observations(src: OscalInput, ids: _Ids) -> Iterator[dict[str, Any]]:
    for control in sorted(src.controls):
        yield _population(src, ids, control, src.controls[control])
    if src.library is not None:
        for index in range(len(src.library.controls)):
            yield _org_control(src, ids, index)
    for rec in src.exceptions():
        yield _exception(ids, rec)


def _reviewed(src: OscalInput) -> dict[str, Any]:
    """The control selections: v1 the criteria with a population; v2 the criteria in scope
    (and any other a record is filed under), the excluded ones named with their reasons."""
    lib = src.library
    if lib is None:
        return {"control-selections": [
            {"include-controls": [{"control-id": c.lower()} for c in sorted(src.controls)]}
            if src.controls else {"include-all": {}}]}
    chosen = sorted(set(lib.criteria) | set(src.controls))
    selection: dict[str, Any] = (
        {"include-controls": [{"control-id": c.lower()} for c in chosen]} if chosen
        else {"include-all": {}})
    if lib.excluded:
        selection["exclude-controls"] = [{"control-id": c.lower()} for c, _ in lib.excluded]
    out: dict[str, Any] = {
        "description": (f"The criteria in scope ({', '.join(lib.categories) or 'none named'}) and "
                        "the organisation's controls mapped to them, from controls.json."),
        "control-selections": [selection],
    }
    if lib.excluded:
        out["remarks"] = "Excluded from scope: " + "; ".join(f"{c}: {r}" for c, r in lib.excluded)
    return out


def _parties(src: OscalInput, ids: _Ids) -> dict[str, Any]:
    """Metadata roles and parties: each control owner a party with the control-owner role."""
    if src.library is None or not src.library.controls:
        return {}
    owners = sorted({c.owner for c in src.library.controls})
    return {
        "roles": [{"id": "control-owner", "title": "Control owner"}],
        "parties": [{"uuid": ids("party", o), "type": "person", "name": o} for o in owners],
        "responsible-parties": [{"role-id": "control-owner",
                                 "party-uuids": [ids("party", o) for o in owners]}],
    }


def _findings(src: OscalInput, ids: _Ids) -> Iterator[dict[str, Any]]:
    related: dict[str, list[dict[str, str]]] = {}
    for rec in src.exceptions():
        for control in rec["controls"]:
            related.setdefault(control, []).append({"observation-uuid": ids("exception", rec["id"])})
    for control in sorted(related):
        stats = src.controls[control]
        yield {
            "uuid": ids("finding", control),
            "title": f"{control}: {stats.exceptions} exception(s) in {src.window_id}",
            "description": (f"{stats.exceptions} of {stats.count} records filed under {control} "
                            "show the control failing; each is a related observation."),
            "target": {"type": "objective-id", "target-id": f"{control.lower()}_obj",
                       "status": {"state": "not-satisfied"}},
            "related-observations": [{"observation-uuid": ids("population", control)},
                                     *related[control]],
        }


def write_assessment_results(out: IO[bytes], src: OscalInput) -> None:
    """Write the assessment results JSON for ``src`` to ``out`` without holding the records."""
    ids = _Ids(f"{src.window_id}:{src.seq}:{src.merkle_root}")
    label = src.label or (f"window {src.window_id}" + (f", amendment {src.seq}" if src.seq else ""))
    result_head = {
        "uuid": ids("result"),
        "title": f"Evidence for {label}",
        "description": src.description or (
            f"Evidence records observed in [{src.window_start}, {src.window_end}) "
            f"and sealed at {src.sealed_at}; Merkle root {src.merkle_root}."),
        "start": src.window_start,
        "end": src.window_end,
        "props": [{"name": "window", "value": src.window_id},
                  {"name": "merkle-root", "value": src.merkle_root}],
        "reviewed-controls": _reviewed(src),
    }
    doc_head = {
        "uuid": ids("assessment-results"),
        "metadata": {
            "title": f"SOC 2 evidence, {label}",
            "last-modified": src.sealed_at,
            "version": f"evidence-collector {src.collector_version}",
            "oscal-version": OSCAL_VERSION,
            **_parties(src, ids),
        },
        "import-ap": {"href": f"#{ids('resource', 'manifest.json')}"},
    }
    w = out.write
    w(b'{"assessment-results":')
    w(_dump(doc_head)[:-1])
    w(b',"results":[')
    w(_dump(result_head)[:-1])
    opened = False
    for item in _observations(src, ids):
        w((b"," if opened else b',"observations":[') + _dump(item))
        opened = True
    if opened:
        w(b"]")
    findings = list(_findings(src, ids))
    if findings:
        w(b',"findings":' + _dump(findings))
    w(b"}]")
    w(b',"back-matter":' + _dump({"resources": _resources(src, ids)}))
    w(b"}}\n")
