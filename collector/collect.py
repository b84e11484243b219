"""One collection: validate what will run, open the connectors, run each stream through the pipeline."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from threading import Event
from typing import Any

from collector.catalog import Catalog, Filing
from collector.config import Settings
from collector.errors import ConfigError, InputError
from collector.pipeline import BatchReport, Pipeline, RunResult
from connectors.sdk.base import Connector, HttpOptions, Stream
from connectors.sdk.errors import UnreachableError
from connectors.sdk.items import Cursor
from connectors.sdk.retry import unreachable_cause
from storage import Store

__all__ = ["PlannedStream", "check_secrets", "collect", "open_connector", "plan_streams", "secret_problems"]


@dataclass(frozen=True, slots=True)
class PlannedStream:
    """An enabled stream: its connector, its name, the kinds it yields, how often it is collected."""

    connector: str
    name: str
    kinds: frozenset[str]
    interval: timedelta
    """The connector's ``interval``: how often the daemon collects the stream."""

    @property
    def id(self) -> str:
        """``<connector>.<stream>``."""
        return f"{self.connector}.{self.name}"


def plan_streams(settings: Settings, requested: Sequence[str] | None = None) -> list[PlannedStream]:
    """Enabled streams in declaration order, or exactly the ``requested`` IDs (validated).

    Imports only the enabled connectors (through ``settings.registry``, once each); an ID that
    is not enabled imports at most the connector it names, to say whether it exists at all.
    """
    enabled: list[PlannedStream] = []
    for name, cfg in settings.enabled_connectors().items():
        for stream_type in settings.registry.load(name).stream_types:
            if not cfg.streams or stream_type.name in cfg.streams:
                enabled.append(PlannedStream(name, stream_type.name, frozenset(stream_type.kinds),
                                             cfg.interval))
    if not requested:
        return enabled
    by_id = {p.id: p for p in enabled}
    chosen: list[PlannedStream] = []
    for stream_id in requested:
        if stream_id not in by_id:
            known = settings.registry.knows_stream(stream_id)
            why = "is not enabled in the config" if known else "is not a known stream"
            raise InputError(f"--stream {stream_id}: {why}")
        chosen.append(by_id[stream_id])
    return chosen


def secret_problems(settings: Settings, name: str,
                    env: Mapping[str, str] | None = None) -> list[ConfigError]:
    """Each ``*_env`` key of connector ``name`` whose variable is unset or has stray whitespace."""
    env = os.environ if env is None else env
    cfg = settings.connectors[name]
    found: list[ConfigError] = []
    for key in cfg.env_keys():
        var = getattr(cfg, key)
        value = env.get(var, "") if var else ""
        if var and not value:
            found.append(ConfigError(str(settings.path), f"connectors.{name}.{key}",
                                     f"environment variable ${var} is not set"))
        elif value != value.strip():  # a pasted newline: the vendor would refuse it after retries
            found.append(ConfigError(str(settings.path), f"connectors.{name}.{key}",
                                     f"environment variable ${var} has leading or trailing whitespace"))
    return found


def check_secrets(settings: Settings, connectors: Sequence[str],
                  env: Mapping[str, str] | None = None) -> None:
    """Every ``*_env`` key of the given connectors names a set variable, or one ConfigError
    naming every key that does not."""
    found = [problem for name in connectors for problem in secret_problems(settings, name, env)]
    if found:
        raise ConfigError.all_of(found)


def open_connector(settings: Settings, name: str, env: Mapping[str, str] | None = None,
                   http: HttpOptions | None = None) -> Connector[Any]:
    """Instantiate connector ``name`` with its validated config."""
    cls = settings.registry.load(name)
    connector = cls(settings.connectors[name], env=env, http=http)
    connector.check()
    return connector


def collect(
    settings: Settings,
    store: Store,
    requested: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    on_start: Callable[[PlannedStream], None] | None = None,
    on_done: Callable[[RunResult], None] | None = None,
    stop: Event | None = None,
) -> list[RunResult]:
    """Run each planned stream once; a failing stream never stops the others. Then the derived
    identity checks whose inputs were collected run, each as its own run (in the list too)."""
    planned = plan_streams(settings, requested)
    names = list(dict.fromkeys(p.connector for p in planned))
    check_secrets(settings, names, env)
    pipeline = Pipeline(
        store, Filing(Catalog.builtin(), settings.filing),
        batch_size=settings.storage.batch_size,
        flush_seconds=settings.storage.flush_seconds, on_batch=on_batch, stop=stop,
    )
    opened = {name: open_connector(settings, name, env) for name in names}
    unreachable: dict[str, UnreachableError] = {}
    results: list[RunResult] = []
    try:
        for item in planned:
            if pipeline.stop.is_set():
                break
            if on_start is not None:
                on_start(item)
            connector = opened[item.connector]
            stream = _watched(connector.stream(item.name), unreachable)
            result = pipeline.run(stream, connector.config)
            results.append(result)
            if on_done is not None:
                on_done(result)
    finally:
        for connector in opened.values():
            connector.close()
    if not pipeline.stop.is_set():
        # Derived checks over what this collection stored (identity.*): each is its own run.
        from collector.identities import run_identity_checks

        results += run_identity_checks(settings, store, [r.stream for r in results if r.status != "failed"])
    return results


def _watched(stream: Stream[Any, Any], unreachable: dict[str, UnreachableError]) -> Stream[Any, Any]:
    """``stream``, run so that a connection-level failure is found once per connector per run.

    When its fetch fails because the host does not resolve or refuses connections (however the
    vendor SDK wraps that), it fails as an UnreachableError naming the cause, remembered in
    ``unreachable`` under its connector; once its connector is there, it fails at once with that
    cause, contacting nothing, so the connector's remaining streams neither wait nor retry.
    """
    connector = stream.connector_name
    base = type(stream)

    def fetch(self: Stream[Any, Any], cursor: Cursor) -> Iterator[Any]:
        known = unreachable.get(connector)
        if known is not None:
            raise UnreachableError(connector, known.cause)
        try:
            yield from base.fetch(self, cursor)
        except UnreachableError as exc:
            unreachable[connector] = exc
            raise
        except Exception as exc:
            cause = unreachable_cause(exc)
            if cause is None:
                raise
            unreachable[connector] = UnreachableError(connector, cause)
            raise unreachable[connector] from exc

    watched = type(base.__name__, (base,), {"fetch": fetch, "__doc__": base.__doc__})
    result: Stream[Any, Any] = watched(stream.config, stream.session, connector)
    return result
