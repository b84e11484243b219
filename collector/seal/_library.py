"""The control library as a snapshot carries it (``controls.json``): written, read back, matched to records.

Standard library only, so that ``collector verify`` re-derives every control's population from
``controls.json`` and ``records.jsonl`` without the config, the catalog or ``collector.controls``.
The sealer matches records with this same code, so sealing and verifying cannot disagree.

Matching rule (README.txt states it for auditors): a record belongs to a control when one of the
control's selectors matches it. A ``stream``/``kind`` selector matches when every key it sets
equals the record's ``stream`` / ``kind``; a ``document`` selector matches a record of one of the
``document_streams`` whose ``source_key`` is ``<document>/...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.seal import _format as fmt

__all__ = ["LIBRARY_SCHEMA", "Populations", "SealedControl", "SealedLibrary", "SealedSelector"]

LIBRARY_SCHEMA = "evidence-collector/controls/v1"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
_TOP_KEYS = {"schema", "source", "scope", "document_streams", "controls"}
_SCOPE_KEYS = {"categories", "criteria", "excluded"}
_CONTROL_KEYS = {"id", "title", "statement", "owner", "criteria", "every", "evidence"}
_SELECTOR_KEYS = {"stream", "kind", "document", "every"}


@dataclass(frozen=True, slots=True)
class SealedSelector:
    """One evidence selector as written in the library (only the keys that are set)."""

    stream: str | None = None
    kind: str | None = None
    document: str | None = None
    every: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The selector as JSON (only the keys that are set)."""
        return {k: v for k, v in (("stream", self.stream), ("kind", self.kind),
                                  ("document", self.document), ("every", self.every))
                if v is not None}


@dataclass(frozen=True, slots=True)
class SealedControl:
    """One of the organisation's controls as sealed: what it says, who owns it, what it maps to."""

    id: str
    title: str
    statement: str
    owner: str
    criteria: tuple[str, ...]
    every: str
    evidence: tuple[SealedSelector, ...]

    def as_dict(self) -> dict[str, Any]:
        """The control as JSON, in the library file's key order."""
        return {"id": self.id, "title": self.title, "statement": self.statement,
                "owner": self.owner, "criteria": list(self.criteria), "every": self.every,
                "evidence": [s.as_dict() for s in self.evidence]}


