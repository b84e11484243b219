"""The connector SDK's outer shape: typed config, a connector that declares its streams and their session."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, ClassVar, Generic, Literal

# typing_extensions for TypeVar(default=...) (PEP 696, in typing from 3.13): S defaults to Any, so
# ``Connector[Any]`` and ``Stream[Any]`` written before streams had a session type still mean the same.
from typing_extensions import TypeVar

from connectors.sdk.errors import AuthError, FatalError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, Skipped, SourceItem

__all__ = [
    "Connector",
    "ConnectorConfig",
    "HttpOptions",
    "Stream",
    "StreamOutput",
    "required_field",
    "secret_field",
]

StreamOutput = SourceItem | Checkpoint | ItemFailure | Skipped


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

    def problems(self) -> list[tuple[str, str]]:
        """Each (key, problem) for a value that cannot work, reported by the config loader
        before any source is contacted; none here, connectors override with their own rules."""
        return []


@dataclass(frozen=True, kw_only=True)
class HttpOptions:
    """Per-request retry policy shared by every HTTP-based connector, and the largest answer.

    ``max_response_bytes`` caps one response body as decoded (after gzip/deflate): a vendor
    page is a few MB (1,000 Okta events, 100 Jira issues with their changelogs), so 64 MiB is
    far above any real one, while a 2 MB gzip-encoded reply once inflated to 800 MB.
    """

    max_attempts: int = 6
    deadline: float = 120.0
    backoff: float = 0.5
    max_backoff: float = 60.0
    timeout: float = 30.0
    max_response_bytes: int = 64 << 20


C = TypeVar("C", bound=ConnectorConfig)
S = TypeVar("S", default=Any)
"""The typed client (session) a connector opens and its streams use; ``Any`` where unnamed."""


class Stream(ABC, Generic[C, S]):
    """One stream: a generator handed its cursor, and a pure normaliser of what it yields.

    A stream holds its connector's config and a way to its session (the connector's cached
    ``session``, called when ``fetch`` first needs it, so a stream that never runs opens
    nothing), never the connector itself. It never writes state, never hashes and never
    names a control; it yields source items (each carrying the cursor value to store with
    it) in cursor order.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    mode: ClassVar[Literal["events", "state"]] = "events"

    def __init__(self, config: C, session: Callable[[], S], connector: str) -> None:
        self.config = config
        self.session = session
        self.connector_name = connector

    @property
    def id(self) -> str:
        """The stream ID, ``<connector>.<stream>``."""
        return f"{self.connector_name}.{self.name}"

    @abstractmethod
    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        """Yield items newer than ``cursor.value`` and no later than ``cursor.ceiling``."""

    @abstractmethod
    def normalise(self, item: SourceItem) -> Normalised:
        """Turn one source item into what its record says; pure, so it can be tested without a source."""


class Connector(ABC, Generic[C, S]):
    """A source system: its config type, its declared streams, and the session they share.

    ``session()`` builds the session (``open_session``) on first use and keeps it until
    ``close()``, so declaring, listing and checking streams opens no client and imports no
    vendor SDK that only ``open_session`` needs.
    """

    name: ClassVar[str]
    config_type: ClassVar[type[ConnectorConfig]]
    stream_types: ClassVar[tuple[type[Stream[Any, Any]], ...]]

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
        self._opened: tuple[S] | None = None

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

    def stream(self, name: str) -> Stream[C, S]:
        """An instance of the declared stream ``name``, given the config and ``session``."""
        for stream_type in self.stream_types:
            if stream_type.name == name:
                return stream_type(self.config, self.session, self.name)
        raise KeyError(f"{self.name} has no stream {name!r}")

    def session(self) -> S:
        """The session the streams share: opened on first use, then the same one until ``close()``.

        When opening fails nothing is kept, so the next call tries again (a connector that
        must not ask twice remembers the refusal in its ``open_session``).
        """
        if self._opened is None:
            self._opened = (self.open_session(),)
        return self._opened[0]

    @abstractmethod
    def open_session(self) -> S:
        """Build the session (secrets read, client constructed); raise ConnectorError subclasses."""

    def close_session(self, session: S) -> None:
        """Release what ``open_session`` built; nothing by default."""

    def check(self) -> None:
        """Validate what can be validated without the network: the config's first problem is a
        FatalError naming its key. Connectors extend this (secrets present, URLs sane)."""
        for key, problem in self.config.problems():
            raise FatalError(f"{self.name}: connectors.{self.name}.{key}: {problem}")

    def close(self) -> None:
        """Release the session, if one was opened; called once after a collection."""
        opened, self._opened = self._opened, None
        if opened is not None:
            self.close_session(opened[0])
