"""Configuration: one TOML file loaded into typed, validated settings; secrets stay in the environment."""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.catalog import Catalog
from collector.controls import (
    DEFAULT_CATEGORIES,
    Cadence,
    ControlLibrary,
    Scope,
    parse_cadence,
    resolve_scope,
)
from collector.durations import duration_limit, format_duration, parse_duration
from collector.errors import ConfigError
from collector.readcap import MAX_CONFIG_FILE, FileRefused, read_capped
from connectors.sdk.base import ConnectorConfig
from connectors.sdk.registry import BUILTIN_STREAMS, ConnectorLoadError, Registry

if TYPE_CHECKING:
    from storage import Store

__all__ = [
    "DEFAULT_CONFIG",
    "DERIVED_STREAMS",
    "MANUAL_STREAMS",
    "ConfigProblems",
    "DaemonSettings",
    "DigestSettings",
    "FilesSettings",
    "IdentitySettings",
    "IntakeSettings",
    "PeopleRequirement",
    "PeopleSettings",
    "SealSettings",
    "Settings",
    "SigningSettings",
    "StorageSettings",
    "WindowSettings",
    "config_path",
    "known_stream_ids",
    "load_settings",
    "open_store",
    "parse_section",
]

DEFAULT_CONFIG = "config.toml"
T = TypeVar("T")


MIN_INTERVAL = timedelta(seconds=1)
"""The shortest collection interval (tests and the soak bench use it); "0s" is a typing mistake."""


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    """Where evidence is stored."""

    url: str = "sqlite:///data/evidence.db"
    batch_size: int = 5000
    flush_seconds: int = 2


@dataclass(frozen=True, kw_only=True)
class WindowSettings:
    """Observation windows: calendar periods in a time zone, sealed after a grace period."""

    period: str = "month"
    timezone: str = "UTC"
    seal_grace: timedelta = timedelta(days=1)
    start: str = ""
    """First day of the observation period ("YYYY-MM-DD"): the sealed chain begins with the window
    containing it; "" = with the window of the oldest stored record."""


@dataclass(frozen=True, kw_only=True)
class SigningSettings:
    """The sealing key and an optional RFC 3161 time-stamping authority."""

    key_file: str = "data/keys/seal-ed25519.pem"
    tsa_url: str = ""


@dataclass(frozen=True, kw_only=True)
class SealSettings:
    """``[seal]``: where snapshots are written, by the daemon, ``collector seal`` and the demo alike."""

    out_dir: str = "data/snapshots"
    """A folder, relative to the config's folder."""


@dataclass(frozen=True, kw_only=True)
class DigestSettings:
    """Where the weekly digest is written and delivered."""

    out_dir: str = "data/digests"
    schedule: str = "mon 07:00"
    slack_webhook_env: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password_env: str = ""
    smtp_starttls: bool = True
    smtp_ca_file: str = ""
    mail_from: str = ""
    mail_to: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """The daemon's health/metrics listener and when it calls a stream unhealthy."""

    listen: str = "127.0.0.1:9108"
    max_consecutive_failures: int = 3
    max_connections: int = 32
    """Connections the listener holds at once (1..1024); past it the oldest idle one is dropped."""
    request_timeout: timedelta = timedelta(seconds=10)
    """How long a client may take to send its request, and to read the answer (1s..5m)."""


@dataclass(frozen=True, kw_only=True)
class FilesSettings:
    """``[files]``: the write-once blob store documents go to (never the database)."""

    url: str = "data/files"
    """A folder (relative to the config's folder), ``file:///path`` or ``s3://bucket/prefix``."""
    object_lock_days: int = 0
    """S3 only: a COMPLIANCE-mode retention of this many days on every upload (0 = none)."""


@dataclass(frozen=True, kw_only=True)
class IntakeSettings:
    """``[intake]``: a folder the daemon watches for documents with a TOML sidecar ("" = off)."""

    folder: str = ""
    interval: timedelta = timedelta(minutes=5)
    settle: timedelta = timedelta(seconds=10)
    """A file or sidecar modified more recently than this is left for the next pass (still
    being copied in)."""