@dataclass(frozen=True)
class SealedLibrary:
    """The library and scope a snapshot was built with: its controls in library order, the
    criteria in scope (catalog order), the exclusions with their reasons, and the streams whose
    records are documents or attestations (``<type>/...`` source keys)."""

    source: str
    controls: tuple[SealedControl, ...]
    categories: tuple[str, ...]
    criteria: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...]
    document_streams: tuple[str, ...] = ("manual.documents", "manual.attestations")

    @classmethod
    def empty(cls, criteria: tuple[str, ...] = ()) -> SealedLibrary:
        """No controls of the organisation's, and ``criteria`` in scope (for sealers built
        without a library, such as benchmarks)."""
        return cls("(none)", (), (), tuple(criteria), ())

    def as_dict(self) -> dict[str, Any]:
        """``controls.json`` as an object."""
        return {
            "schema": LIBRARY_SCHEMA,
            "source": self.source,
            "scope": {"categories": list(self.categories), "criteria": list(self.criteria),
                      "excluded": [{"criterion": c, "reason": r} for c, r in self.excluded]},
            "document_streams": list(self.document_streams),
            "controls": [c.as_dict() for c in self.controls],
        }

    def to_json(self) -> bytes:
        """``controls.json``: canonical (RFC 8785) bytes, checked by ``from_json`` on the way in."""
        data = fmt.canonical(self.as_dict())
        SealedLibrary.from_json(data)  # a library the verifier would refuse is never sealed
        return data

    @classmethod
    def from_json(cls, data: bytes) -> SealedLibrary:
        """Read ``controls.json``; ValueError naming the first thing wrong with it."""
        try:
            doc = fmt.loads(data)
        except ValueError as exc:
            raise ValueError(f"is not JSON in the record profile: {exc}") from None
        if type(doc) is not dict or fmt.canonical(doc) != data:
            raise ValueError("is not canonical (RFC 8785) JSON")
        _keys(doc, _TOP_KEYS, "")
        if doc["schema"] != LIBRARY_SCHEMA:
            raise ValueError(f"schema is {doc['schema']!r}, expected {LIBRARY_SCHEMA!r}")
        scope = doc["scope"]
        _keys(scope, _SCOPE_KEYS, "scope.")
        criteria = _criteria(scope["criteria"], "scope.criteria", allow_empty=True)
        excluded = []
        for i, entry in enumerate(_list(scope["excluded"], "scope.excluded")):
            _keys(entry, {"criterion", "reason"}, f"scope.excluded[{i}].")
            criterion = _criteria([entry["criterion"]], f"scope.excluded[{i}].criterion")[0]
            excluded.append((criterion, _text(entry["reason"], f"scope.excluded[{i}].reason")))
        controls: list[SealedControl] = []
        seen: set[str] = set()
        for i, entry in enumerate(_list(doc["controls"], "controls")):
            control = _control(entry, f"controls[{i}]")
            if control.id.casefold() in seen:
                raise ValueError(f"controls[{i}]: id {control.id} is used twice")
            seen.add(control.id.casefold())
            controls.append(control)
        return cls(
            source=_text(doc["source"], "source"), controls=tuple(controls),
            categories=tuple(_text(c, "scope.categories") for c in _list(scope["categories"],
                                                                         "scope.categories")),
            criteria=criteria, excluded=tuple(excluded),
            document_streams=tuple(_text(s, "document_streams")
                                   for s in _list(doc["document_streams"], "document_streams")),
        )

    def matcher(self) -> Callable[[str, str, str], tuple[str, ...]]:
        """``match(stream, kind, source_key)``: the ids of the controls a record belongs to, in
        library order (memoised per stream, kind and document type)."""
        documents = frozenset(self.document_streams)
        controls = self.controls
        cache: dict[tuple[str, str, str | None], tuple[str, ...]] = {}

        def match(stream: str, kind: str, source_key: str) -> tuple[str, ...]:
            doc_type: str | None = None
            if stream in documents:
                head, slash, _ = source_key.partition("/")
                doc_type = head if slash and head else None
            key = (stream, kind, doc_type)
            found = cache.get(key)
            if found is None:
                found = cache[key] = tuple(c.id for c in controls
                                           if any(_matches(s, stream, kind, doc_type)
                                                  for s in c.evidence))
            return found

        return match


def _matches(s: SealedSelector, stream: str, kind: str, doc_type: str | None) -> bool:
    if s.document is not None:
        return s.document == doc_type
    return (s.stream is None or s.stream == stream) and (s.kind is None or s.kind == kind)


def _keys(obj: Any, allowed: set[str], where: str) -> None:
    if type(obj) is not dict:
        raise ValueError(f"{where.rstrip('.') or 'the file'} is not an object")
    missing = sorted(k for k in allowed if k not in obj)
    if missing:
        raise ValueError(f"{where}{missing[0]} is missing")
    extra = sorted(set(obj) - allowed)
    if extra:
        raise ValueError(f"{where}{extra[0]} is not a key controls.json has")


def _list(value: Any, where: str) -> list[Any]:
    if type(value) is not list:
        raise ValueError(f"{where} is not a list")
    return value


def _text(value: Any, where: str) -> str:
    if type(value) is not str or not value:
        raise ValueError(f"{where} is not a non-empty string")
    return value


def _criteria(value: Any, where: str, allow_empty: bool = False) -> tuple[str, ...]:
    items = _list(value, where)
    if not items and not allow_empty:
        raise ValueError(f"{where} is empty")
    for item in items:
        try:
            fmt.criterion_file(item)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if len(set(items)) != len(items):
        raise ValueError(f"{where} lists a criterion twice")
    return tuple(items)


