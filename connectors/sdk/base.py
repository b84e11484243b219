"""The connector SDK's outer shape: typed config, a connector that declares its streams."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, ClassVar, Generic, Literal, TypeVar

from connectors.sdk.errors import AuthError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, SourceItem

__all__ = [
    "Connector",
    "ConnectorConfig",
    "HttpOptions",
    "Stream",
    "StreamOutput",
    "required_field",
    "secret_field",
]

StreamOutput = SourceItem | Checkpoint | ItemFailure


def required_field(**kw: Any) -> Any:
    """A config key with no default: the config loader reports it by name when missing."""
    return field(metadata={"required": True, **kw.pop("metadata", {})}, **kw)


def secret_field(default: str) -> Any:
    """A ``*_env`` key: it names an environment variable that holds a secret."""
    return field(default=default, metadata={"env": True})


@dataclass(frozen=True, kw_only=True)
class ConnectorConfig:
    """Keys every connector section shares; connectors subclass this with their own keys."""

    enabled: bool = True
    interval: timedelta = timedelta(hours=1)
    backfill: timedelta = timedelta(days=90)
    streams: tuple[str, ...] = ()

    @classmethod
    def required_keys(cls) -> tuple[str, ...]:
        """Keys that have no default and must be present in the section."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("required"))

    @classmethod
    def env_keys(cls) -> tuple[str, ...]:
        """Keys whose value names an environment variable holding a secret."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("env"))


@dataclass(frozen=True, kw_only=True)
class HttpOptions:
    """Per-request retry policy shared by every HTTP-based connector."""

    max_attempts: int = 6
    deadline: float = 120.0
    backoff: float = 0.5
    max_backoff: float = 60.0
    timeout: float = 30.0


C = TypeVar("C", bound=ConnectorConfig)


class Stream(ABC, Generic[C]):
    """One stream: a generator handed its cursor, and a pure normaliser of what it yields.

    A stream never writes state, never hashes and never names a control; it yields source
    items (each carrying the cursor value to store with it) in cursor order.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    mode: ClassVar[Literal["events", "state"]] = "events"

    def __init__(self, connector: Connector[C]) -> None:
        self.connector = connector
        self.config: C = connector.config

    @property
    def id(self) -> str:
        """The stream ID, ``<connector>.<stream>``."""
        return f"{self.connector.name}.{self.name}"

    @abstractmethod
    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        """Yield items newer than ``cursor.value`` and no later than ``cursor.ceiling``."""

    @abstractmethod
    def normalise(self, item: SourceItem) -> Normalised:
        """Turn one source item into evidence; pure, so it can be tested without a source."""


class Connector(ABC, Generic[C]):
    """A source system: its config type, its declared streams, and the clients it opens."""

    name: ClassVar[str]
    config_type: ClassVar[type[ConnectorConfig]]
    stream_types: ClassVar[tuple[type[Stream[Any]], ...]]

    def __init__(
        self,
        config: C,
        *,
        env: Mapping[str, str] | None = None,
        http: HttpOptions | None = None,
    ) -> None:
        self.config = config
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.http = http or HttpOptions()

    @classmethod
    def stream_names(cls) -> tuple[str, ...]:
        """Declared stream names, listable without touching the network."""
        return tuple(s.name for s in cls.stream_types)

    @classmethod
    def stream_ids(cls) -> tuple[str, ...]:
        """Declared stream IDs, ``<connector>.<stream>``."""
        return tuple(f"{cls.name}.{s.name}" for s in cls.stream_types)

    def secret(self, key: str) -> str:
        """The secret named by the ``*_env`` config key ``key``; AuthError when it is unset."""
        var = getattr(self.config, key)
        value = self.env.get(var, "")
        if not value:
            raise AuthError(self.name, f"environment variable ${var} is not set", var)
        return value

    def stream(self, name: str) -> Stream[C]:
        """An instance of the declared stream ``name``."""
        for stream_type in self.stream_types:
            if stream_type.name == name:
                return stream_type(self)
        raise KeyError(f"{self.name} has no stream {name!r}")

    def check(self) -> None:
        """Validate what can be validated without the network (secrets present, URLs sane)."""

    def close(self) -> None:
        """Release clients; called once after a collection."""