@dataclass(frozen=True, slots=True)
class PeopleRequirement:
    """``[[people.require]]``: every person of the roster holds an attestation of ``type`` about
    ``item``, renewed within ``every`` when set (yearly training), else at any time."""

    type: str
    item: str
    every: Cadence | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The requirement as written (``every`` as its text, or None)."""
        return {"type": self.type, "item": self.item,
                "every": None if self.every is None else self.every.text}


@dataclass(frozen=True, kw_only=True)
class PeopleSettings:
    """``[people]``: who must acknowledge what. ``roster`` is ``"okta"`` (the active users of the
    latest okta.users read), a CSV file with an ``roster_column`` column of emails, or "" (off)."""

    roster: str = ""
    roster_column: str = "email"
    require: tuple[PeopleRequirement, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The whole validated configuration."""

    path: Path
    storage: StorageSettings = field(default_factory=StorageSettings)
    windows: WindowSettings = field(default_factory=WindowSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    seal: SealSettings = field(default_factory=SealSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    files: FilesSettings = field(default_factory=FilesSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    people: PeopleSettings = field(default_factory=PeopleSettings)
    # A lambda: IdentitySettings is defined below, with its loader, in the [identities] block.
    identities: IdentitySettings = field(default_factory=lambda: IdentitySettings())  # noqa: PLW0108
    connectors: Mapping[str, ConnectorConfig] = field(default_factory=dict)
    filing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    controls_library: str = ""
    """``[controls] library``: the organisation's control library file ("" = the starter)."""
    library: ControlLibrary = field(default_factory=ControlLibrary.starter, compare=False, repr=False)
    """The control library, validated at load against the catalog and the known streams."""
    scope: Scope = field(default_factory=lambda: resolve_scope(Catalog.builtin()))
    """``[scope]``: the criteria in scope (categories minus exclusions, each with its reason)."""
    registry: Registry = field(default_factory=Registry, compare=False, repr=False)
    """The connectors this config was validated against; every later lookup (planning,
    opening, the digest's scope) goes through it, so each connector is imported once."""

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config are relative to the config file's directory."""
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A config path made absolute against the config file's directory."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def storage_url(self) -> str:
        """The SQLAlchemy URL, with a relative SQLite path resolved against the config's directory."""
        url = self.storage.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////"):
            rest = url[len(prefix):]
            if rest and rest != ":memory:":
                return prefix + str(self.resolve(rest))
        return url

    @property
    def files_url(self) -> str:
        """``[files] url`` with a relative folder resolved against the config's directory."""
        url = self.files.url
        return url if "://" in url else str(self.resolve(url))

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.windows.timezone)

    def enabled_connectors(self) -> dict[str, ConnectorConfig]:
        """Connector sections with ``enabled = true``."""
        return {name: cfg for name, cfg in self.connectors.items() if cfg.enabled}


def open_store(settings: Settings) -> Store:
    """Open (and migrate) the store ``[storage].url`` names; a failure is a ConfigError naming that key."""
    # Imported here: SQLAlchemy is paid for only by the commands that open the store.
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from storage import Store, StoreError

    try:
        return Store.open(settings.storage_url)
    except (StoreError, OSError) as exc:  # OSError: the database's folder cannot be made
        raise ConfigError(str(settings.path), "storage.url", str(exc).splitlines()[0]) from None
    except (ArgumentError, NoSuchModuleError) as exc:  # not a URL SQLAlchemy knows
        raise ConfigError(str(settings.path), "storage.url",
                          f"not a database URL this collector can open: {exc}") from None


def config_path(explicit: str | None) -> Path:
    """``--config``, else ``$COLLECTOR_CONFIG``, else ``./config.toml``."""
    return Path(explicit or os.environ.get("COLLECTOR_CONFIG") or DEFAULT_CONFIG)


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, dict | list) else kind
    return f"{kind} {shown}" if kind not in ("table", "array") else kind


def _coerce(file: str, key: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against the field type ``hint`` and convert it; ConfigError if it does not fit."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if type(value) is bool:
            return value
        raise ConfigError(file, key, f"expected true or false, got {_describe(value)}")
    if hint is int:
        if type(value) is int:
            return value
        raise ConfigError(file, key, f"expected an integer, got {_describe(value)}")
    if hint is str:
        if type(value) is str:
            return value
        raise ConfigError(file, key, f"expected a string, got {_describe(value)}")
    if hint is timedelta:
        if type(value) is not str:
            raise ConfigError(
                file, key, f'expected a duration string like "15m" or "1d", got {_describe(value)}'
            )
        limit = duration_limit(key)
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(file, key, str(exc)) from None
        except OverflowError:
            parsed = limit + limit
        if parsed > limit:
            raise ConfigError(file, key, f"{value!r} is too long (at most {format_duration(limit)})")
        return parsed
    if origin is tuple:
        if type(value) is not list:
            raise ConfigError(file, key, f"expected an array of strings, got {_describe(value)}")
        for index, item in enumerate(value):
            if type(item) is not str:
                raise ConfigError(
                    file, f"{key}[{index}]", f"expected a string, got {_describe(item)}"
                )
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(file, key, "unsupported optional field")  # not used by our settings
    raise ConfigError(file, key, f"unsupported field type {hint!r}")  # a bug in a connector


def parse_section(cls: type[T], table: Any, file: str, prefix: str) -> T:
    """Build dataclass ``cls`` from a TOML table, refusing unknown, missing and mistyped keys
    (every bad key of the table in one ConfigError)."""
    if not isinstance(table, dict):
        raise ConfigError(file, prefix, f"expected a table, got {_describe(table)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init and f.name != "path"}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    problems = ConfigProblems()
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        if key not in known:
            choices = ", ".join(sorted(known))
            problems.add(ConfigError(file, dotted, f"unknown key (known keys: {choices})"))
            continue
        with problems.section():
            values[key] = _coerce(file, dotted, hints[key], value)
    for name, spec in known.items():
        required = spec.metadata.get("required") or (
            spec.default is MISSING and spec.default_factory is MISSING
        )
        if required and name not in table:
            problems.add(ConfigError(file, f"{prefix}.{name}", "required key is missing"))
    problems.raise_any()
    return cls(**values)


class ConfigProblems:
    """Every problem found in one config, in the order found: each section's loader runs inside
    ``section()`` (its ConfigError is recorded and loading goes on), and ``raise_any()`` raises
    them all as one ConfigError, so one run reports every problem of the file."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        """Record one problem (or every problem of a combined error)."""
        self.errors.append(error)

    @contextmanager
    def section(self) -> Iterator[None]:
        """Run a section's loading; a ConfigError it raises is recorded instead of propagating."""
        try:
            yield
        except ConfigError as exc:
            self.add(exc)

    def load(self, loader: Callable[[], T], fallback: T) -> T:
        """``loader()``, or ``fallback`` (recording its problems) when it raises ConfigError."""
        try:
            return loader()
        except ConfigError as exc:
            self.add(exc)
            return fallback

    def raise_any(self) -> None:
        """Raise one ConfigError listing every recorded problem; nothing when there is none."""
        if self.errors:
            raise ConfigError.all_of(self.errors)


def _retired_keys(file: str, table: Any) -> Any:
    """``[storage]`` without keys an earlier version had: still accepted (when well typed), so an
    old config loads, with one warning line each; they change nothing."""
    if not isinstance(table, dict) or "writer_process" not in table:
        return table
    table = dict(table)
    _coerce(file, "storage.writer_process", bool, table.pop("writer_process"))
    import structlog  # only on this rare path: structlog costs ~50 ms of every start

    structlog.get_logger("collector.config").warning(
        "config_key_ignored", file=file, key="storage.writer_process",
        reason="the writer process was removed; every run commits its own batches")
    return table


def _check_windows(file: str, windows: WindowSettings) -> None:
    if windows.period not in ("week", "month", "quarter"):
        raise ConfigError(
            file, "windows.period", f'expected "week", "month" or "quarter", got "{windows.period}"'
        )
    try:
        ZoneInfo(windows.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            file, "windows.timezone", f'unknown time zone "{windows.timezone}"'
        ) from None
    if windows.start:
        from datetime import date

        try:
            if len(windows.start) != 10:
                raise ValueError
            date.fromisoformat(windows.start)
        except ValueError:
            raise ConfigError(file, "windows.start",
                              f'expected a date like "2026-09-01", got "{windows.start}"') from None


def _check_listen(file: str, listen: str) -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(file, "daemon.listen", f'expected "host:port", got "{listen}"')


def _check_daemon_limits(file: str, daemon: DaemonSettings) -> None:
    if not 1 <= daemon.max_connections <= 1024:
        raise ConfigError(file, "daemon.max_connections",
                          f"must be between 1 and 1024, got {daemon.max_connections}")
    if daemon.request_timeout < timedelta(seconds=1):  # its maximum is in DURATION_LIMITS
        raise ConfigError(file, "daemon.request_timeout", "must be at least 1s")


_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _check_env_names(file: str, prefix: str, section: Any, keys: tuple[str, ...]) -> None:
    """Each ``*_env`` key names an environment variable (``[A-Z_][A-Z0-9_]*``) or is empty; a
    value that is not a name is likely the secret itself, so the error never shows it."""
    for key in keys:
        value = getattr(section, key)
        if value and not _ENV_NAME.fullmatch(value):
            raise ConfigError(file, f"{prefix}.{key}", f"must name an environment variable (A-Z, 0-9 "
                              f"and _, not starting with a digit), not hold the secret: put the secret in "
                              f"the environment and its variable's name here (the value, {len(value)} "
                              "characters, is not shown)")


def _check_schedule(file: str, schedule: str) -> None:
    match = re.fullmatch(r"(mon|tue|wed|thu|fri|sat|sun) (\d{1,2}):(\d{2})", schedule.strip())
    if not match or int(match.group(2)) > 23 or int(match.group(3)) > 59:
        raise ConfigError(
            file, "digest.schedule", f'expected a weekday and time like "mon 07:00", got "{schedule}"'
        )


MANUAL_STREAMS = ("manual.documents", "manual.attestations")
"""The built-in streams of evidence people bring (documents and attestations)."""

DERIVED_STREAMS = ("people.coverage", "identity.offboarding", "identity.orphans",
                   "identity.revocations")
"""Built-in streams computed from stored records (never a document type's evidence)."""


def known_stream_ids(registry: Registry, connectors: Mapping[str, ConnectorConfig]) -> set[str]:
    """Every stream id a control library may name: the built-ins' (without importing them), the
    manual streams, and the streams of the third-party connectors this config names."""
    known = {f"{c}.{s}" for c, names in BUILTIN_STREAMS.items() for s in names}
    known.update(MANUAL_STREAMS)
    known.update(DERIVED_STREAMS)
    for name in connectors:
        known.update(f"{name}.{s}" for s in registry.stream_names(name))
    return known


def _load_library(file: str, table: Any, catalog: Catalog, registry: Registry,
                  connectors: Mapping[str, ConnectorConfig], base: Path) -> tuple[str, ControlLibrary]:
    """``[controls]``: the library file (relative to the config's folder), or the starter."""
    if not isinstance(table, dict):
        raise ConfigError(file, "controls", "expected a table")
    for key in table:
        if key == "in_scope":
            raise ConfigError(file, "controls.in_scope", "replaced by [scope] categories and "
                                                         "[scope] exclude (with a reason per criterion)")
        if key != "library":
            raise ConfigError(file, f"controls.{key}", "unknown key (known keys: library)")
    library_file = _coerce(file, "controls.library", str, table.get("library", ""))
    known = known_stream_ids(registry, connectors)
    if not library_file:
        return "", ControlLibrary.starter(known)
    candidate = Path(library_file).expanduser()
    resolved = candidate if candidate.is_absolute() else base / candidate
    if not resolved.is_file():
        raise ConfigError(file, "controls.library", f"{resolved} is not a readable file (`collector "
                                                    "controls init` writes the starter there)")
    return library_file, ControlLibrary.load(resolved, catalog, known)


def _load_scope(file: str, table: Any, catalog: Catalog) -> Scope:
    """``[scope]``: categories (default security) minus exclusions, each with its reason."""
    if not isinstance(table, dict):
        raise ConfigError(file, "scope", "expected a table")
    for key in table:
        if key not in ("categories", "exclude"):
            raise ConfigError(file, f"scope.{key}", "unknown key (known keys: categories, exclude)")
    categories = _coerce(file, "scope.categories", tuple[str, ...],
                         table.get("categories", list(DEFAULT_CATEGORIES)))
    exclude = table.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, dict) for e in exclude):
        raise ConfigError(file, "scope.exclude",
                          'expected an array of tables like {criterion = "CC6.4", reason = "…"}')
    return resolve_scope(catalog, categories, exclude, file)


def _check_files(file: str, files: FilesSettings) -> None:
    if not files.url.strip():
        raise ConfigError(file, "files.url", 'expected a folder, file:///path or s3://bucket/prefix, got ""')
    if files.object_lock_days < 0:
        raise ConfigError(file, "files.object_lock_days", "must be 0 or more")
    if files.object_lock_days and not files.url.startswith("s3://"):
        raise ConfigError(file, "files.object_lock_days", "needs an s3:// url with Object Lock; a "
                                                          "local folder cannot enforce retention")
    if "://" in files.url and not files.url.startswith(("s3://", "file://")):
        raise ConfigError(file, "files.url", f'expected a folder, file:///path or s3://bucket/prefix, '
                                             f'got "{files.url}"')


_ATTESTATION_TYPE = re.compile(r"[a-z][a-z0-9_]*")


def _load_people(file: str, table: Any, library: ControlLibrary) -> PeopleSettings:
    """``[people]``: the roster and each ``[[people.require]]``, whose type a control must require
    (its exceptions are filed under that control's criteria)."""
    if not isinstance(table, dict):
        raise ConfigError(file, "people", "expected a table")
    known = ("roster", "roster_column", "require")
    for key in table:
        if key not in known:
            raise ConfigError(file, f"people.{key}", f"unknown key (known keys: {', '.join(known)})")
    roster = _coerce(file, "people.roster", str, table.get("roster", ""))
    column = _coerce(file, "people.roster_column", str, table.get("roster_column", "email"))
    entries = table.get("require", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(file, "people.require", 'expected [[people.require]] tables like '
                                                  '{type = "policy_ack", item = "infosec-policy@v3"}')
    required: list[PeopleRequirement] = []
    for index, entry in enumerate(entries):
        where = f"people.require[{index}]"
        for key in entry:
            if key not in ("type", "item", "every"):
                raise ConfigError(file, f"{where}.{key}", "unknown key (known keys: type, item, every)")
        kind = _coerce(file, f"{where}.type", str, entry.get("type", ""))
        item = " ".join(_coerce(file, f"{where}.item", str, entry.get("item", "")).split())
        if not _ATTESTATION_TYPE.fullmatch(kind):
            raise ConfigError(file, f"{where}.type", f"expected an attestation type like "
                                                     f'"policy_ack" or "training", got "{kind}"')
        if not item:
            raise ConfigError(file, f"{where}.item", "required: what must be acknowledged or completed")
        if not library.for_document(kind):
            raise ConfigError(file, f"{where}.type",
                              f'no control of the library requires "{kind}" '
                              f'(add {{document = "{kind}"}} to a control\'s evidence)')
        every = None
        if "every" in entry:
            text = _coerce(file, f"{where}.every", str, entry["every"])
            try:
                every = parse_cadence(text)
            except ValueError as exc:
                raise ConfigError(file, f"{where}.every", str(exc)) from None
        if any(r.type == kind and r.item == item for r in required):
            raise ConfigError(file, where, f"{kind} of {item!r} is required twice")
        required.append(PeopleRequirement(kind, item, every))
    if required and not roster:
        raise ConfigError(file, "people.roster", 'required with [[people.require]]: "okta" or a CSV file')
    if roster and roster != "okta" and not column.strip():
        raise ConfigError(file, "people.roster_column", "the roster CSV's email column must be named")
    return PeopleSettings(roster=roster, roster_column=column.strip(), require=tuple(required))


def _load_seal(file: str, table: Any) -> SealSettings:
    """``[seal]``: ``out_dir`` names a folder."""
    seal = parse_section(SealSettings, table, file, "seal")
    if not seal.out_dir.strip():
        raise ConfigError(file, "seal.out_dir", 'expected a folder such as "data/snapshots", got ""')
    return seal


def _load_storage(file: str, table: Any) -> StorageSettings:
    """``[storage]``: a file-backed SQLite or PostgreSQL URL and positive batch limits."""
    storage = parse_section(StorageSettings, _retired_keys(file, table), file, "storage")
    problems = ConfigProblems()
    if storage.batch_size < 1:
        problems.add(ConfigError(file, "storage.batch_size", "must be at least 1"))
    if storage.flush_seconds < 1:
        problems.add(ConfigError(file, "storage.flush_seconds", "must be at least 1"))
    if not storage.url.startswith(("sqlite://", "postgresql")):
        problems.add(ConfigError(file, "storage.url",
                                 "expected a sqlite:/// or postgresql+psycopg:// URL"))
    elif storage.url.split("?")[0] in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        problems.add(ConfigError(file, "storage.url", "an in-memory SQLite store keeps nothing; name "
                                                      'a file such as "sqlite:///data/evidence.db"'))
    problems.raise_any()
    return storage


def _load_connectors(file: str, tables: Any, registry: Registry,
                     problems: ConfigProblems) -> dict[str, ConnectorConfig]:
    """``[connectors.<name>]``: each known connector's typed config; every problem of every
    section goes to ``problems`` and a connector with one is left out."""
    if not isinstance(tables, dict):
        problems.add(ConfigError(file, "connectors", "expected a table of connector sections"))
        return {}
    connectors: dict[str, ConnectorConfig] = {}
    for name, table in tables.items():
        # Only the connectors the file names are imported (each imports its vendor SDK).
        if name not in registry:
            problems.add(ConfigError(file, f"connectors.{name}",
                                     f"unknown connector (available: {', '.join(registry.names())})"))
            continue
        try:
            connector = registry.load(name)
        except ConnectorLoadError as exc:
            problems.add(ConfigError(file, f"connectors.{name}", str(exc)))
            continue
        try:
            cfg = parse_section(connector.config_type, table, file, f"connectors.{name}")
        except ConfigError as exc:
            problems.add(exc)
            continue
        before = len(problems.errors)
        for index, stream in enumerate(cfg.streams):
            if stream not in connector.stream_names():
                problems.add(ConfigError(
                    file, f"connectors.{name}.streams[{index}]",
                    f'unknown stream "{stream}" (available: {", ".join(connector.stream_names())})'))
        for key, problem in cfg.problems():
            problems.add(ConfigError(file, f"connectors.{name}.{key}", problem))
        with problems.section():
            _check_env_names(file, f"connectors.{name}", cfg, cfg.env_keys())
        if cfg.interval < MIN_INTERVAL:
            problems.add(ConfigError(file, f"connectors.{name}.interval",
                                     f"must be at least {int(MIN_INTERVAL.total_seconds())}s"))
        if len(problems.errors) == before:
            connectors[name] = cfg
    return connectors


def _load_filing(file: str, table: Any, registry: Registry,
                 catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """``[filing]``: stream = [criteria], each stream known and each criterion in the catalog."""
    if not isinstance(table, dict):
        raise ConfigError(file, "filing", "expected a table of stream = [criteria]")
    problems = ConfigProblems()
    filing: dict[str, tuple[str, ...]] = {}
    for stream, criteria in table.items():
        key = f'filing."{stream}"'
        if not registry.knows_stream(stream):
            problems.add(ConfigError(file, key, f'unknown stream "{stream}"'))
            continue
        with problems.section():
            filing[stream] = _coerce(file, key, tuple[str, ...], criteria)
            for criterion in filing[stream]:
                if criterion not in catalog.criteria:
                    problems.add(ConfigError(file, key, f'unknown criterion "{criterion}"'))
    problems.raise_any()
    return filing
# --- [identities] (people across systems) -------------------------------------------------------

IDENTITY_SYSTEMS = ("github", "aws")
"""The systems whose account names ``[identities.overrides.<system>]`` may link to an email."""


@dataclass(frozen=True, kw_only=True)
class IdentitySettings:
    """``[identities]``: how accounts link to people (an email) beyond the source's own email.

    ``overrides`` maps a system (``github``: a login, ``aws``: an IAM user name, both lowercased)
    to the person's email; ``service_accounts`` are account names (``name`` in any system, or
    ``github:name`` / ``aws:name``) that never count as people. An account still active more than
    ``offboarding_grace`` after its person left Okta, or more than ``revoke_grace`` after a review
    decided to revoke it, is an exception."""

    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    service_accounts: tuple[str, ...] = ()
    offboarding_grace: timedelta = timedelta(hours=24)
    revoke_grace: timedelta = timedelta(days=7)

    def is_service_account(self, system: str, name: str) -> bool:
        """Whether ``name`` in ``system`` is a declared service account (case-insensitive)."""
        lowered = name.lower()
        return lowered in self.service_accounts or f"{system}:{lowered}" in self.service_accounts


_EMAIL_TEXT = re.compile(r"[^@\s/]+@[^@\s/.]+(\.[^@\s/.]+)+")


def _load_identities(file: str, table: Any) -> IdentitySettings:
    """``[identities]`` and its ``[identities.overrides.github|aws]`` tables of name = email."""
    if not isinstance(table, dict):
        raise ConfigError(file, "identities", "expected a table")
    known = ("overrides", "service_accounts", "offboarding_grace", "revoke_grace")
    for key in table:
        if key not in known:
            raise ConfigError(file, f"identities.{key}", f"unknown key (known keys: {', '.join(known)})")
    raw_overrides = table.get("overrides", {})
    if not isinstance(raw_overrides, dict):
        raise ConfigError(file, "identities.overrides", "expected tables like [identities.overrides.github]")
    overrides: dict[str, dict[str, str]] = {}
    for system, names in raw_overrides.items():
        where = f"identities.overrides.{system}"
        if system not in IDENTITY_SYSTEMS:
            raise ConfigError(file, where, f"unknown system (known: {', '.join(IDENTITY_SYSTEMS)})")
        if not isinstance(names, dict):
            raise ConfigError(file, where, 'expected a table of account name = "email"')
        linked: dict[str, str] = {}
        for name, email in names.items():
            value = _coerce(file, f"{where}.{name}", str, email).strip().lower()
            if not _EMAIL_TEXT.fullmatch(value):
                raise ConfigError(file, f"{where}.{name}", f"{email!r} is not an email address")
            if name.lower() in linked:
                raise ConfigError(file, f"{where}.{name}", "this account is linked twice (names are "
                                                           "case-insensitive)")
            linked[name.lower()] = value
        overrides[system] = linked
    services = _coerce(file, "identities.service_accounts", tuple[str, ...],
                       table.get("service_accounts", []))
    for index, name in enumerate(services):
        system, sep, rest = name.partition(":")
        if not name.strip() or (sep and (system not in IDENTITY_SYSTEMS or not rest)):
            raise ConfigError(file, f"identities.service_accounts[{index}]",
                              f'expected an account name or "github:name" / "aws:name", got {name!r}')
    durations = {}
    for key, default in (("offboarding_grace", "24h"), ("revoke_grace", "7d")):
        durations[key] = _coerce(file, f"identities.{key}", timedelta, table.get(key, default))
    return IdentitySettings(overrides=overrides,
                            service_accounts=tuple(s.strip().lower() for s in services), **durations)

# --- end [identities] ---------------------------------------------------------------------------


def load_settings(path: Path) -> Settings:
    """Read and validate the config file; every problem found is reported by one ConfigError
    (``problems``: each naming file and key)."""
    file = str(path)
    try:
        raw = read_capped(path, MAX_CONFIG_FILE)
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read file: {exc.strerror or exc}") from None
    except FileRefused as exc:
        raise ConfigError(file, None, f"the config file {exc}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(file, None, "file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per level: a few hundred nested arrays or tables
        raise ConfigError(file, None, "invalid TOML: arrays or tables nested too deeply") from None

    sections = {"storage", "windows", "signing", "digest", "daemon", "connectors", "filing",
                "controls", "scope", "files", "intake", "people", "seal", "identities"}
    # Every section is loaded even after one fails (a failed one falls back to its defaults), so
    # one run reports every problem of the file. A section's loader appends to `problems`.
    problems = ConfigProblems()
    for key in doc:
        if key not in sections:
            problems.add(ConfigError(file, key, f"unknown section (known: {', '.join(sorted(sections))})"))

    storage = problems.load(lambda: _load_storage(file, doc.get("storage", {})), StorageSettings())
    windows = problems.load(lambda: parse_section(WindowSettings, doc.get("windows", {}), file,
                                                  "windows"), WindowSettings())
    with problems.section():
        _check_windows(file, windows)
    signing = problems.load(lambda: parse_section(SigningSettings, doc.get("signing", {}), file,
                                                  "signing"), SigningSettings())
    seal = problems.load(lambda: _load_seal(file, doc.get("seal", {})), SealSettings())
    digest = problems.load(lambda: parse_section(DigestSettings, doc.get("digest", {}), file,
                                                 "digest"), DigestSettings())
    with problems.section():
        _check_schedule(file, digest.schedule)
    with problems.section():
        _check_env_names(file, "digest", digest, ("slack_webhook_env", "smtp_password_env"))
    daemon = problems.load(lambda: parse_section(DaemonSettings, doc.get("daemon", {}), file,
                                                 "daemon"), DaemonSettings())
    with problems.section():
        _check_listen(file, daemon.listen)
    if daemon.max_consecutive_failures < 1:
        problems.add(ConfigError(file, "daemon.max_consecutive_failures", "must be at least 1"))
    with problems.section():
        _check_daemon_limits(file, daemon)

    registry = Registry()
    connectors = _load_connectors(file, doc.get("connectors", {}), registry, problems)
    catalog = Catalog.builtin()
    no_filing: dict[str, tuple[str, ...]] = {}
    filing = problems.load(lambda: _load_filing(file, doc.get("filing", {}), registry, catalog),
                           no_filing)
    loaded_library = problems.load(
        lambda: _load_library(file, doc.get("controls", {}), catalog, registry, connectors,
                              path.resolve().parent), None)
    library_file, library = loaded_library or ("", ControlLibrary.starter(
        known_stream_ids(registry, connectors)))
    scope = problems.load(lambda: _load_scope(file, doc.get("scope", {}), catalog),
                          resolve_scope(catalog))
    files = problems.load(lambda: parse_section(FilesSettings, doc.get("files", {}), file, "files"),
                          FilesSettings())
    with problems.section():
        _check_files(file, files)
    intake = problems.load(lambda: parse_section(IntakeSettings, doc.get("intake", {}), file,
                                                 "intake"), IntakeSettings())
    if intake.folder and intake.interval < MIN_INTERVAL:
        problems.add(ConfigError(file, "intake.interval",
                                 f"must be at least {int(MIN_INTERVAL.total_seconds())}s"))
    # [people] names the library's document types: checked only against a library that loaded.
    people = PeopleSettings() if loaded_library is None else problems.load(
        lambda: _load_people(file, doc.get("people", {}), library), PeopleSettings())
    identities = problems.load(lambda: _load_identities(file, doc.get("identities", {})),
                               IdentitySettings())
    problems.raise_any()

    return Settings(
        path=path.resolve(),
        storage=storage,
        windows=windows,
        signing=signing,
        seal=seal,
        digest=digest,
        daemon=daemon,
        connectors=connectors,
        filing=filing,
        controls_library=library_file,
        library=library,
        scope=scope,
        files=files,
        intake=intake,
        people=people,
        identities=identities,
        registry=registry,
    )