def _control(entry: Any, where: str) -> SealedControl:
    if type(entry) is not dict:
        raise ValueError(f"{where} is not an object")
    cid = entry.get("id")
    if type(cid) is not str or not _ID.fullmatch(cid):
        raise ValueError(f"{where}: id {cid!r} is not a control id")
    where = f"control {cid}"
    _keys(entry, _CONTROL_KEYS, f"{where}: ")
    selectors = []
    for i, sel in enumerate(_list(entry["evidence"], f"{where}: evidence")):
        at = f"{where}: evidence[{i}]"
        if type(sel) is not dict or not sel or set(sel) - _SELECTOR_KEYS:
            raise ValueError(f"{at} is not a selector (keys: stream, kind, document, every)")
        values = {k: _text(v, f"{at}.{k}") for k, v in sel.items()}
        s = SealedSelector(**values)
        if s.document is not None and (s.stream is not None or s.kind is not None):
            raise ValueError(f"{at} names a document and a stream or kind")
        if s.document is None and (s.every is not None or (s.stream is None and s.kind is None)):
            raise ValueError(f"{at} names no stream or kind (or sets every without a document)")
        selectors.append(s)
    if not selectors:
        raise ValueError(f"{where}: evidence is empty")
    return SealedControl(
        id=cid, title=_text(entry["title"], f"{where}: title"),
        statement=_text(entry["statement"], f"{where}: statement"),
        owner=_text(entry["owner"], f"{where}: owner"),
        criteria=_criteria(entry["criteria"], f"{where}: criteria"),
        every=_text(entry["every"], f"{where}: every"), evidence=tuple(selectors),
    )


class Populations:
    """The population files a record belongs to in a snapshot of ``schema``.

    Schema v1: ``controls/<criterion>.csv`` for each criterion its ``controls`` field lists.
    Schema v2: ``criteria/<criterion>.csv`` for those, and ``controls/<ID>.csv`` for each control
    of ``library`` whose selectors match the record. Memoised per stream, kind, document type and
    criteria, so a million records cost a million dictionary look-ups.
    """

    def __init__(self, schema: str, library: SealedLibrary | None) -> None:
        self.schema = schema
        self._match = library.matcher() if library is not None else None
        self._documents = frozenset(library.document_streams) if library is not None else frozenset()
        self._cache: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self.criterion_of: dict[str, str] = {}
        """Population file name -> criterion id, for every criterion file named so far."""
        self.control_of: dict[str, str] = {}
        """Population file name -> control id, for every control file named so far."""

    def criterion(self, criterion: str) -> str:
        """The population file of ``criterion``; ValueError when it is not criterion-shaped."""
        name = fmt.criterion_file(criterion, self.schema)
        self.criterion_of[name] = criterion
        return name

    def control(self, control_id: str) -> str:
        """The population file of the organisation's control ``control_id``."""
        name = fmt.control_file(control_id)
        self.control_of[name] = control_id
        return name

    def names(self, stream: str, kind: str, source_key: str, criteria: list[str]) -> tuple[str, ...]:
        """The population files of a record; ValueError (or TypeError) for a record whose
        ``controls`` field holds something other than criterion ids."""
        filed = tuple(criteria)
        if self._match is None:
            key: tuple[Any, ...] = filed
        elif stream in self._documents:
            head, slash, _ = source_key.partition("/")
            key = (stream, kind, head if slash and head else None, filed)
        else:
            key = (stream, kind, None, filed)
        found = self._cache.get(key)
        if found is None:
            names = [self.criterion(c) for c in filed]
            if self._match is not None:
                names.extend(self.control(c) for c in self._match(stream, kind, source_key))
            found = self._cache[key] = tuple(names)
        return found
