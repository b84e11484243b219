"""The contract every connector passes; third-party connectors call these from their own tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sdk.base import Connector
from connectors.sdk.errors import ConnectorError
from connectors.sdk.items import (
    KEEP,
    KINDS,
    Checkpoint,
    Cursor,
    ItemFailure,
    Normalised,
    Skipped,
    SourceItem,
    json_leq,
)

__all__ = ["ContractViolation", "check_declared", "check_errors_typed", "check_run"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ContractViolation(AssertionError):
    """A connector broke the SDK contract; the message says which rule."""


def check_declared(cls: type[Connector[Any]]) -> None:
    """Streams are listable offline, uniquely named, and declare known evidence kinds."""
    if not _NAME.match(getattr(cls, "name", "")):
        raise ContractViolation(f"{cls.__name__}.name must be a lower-case identifier")
    names = cls.stream_names()
    if not names:
        raise ContractViolation(f"{cls.name} declares no streams")
    if len(set(names)) != len(names):
        raise ContractViolation(f"{cls.name} declares a stream twice: {names}")
    for stream in cls.stream_types:
        if not _NAME.match(stream.name):
            raise ContractViolation(f"{cls.name}.{stream.name}: stream name must be an identifier")
        if not stream.kinds or not stream.kinds <= KINDS:
            raise ContractViolation(f"{cls.name}.{stream.name}: unknown kinds {set(stream.kinds) - KINDS}")
        if stream.mode not in ("events", "state"):
            raise ContractViolation(f"{cls.name}.{stream.name}: mode must be events or state")


def check_run(connector: Connector[Any], stream_name: str, cursor_value: Any = None,
              now: datetime | None = None, backfill: timedelta = timedelta(days=365)) -> Any:
    """Run one stream like the pipeline would and check what it yields; return the last cursor.

    Items are keyed and timestamped (tz-aware, not after the ceiling for event streams), raw
    bytes are bytes, cursor values never move backwards, and each item normalises to evidence
    of a declared kind with a JSON-object payload.
    """
    now = now or datetime.now(UTC)
    stream = connector.stream(stream_name)
    cursor = Cursor(value=cursor_value, ceiling=now, floor=now - backfill)
    last = cursor_value
    for output in stream.fetch(cursor):
        if isinstance(output, SourceItem):
            where = f"{stream.id} item {output.key!r}"
            if not output.key or not isinstance(output.key, str):
                raise ContractViolation(f"{stream.id}: an item has no source key")
            if output.observed_at.tzinfo is None:
                raise ContractViolation(f"{where}: observed_at is not tz-aware")
            if stream.mode == "events" and output.observed_at > now:
                raise ContractViolation(f"{where}: observed after the run's ceiling")
            if not isinstance(output.raw, bytes):
                raise ContractViolation(f"{where}: raw must be the bytes received")
            normalised = stream.normalise(output)
            if not isinstance(normalised, Normalised) or normalised.kind not in stream.kinds:
                raise ContractViolation(f"{where}: normalised to an undeclared kind")
            if not isinstance(normalised.data, dict):
                raise ContractViolation(f"{where}: data must be a JSON object")
            value = output.cursor
        elif isinstance(output, Checkpoint):
            value = output.cursor
        elif isinstance(output, ItemFailure):
            continue
        elif isinstance(output, Skipped):
            if not output.reason or output.count < 1:
                raise ContractViolation(f"{stream.id}: Skipped needs a reason and a count of at least 1")
            continue
        else:
            raise ContractViolation(f"{stream.id}: yielded {type(output).__name__}")
        if value is not KEEP:
            if not json_leq(last, value):
                raise ContractViolation(f"{stream.id}: cursor moved backwards ({last!r} -> {value!r})")
            last = value
    return last


def check_errors_typed(make_broken: Callable[[], Connector[Any]], stream_name: str) -> ConnectorError:
    """A connector pointed at an unreachable or rejecting source raises a ConnectorError subclass."""
    connector = make_broken()
    now = datetime.now(UTC)
    try:
        for _ in connector.stream(stream_name).fetch(Cursor(None, now, now - timedelta(days=1))):
            pass
    except ConnectorError as exc:
        return exc
    except Exception as exc:
        raise ContractViolation(
            f"{connector.name}.{stream_name}: raised untyped {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        connector.close()
    raise ContractViolation(f"{connector.name}.{stream_name}: a broken source raised nothing")
