"""The organisation's control library: controls with owners, cadence and evidence selectors, validated."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from collector.catalog import Catalog
from collector.durations import parse_duration
from collector.errors import ConfigError
from collector.readcap import MAX_CONFIG_FILE, FileRefused, read_capped
from connectors.sdk.items import KINDS

__all__ = [
    "STARTER_FILE",
    "Cadence",
    "Control",
    "ControlLibrary",
    "Selector",
    "parse_cadence",
    "starter_text",
]

STARTER_FILE = "collector/data/controls.toml"
"""How errors and ``controls.json`` name the packaged starter library."""

# The id names a file in a snapshot (controls/<ID>.csv): no '/', no leading '.', bounded length.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
_DOCUMENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_YEARS = re.compile(r"^\s*(\d+)\s*y\s*$")
_CONTROL_KEYS = ("id", "title", "statement", "owner", "criteria", "every", "evidence")
_SELECTOR_KEYS = ("stream", "kind", "document", "every")
_TEXT_KEYS = ("title", "statement", "owner")


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a control's evidence must be renewed: the text as written and its length."""

    text: str
    period: timedelta


def parse_cadence(text: str) -> Cadence:
    """Parse a duration string (collector.durations) or "<n>y" (n x 365 days); raise ValueError otherwise.

    A cadence must be positive: a zero cadence would make every control stale.
    """
    years = _YEARS.match(text)
    try:
        period = timedelta(days=365 * int(years.group(1))) if years else parse_duration(text)
    except ValueError:
        raise ValueError(f'expected a cadence like "1d", "7d", "90d" or "1y", got "{text}"') from None
    if period <= timedelta(0):
        raise ValueError(f'a cadence must be longer than zero, got "{text}"')
    return Cadence(text.strip(), period)


@dataclass(frozen=True, slots=True)
class Selector:
    """Which evidence belongs to a control: records by ``stream`` and/or ``kind`` (both must match
    when both are set), or documents and attestations by ``document`` type with an optional
    cadence of their own."""

    stream: str | None = None
    kind: str | None = None
    document: str | None = None
    every: Cadence | None = None

    @property
    def automated(self) -> bool:
        """True for a stream/kind selector, False for a document selector."""
        return self.document is None

    def matches(self, stream: str, kind: str) -> bool:
        """Whether a record of ``kind`` from ``stream`` is selected (document selectors never are)."""
        if self.document is not None:
            return False
        return (self.stream is None or self.stream == stream) and (self.kind is None or self.kind == kind)

    def as_dict(self) -> dict[str, str]:
        """The selector as written in TOML (only the keys that are set)."""
        out = {k: v for k, v in (("stream", self.stream), ("kind", self.kind),
                                 ("document", self.document)) if v is not None}
        if self.every is not None:
            out["every"] = self.every.text
        return out


@dataclass(frozen=True, slots=True)
class Control:
    """One of the organisation's controls: a testable statement, its owner, the criteria it
    supports, its cadence and the selectors naming its evidence."""

    id: str
    title: str
    statement: str
    owner: str
    criteria: tuple[str, ...]
    every: Cadence
    evidence: tuple[Selector, ...]

    def matches(self, stream: str, kind: str) -> bool:
        """Whether a record of ``kind`` from ``stream`` is evidence of this control."""
        return any(s.matches(stream, kind) for s in self.evidence)

    def matches_document(self, document_type: str) -> bool:
        """Whether a document or attestation of ``document_type`` is evidence of this control."""
        return any(s.document == document_type for s in self.evidence)

    @property
    def automated(self) -> bool:
        """True when at least one selector names records (a stream or a kind)."""
        return any(s.automated for s in self.evidence)

    @property
    def documents(self) -> tuple[tuple[str, Cadence], ...]:
        """Each required document type with its cadence (its own ``every``, else the control's)."""
        return tuple((s.document, s.every or self.every) for s in self.evidence if s.document is not None)

    def as_dict(self) -> dict[str, Any]:
        """The control as JSON-ready data (strings and lists only), in TOML key order."""
        return {"id": self.id, "title": self.title, "statement": self.statement, "owner": self.owner,
                "criteria": list(self.criteria), "every": self.every.text,
                "evidence": [s.as_dict() for s in self.evidence]}


