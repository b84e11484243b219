"""A deterministic, offline connector that drives the pipeline in tests, benchmarks and crash drills."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from connectors.sdk.base import Connector, ConnectorConfig, Stream, StreamOutput, secret_field
from connectors.sdk.errors import RetriableError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, SourceItem

__all__ = ["SyntheticConfig", "SyntheticConnector"]

_PUBLISHED = "%04d-%02d-%02dT%02d:%02d:%02dZ"  # the source's own format: whole seconds, UTC


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig(ConnectorConfig):
    """``count`` events spaced ``step_seconds`` apart from ``start``; knobs for fault drills."""

    count: int = 1000
    start: str = "2026-01-01T00:00:00Z"
    step_seconds: int = 60
    users: int = 20
    delay_ms: int = 0
    fail_at: int = -1
    bad_items: tuple[str, ...] = ()
    # Optional: names a variable the connector must read, to drill secret handling offline.
    token_env: str = secret_field("")

    def start_at(self) -> datetime:
        """``start`` as an aware datetime."""
        return datetime.fromisoformat(self.start.replace("Z", "+00:00")).astimezone(UTC)


class SyntheticEvents(Stream[SyntheticConfig, None]):
    """Sign-in events numbered 0..count-1; the cursor is the next sequence number."""

    name = "events"
    kinds = frozenset({"access_log"})
    mode = "events"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        cfg = self.config
        first = int(cursor.value or 0)
        base, step, users, ceiling = cfg.start_at(), cfg.step_seconds, cfg.users, cursor.ceiling
        fail_at, delay = cfg.fail_at, cfg.delay_ms / 1000
        bad = set(cfg.bad_items)
        for seq in range(first, cfg.count):
            if seq == fail_at:
                raise RetriableError(f"synthetic: injected failure at item {seq}")
            observed = base + timedelta(seconds=seq * step)
            if observed > ceiling:
                return
            if delay:
                time.sleep(delay)
            key = f"evt-{seq:09d}"
            if bad and key in bad:
                yield ItemFailure(key, "synthetic: unreadable item")
                continue
            event = {
                "uuid": key,
                "published": _PUBLISHED % (observed.year, observed.month, observed.day,
                                           observed.hour, observed.minute, observed.second),
                "actor": f"user{seq % users}@example.com",
                "outcome": "FAILURE" if seq % 10 == 3 else "SUCCESS",
                "mfa": seq % 50 != 7,
                "ip": f"10.0.{seq % 256}.{(seq // 256) % 256}",
            }
            yield SourceItem(key, observed, orjson.dumps(event), event, seq + 1)
        yield Checkpoint(cfg.count)

    def normalise(self, item: SourceItem) -> Normalised:
        event: dict[str, Any] = item.obj
        exception = None
        if event["outcome"] == "SUCCESS" and not event["mfa"]:
            exception = "successful sign-in without MFA"
        return Normalised(
            kind="access_log",
            actor=event["actor"],
            source_url=f"https://synthetic.invalid/events/{event['uuid']}",
            data={
                "event": "user.session.start",
                "outcome": event["outcome"],
                "mfa_used": event["mfa"],
                "source_ip": event["ip"],
            },
            exception=exception,
        )


class SyntheticUsers(Stream[SyntheticConfig, None]):
    """The MFA state of ``users`` accounts, read at the run's ceiling."""

    name = "users"
    kinds = frozenset({"mfa_status"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        for n in range(self.config.users):
            key = f"u{n:05d}"
            user = {"id": key, "login": f"user{n}@example.com", "mfa": n % 7 != 0}
            yield SourceItem(key, cursor.ceiling, orjson.dumps(user), user)

    def normalise(self, item: SourceItem) -> Normalised:
        user: dict[str, Any] = item.obj
        return Normalised(
            kind="mfa_status",
            actor=user["login"],
            source_url=f"https://synthetic.invalid/users/{user['id']}",
            data={"login": user["login"], "mfa_enrolled": user["mfa"]},
            exception=None if user["mfa"] else "active user has no MFA factor",
        )


class SyntheticConnector(Connector[SyntheticConfig, None]):
    """Offline source of deterministic evidence; no network, no secrets, no session."""

    name = "synthetic"
    config_type = SyntheticConfig
    stream_types = (SyntheticEvents, SyntheticUsers)

    def open_session(self) -> None:
        """Nothing to open: the events are computed."""

    def check(self) -> None:
        """When ``token_env`` is set, its variable must hold a value, as a real source's token."""
        super().check()
        if self.config.token_env:
            self.secret("token_env")
