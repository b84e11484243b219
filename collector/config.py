"""Configuration: one TOML file loaded into typed, validated settings; secrets stay in the environment."""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from collector.durations import parse_duration
from collector.errors import ConfigError
from connectors.sdk.base import ConnectorConfig

__all__ = [
    "DEFAULT_CONFIG",
    "DaemonSettings",
    "DigestSettings",
    "Settings",
    "SigningSettings",
    "StorageSettings",
    "WindowSettings",
    "config_path",
    "load_settings",
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


@dataclass(frozen=True, kw_only=True)
class SigningSettings:
    """The sealing key and an optional RFC 3161 time-stamping authority."""

    key_file: str = "data/keys/seal-ed25519.pem"
    tsa_url: str = ""


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


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The whole validated configuration."""

    path: Path
    storage: StorageSettings = field(default_factory=StorageSettings)
    windows: WindowSettings = field(default_factory=WindowSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    connectors: Mapping[str, ConnectorConfig] = field(default_factory=dict)
    filing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    in_scope: tuple[str, ...] = ()

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
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.windows.timezone)

    def enabled_connectors(self) -> dict[str, ConnectorConfig]:
        """Connector sections with ``enabled = true``."""
        return {name: cfg for name, cfg in self.connectors.items() if cfg.enabled}


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
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(file, key, str(exc)) from None
        except OverflowError:
            raise ConfigError(file, key, f"{value!r} is too long a duration") from None
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
    """Build dataclass ``cls`` from a TOML table, refusing unknown, missing and mistyped keys."""
    if not isinstance(table, dict):
        raise ConfigError(file, prefix, f"expected a table, got {_describe(table)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init and f.name != "path"}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        if key not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(file, dotted, f"unknown key (known keys: {choices})")
        values[key] = _coerce(file, dotted, hints[key], value)
    for name, spec in known.items():
        required = spec.metadata.get("required") or (
            spec.default is MISSING and spec.default_factory is MISSING
        )
        if required and name not in values:
            raise ConfigError(file, f"{prefix}.{name}", "required key is missing")
    return cls(**values)




def _retired_keys(file: str, table: Any) -> Any:
    """``[storage]`` without keys an earlier version had: still accepted (when well typed), so an
    old config loads, with one warning line each; they change nothing."""
    if not isinstance(table, dict) or "writer_process" not in table:
        return table
    table = dict(table)
    _coerce(file, "storage.writer_process", bool, table.pop("writer_process"))
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


def _check_listen(file: str, listen: str) -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(file, "daemon.listen", f'expected "host:port", got "{listen}"')


def _check_schedule(file: str, schedule: str) -> None:
    match = re.fullmatch(r"(mon|tue|wed|thu|fri|sat|sun) (\d{1,2}):(\d{2})", schedule.strip())
    if not match or int(match.group(2)) > 23 or int(match.group(3)) > 59:
        raise ConfigError(
            file, "digest.schedule", f'expected a weekday and time like "mon 07:00", got "{schedule}"'
        )


def load_settings(path: Path) -> Settings:
    """Read and validate the config file; every problem is one ConfigError naming file and key."""
    # Imported here so that `collector verify` never pays for the connector registry.
    from collector.catalog import Catalog
    from connectors.sdk.registry import discover

    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read file: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(file, None, "file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"invalid TOML: {exc}") from None

    sections = {"storage", "windows", "signing", "digest", "daemon", "connectors", "filing",
                "controls"}
    for key in doc:
        if key not in sections:
            raise ConfigError(file, key, f"unknown section (known: {', '.join(sorted(sections))})")

    storage = parse_section(StorageSettings, _retired_keys(file, doc.get("storage", {})), file,
                            "storage")
    if storage.batch_size < 1:
        raise ConfigError(file, "storage.batch_size", "must be at least 1")
    if storage.flush_seconds < 1:
        raise ConfigError(file, "storage.flush_seconds", "must be at least 1")
    if not storage.url.startswith(("sqlite://", "postgresql")):
        raise ConfigError(file, "storage.url", "expected a sqlite:/// or postgresql+psycopg:// URL")
    if storage.url.split("?")[0] in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        raise ConfigError(file, "storage.url", "an in-memory SQLite store keeps nothing; name a file "
                                               'such as "sqlite:///data/evidence.db"')
    windows = parse_section(WindowSettings, doc.get("windows", {}), file, "windows")
    _check_windows(file, windows)
    signing = parse_section(SigningSettings, doc.get("signing", {}), file, "signing")
    digest = parse_section(DigestSettings, doc.get("digest", {}), file, "digest")
    _check_schedule(file, digest.schedule)
    daemon = parse_section(DaemonSettings, doc.get("daemon", {}), file, "daemon")
    _check_listen(file, daemon.listen)
    if daemon.max_consecutive_failures < 1:
        raise ConfigError(file, "daemon.max_consecutive_failures", "must be at least 1")

    registry = discover().connectors
    connector_tables = doc.get("connectors", {})
    if not isinstance(connector_tables, dict):
        raise ConfigError(file, "connectors", "expected a table of connector sections")
    connectors: dict[str, ConnectorConfig] = {}
    for name, table in connector_tables.items():
        if name not in registry:
            raise ConfigError(
                file, f"connectors.{name}",
                f"unknown connector (available: {', '.join(sorted(registry))})",
            )
        connector = registry[name]
        cfg = parse_section(connector.config_type, table, file, f"connectors.{name}")
        for index, stream in enumerate(cfg.streams):
            if stream not in connector.stream_names():
                raise ConfigError(
                    file, f"connectors.{name}.streams[{index}]",
                    f'unknown stream "{stream}" (available: {", ".join(connector.stream_names())})',
                )
        for key, problem in getattr(cfg, "problems", lambda: [])():
            raise ConfigError(file, f"connectors.{name}.{key}", problem)
        if cfg.interval < MIN_INTERVAL:
            raise ConfigError(file, f"connectors.{name}.interval",
                              f"must be at least {int(MIN_INTERVAL.total_seconds())}s")
        connectors[name] = cfg

    catalog = Catalog.builtin()
    all_streams = {sid for c in registry.values() for sid in c.stream_ids()}
    filing_table = doc.get("filing", {})
    if not isinstance(filing_table, dict):
        raise ConfigError(file, "filing", "expected a table of stream = [criteria]")
    filing: dict[str, tuple[str, ...]] = {}
    for stream, criteria in filing_table.items():
        key = f'filing."{stream}"'
        if stream not in all_streams:
            raise ConfigError(file, key, f'unknown stream "{stream}"')
        filing[stream] = _coerce(file, key, tuple[str, ...], criteria)
        for criterion in filing[stream]:
            if criterion not in catalog.criteria:
                raise ConfigError(file, key, f'unknown criterion "{criterion}"')

    controls = doc.get("controls", {})
    if not isinstance(controls, dict):
        raise ConfigError(file, "controls", "expected a table")
    for key in controls:
        if key != "in_scope":
            raise ConfigError(file, f"controls.{key}", "unknown key (known keys: in_scope)")
    in_scope = _coerce(file, "controls.in_scope", tuple[str, ...], controls.get("in_scope", []))
    for criterion in in_scope:
        if criterion not in catalog.criteria:
            raise ConfigError(file, "controls.in_scope", f'unknown criterion "{criterion}"')

    return Settings(
        path=path.resolve(),
        storage=storage,
        windows=windows,
        signing=signing,
        digest=digest,
        daemon=daemon,
        connectors=connectors,
        filing=filing,
        in_scope=in_scope,
    )