@dataclass(frozen=True)
class ControlLibrary:
    """The controls in file order, validated against the catalog, the known streams and kinds.

    ``source`` names the file the library was read from (the packaged starter is
    ``STARTER_FILE``).
    """

    source: str
    controls: tuple[Control, ...]
    _by_pair: dict[tuple[str, str], tuple[Control, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def starter(cls, known_streams: Collection[str] | None = None) -> ControlLibrary:
        """The packaged starter library, validated against the built-in catalog and, when
        given, the known stream ids (a broken starter is a bug and raises ConfigError)."""
        return cls.from_toml(starter_text(), STARTER_FILE, Catalog.builtin(), known_streams)

    @classmethod
    def load(cls, path: str | Path, catalog: Catalog, known_streams: Collection[str]) -> ControlLibrary:
        """Read and validate a library file; any problem is one ConfigError naming the file
        and, where it lies in a control, the control."""
        file = str(path)
        try:
            text = read_capped(Path(path), MAX_CONFIG_FILE).decode("utf-8")
        except FileRefused as exc:
            raise ConfigError(file, None, f"the control library {exc}") from None
        except OSError as exc:
            raise ConfigError(file, None, f"cannot read control library: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(file, None, "control library is not UTF-8 text") from None
        return cls.from_toml(text, file, catalog, known_streams)

    @classmethod
    def from_toml(cls, text: str, file: str, catalog: Catalog,
                  known_streams: Collection[str] | None) -> ControlLibrary:
        """Validate library TOML ``text``; ``file`` names it in errors. Streams are checked
        only when ``known_streams`` is given."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(file, None, f"not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses per level of nesting
            raise ConfigError(file, None, "not valid TOML: arrays or tables nested too deeply") from None
        unknown = sorted(set(doc) - {"controls"})
        if unknown:
            raise ConfigError(file, unknown[0], "unknown key (a library holds only [[controls]])")
        entries = doc.get("controls")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(file, "controls", "no [[controls]] entries")
        checker = _Checker(file, catalog, known_streams)
        return cls(file, tuple(checker.control(i, e) for i, e in enumerate(entries)))

    def __len__(self) -> int:
        return len(self.controls)

    def get(self, control_id: str) -> Control | None:
        """The control with ``control_id``, or None."""
        return next((c for c in self.controls if c.id == control_id), None)

    def for_record(self, stream: str, kind: str) -> tuple[Control, ...]:
        """The controls a record of ``kind`` from ``stream`` is evidence of, in library order
        (memoised per pair: a digest asks once per record)."""
        pair = (stream, kind)
        found = self._by_pair.get(pair)
        if found is None:
            found = self._by_pair[pair] = tuple(c for c in self.controls if c.matches(stream, kind))
        return found

    def for_document(self, document_type: str) -> tuple[Control, ...]:
        """The controls a document or attestation of ``document_type`` is evidence of."""
        return tuple(c for c in self.controls if c.matches_document(document_type))

    def for_criterion(self, criterion: str) -> tuple[Control, ...]:
        """The controls mapped to ``criterion``, in library order."""
        return tuple(c for c in self.controls if criterion in c.criteria)

    def owners(self) -> tuple[str, ...]:
        """Every owner named in the library, sorted."""
        return tuple(sorted({c.owner for c in self.controls}))

    def as_dict(self) -> dict[str, Any]:
        """The library as JSON-ready data, e.g. for a snapshot's ``controls.json``."""
        return {"controls": [c.as_dict() for c in self.controls]}


def starter_text() -> str:
    """The packaged starter library's TOML, for ``collector controls init`` to copy."""
    return resources.files("collector").joinpath("data", "controls.toml").read_text("utf-8")


def _describe(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


class _Checker:
    """Validates entries one by one, remembering ids already seen."""

    def __init__(self, file: str, catalog: Catalog, known_streams: Collection[str] | None) -> None:
        self.file = file
        self.catalog = catalog
        self.streams = None if known_streams is None else frozenset(known_streams)
        self.seen: dict[str, str] = {}  # casefolded id -> id as first written

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(self.file, where, problem)

    def control(self, index: int, entry: Any) -> Control:
        where = f"controls[{index}]"
        if not isinstance(entry, dict):
            raise self.fail(where, f"expected a table, got {_describe(entry)}")
        cid = entry.get("id")
        if not isinstance(cid, str) or not _ID.match(cid):
            problem = "has no id" if cid is None else (
                f"id {cid!r} may hold only letters, digits, '-' and '.', start with a letter or "
                "digit, and be at most 64 characters")
            raise self.fail(where, problem)
        where = f"control {cid}"
        # Case-insensitively: controls/<ID>.csv must not collide on a case-insensitive disk.
        first = self.seen.get(cid.casefold())
        if first is not None:
            raise self.fail(where, f"id is used twice (also as {first!r})")
        self.seen[cid.casefold()] = cid
        unknown = sorted(set(entry) - set(_CONTROL_KEYS))
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r} (known keys: {', '.join(_CONTROL_KEYS)})")
        text = {key: self.text(where, entry, key) for key in _TEXT_KEYS}
        return Control(cid, text["title"], text["statement"], text["owner"],
                       self.criteria(where, entry.get("criteria")),
                       self.cadence(where, "every", entry.get("every")),
                       self.selectors(where, entry.get("evidence")))

    def text(self, where: str, entry: Mapping[str, Any], key: str) -> str:
        value = entry.get(key)
        if value is None:
            raise self.fail(where, f"required key {key!r} is missing")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"{key} must be a non-empty string, got {_describe(value)}")
        return value.strip()

    def criteria(self, where: str, value: Any) -> tuple[str, ...]:
        if value is None:
            raise self.fail(where, "required key 'criteria' is missing")
        if not isinstance(value, list) or not value:
            raise self.fail(where, "criteria must be a non-empty array of criterion ids")
        for item in value:
            if item not in self.catalog.criteria:
                raise self.fail(where, f"criteria names unknown criterion {item!r}")
        if len(set(value)) != len(value):
            raise self.fail(where, "criteria lists a criterion twice")
        return tuple(value)

    def cadence(self, where: str, key: str, value: Any) -> Cadence:
        if value is None:
            raise self.fail(where, f"required key {key!r} is missing")
        if not isinstance(value, str):
            raise self.fail(where, f'{key} must be a cadence string like "7d", got {_describe(value)}')
        try:
            return parse_cadence(value)
        except ValueError as exc:
            raise self.fail(where, f"{key}: {exc}") from None

    def selectors(self, where: str, value: Any) -> tuple[Selector, ...]:
        if value is None:
            raise self.fail(where, "required key 'evidence' is missing")
        if not isinstance(value, list) or not value:
            raise self.fail(where, "evidence must be a non-empty array of selectors")
        out = tuple(self.selector(where, f"evidence[{i}]", s) for i, s in enumerate(value))
        if len(set(out)) != len(out):
            raise self.fail(where, "evidence lists the same selector twice")
        return out

    def selector(self, where: str, key: str, value: Any) -> Selector:
        if not isinstance(value, dict):
            raise self.fail(where, f"{key} must be a table like {{stream = \"okta.users\"}}, "
                                   f"got {_describe(value)}")
        unknown = sorted(set(value) - set(_SELECTOR_KEYS))
        if unknown:
            raise self.fail(where, f"{key} has unknown key {unknown[0]!r} "
                                   f"(known keys: {', '.join(_SELECTOR_KEYS)})")
        for name in _SELECTOR_KEYS:
            if name in value and not isinstance(value[name], str):
                raise self.fail(where, f"{key}.{name} must be a string, got {_describe(value[name])}")
        stream, kind, document = value.get("stream"), value.get("kind"), value.get("document")
        if document is not None:
            if stream is not None or kind is not None:
                raise self.fail(where, f"{key} names a document and a stream or kind; use separate selectors")
            if not _DOCUMENT_TYPE.match(document):
                raise self.fail(where, f"{key} document type {document!r} may hold only lower-case "
                                       "letters, digits, '-', '_' and '.'")
            every = value.get("every")
            return Selector(document=document,
                            every=None if every is None else self.cadence(where, f"{key}.every", every))
        if stream is None and kind is None:
            raise self.fail(where, f"{key} names no stream, kind or document")
        if "every" in value:
            raise self.fail(where, f"{key}.every applies to document selectors only "
                                   "(the control's every sets the cadence of its records)")
        if stream is not None and self.streams is not None and stream not in self.streams:
            raise self.fail(where, f"{key} names unknown stream {stream!r} "
                                   f"(known streams: {', '.join(sorted(self.streams))})")
        if kind is not None and kind not in KINDS:
            raise self.fail(where, f"{key} names unknown kind {kind!r} "
                                   f"(known kinds: {', '.join(sorted(KINDS))})")
        return Selector(stream=stream, kind=kind)
