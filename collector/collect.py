"""One collection: validate what will run, open the connectors, run each stream through the pipeline."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from threading import Event
from typing import Any

from collector.catalog import Catalog, Filing
from collector.config import Settings
from collector.errors import ConfigError, InputError
from collector.pipeline import BatchReport, Pipeline, RunResult
from connectors.sdk.base import Connector, HttpOptions
from storage import Store

__all__ = ["PlannedStream", "check_secrets", "collect", "open_connector", "plan_streams"]


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


def check_secrets(settings: Settings, connectors: Sequence[str],
                  env: Mapping[str, str] | None = None) -> None:
    """Every ``*_env`` key of the given connectors names a set variable, or ConfigError."""
    env = os.environ if env is None else env
    for name in connectors:
        cfg = settings.connectors[name]
        for key in cfg.env_keys():
            var = getattr(cfg, key)
            if var and not env.get(var):
                raise ConfigError(
                    str(settings.path), f"connectors.{name}.{key}",
                    f"environment variable ${var} is not set",
                )
            value = env.get(var, "") if var else ""
            if value != value.strip():  # a pasted newline: the vendor would refuse it after retries
                raise ConfigError(
                    str(settings.path), f"connectors.{name}.{key}",
                    f"environment variable ${var} has leading or trailing whitespace",
                )


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
    results: list[RunResult] = []
    try:
        for item in planned:
            if pipeline.stop.is_set():
                break
            if on_start is not None:
                on_start(item)
            connector = opened[item.connector]
            result = pipeline.run(connector.stream(item.name), connector.config)
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
