"""``okta.system_log``: sign-ins, user lifecycle and membership changes from ``/api/v1/logs``."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connectors.okta._factor_changes import FACTOR_CHANGES, FACTOR_EVENT_PREFIX, factor_users
from connectors.okta._log import log_pages
from connectors.okta._time import format_okta, normalise_okta, parse_okta
from connectors.okta.config import OktaConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import FatalError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, SourceItem

if TYPE_CHECKING:
    # A type only: the HTTP client (httpx) loads when the connector opens its session.
    from connectors.sdk.http import HttpClient

__all__ = ["EVENT_FILTER", "SystemLogStream", "event_kind"]

_PREFIXES = (
    ("user.session.start", "access_log"),
    ("user.authentication.", "access_log"),
    ("user.lifecycle.", "user_lifecycle"),
    ("group.user_membership.", "access_change"),
    ("application.user_membership.", "access_change"),
    ("user.account.privilege.", "access_change"),
    ("group.privilege.", "access_change"),
    (FACTOR_EVENT_PREFIX, "access_change"),
)

EVENT_FILTER = " or ".join(
    f'eventType {"eq" if not prefix.endswith(".") else "sw"} "{prefix}"' for prefix, _ in _PREFIXES
)
"""Asks Okta only for the event types the stream stores, so noise never crosses the wire."""


def event_kind(event_type: str) -> str | None:
    """The evidence kind of an Okta eventType, or None for a type the stream does not store."""
    for prefix, kind in _PREFIXES:
        if event_type == prefix or (prefix.endswith(".") and event_type.startswith(prefix)):
            return kind
    return None


def _position(value: Any) -> tuple[str, list[str]] | None:
    """The committed cursor: the last stored ``published`` and the uuids already read at it.

    Stored as ``{"position": [published, [uuid, ...]]}``: uuids are appended in the order
    read, so the value only ever grows (a later timestamp, or a longer list at the same one).
    """
    if value is None:
        return None
    try:
        published, uuids = value["position"]
        parse_okta(published)
        if not all(isinstance(u, str) for u in uuids):
            raise TypeError("uuids")
    except (KeyError, TypeError, ValueError) as exc:
        raise FatalError(f"okta.system_log: unreadable cursor {value!r} ({exc})") from exc
    return format_okta(parse_okta(published)), list(uuids)


def _published(value: Any) -> tuple[str, datetime]:
    """An event's ``published`` in the fixed-width form and as an instant; ValueError when it is
    not a real instant (Okta's own documented example says September 31st)."""
    if not isinstance(value, str):
        raise TypeError(f"published is {type(value).__name__}, not a timestamp")
    moment = parse_okta(value)
    return normalise_okta(value), moment


def _target(target: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": target.get("id"),
        "type": target.get("type"),
        "alternate_id": target.get("alternateId"),
        "display_name": target.get("displayName"),
    }


class SystemLogStream(Stream[OktaConfig, "HttpClient"]):
    """Events in bounded ``[since, until)`` windows, oldest first, never an open-ended poll.

    ``since`` is the last stored event's ``published`` (or the backfill floor), ``until`` the
    run's ceiling. Okta's ``since`` is inclusive and many events share a millisecond, so
    events at the cursor's timestamp whose uuid is already in the cursor are skipped: an
    event is neither lost nor read twice at a page or run boundary.

    An event that cannot be read (no uuid, or a ``published`` that is not a real instant) is
    one ``ItemFailure``; one with a uuid is first marked read in the cursor, so the failure is
    reported once and never holds the cursor at it.

    A window read to its end with every event placed in time is noted, with the users its
    ``user.mfa.factor.*`` events name, in ``connectors.okta._factor_changes``: okta.users takes
    its factor changes from there instead of querying the log again.
    """

    name = "system_log"
    kinds = frozenset({"access_log", "user_lifecycle", "access_change"})
    mode = "events"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        """Yield stored event types after the cursor and before the ceiling; dropped types move
        the cursor with a checkpoint."""
        position = _position(cursor.value)
        until = format_okta(cursor.ceiling - self.config.settle)
        published, seen = position if position else (format_okta(cursor.floor), [])
        if published >= until:
            return
        params = {
            "since": published,
            "until": until,
            "sortOrder": "ASCENDING",
            "limit": str(self.config.page_size),
            "filter": EVENT_FILTER,
        }
        seen_set = set(seen)
        client: HttpClient = self.session()
        factors: list[tuple[str, str]] = []
        read = yield from self._read(client, params, published, seen, seen_set, until, factors)
        if read:  # the window was read to its end: okta.users may take its factor changes from it
            FACTOR_CHANGES.note(self.config.base_url, params["since"], until, factors)

    def _read(self, client: HttpClient, params: dict[str, str], published: str, seen: list[str],
              seen_set: set[str], until: str, factors: list[tuple[str, str]]
              ) -> Generator[StreamOutput, None, bool]:
        """The window's events after the cursor; returns whether every event in it was placed in
        time (``factors`` then holds each factor event's (published, user id), read before or not)."""
        placed = True
        for elements in log_pages(client, params, "okta.system_log"):
            for event, raw in elements:
                uuid = event.get("uuid") if isinstance(event, dict) else None
                try:
                    if not isinstance(uuid, str) or not uuid:
                        raise KeyError("uuid")
                    at, moment = _published(event["published"])
                    event_type = str(event["eventType"])
                except (KeyError, TypeError, ValueError) as exc:
                    placed = False  # an event of unknown time: which factors it changed is unknown
                    if isinstance(uuid, str) and uuid:
                        if uuid in seen_set:
                            continue  # reported by an earlier run, which marked it read
                        # Marked read at the current position before it is reported, so the
                        # failure never holds the cursor: it cannot be read at any later run.
                        seen.append(uuid)
                        seen_set.add(uuid)
                        yield Checkpoint({"position": [published, list(seen)]})
                    yield ItemFailure(str(uuid or "unknown"), f"unreadable event: {exc!r}")
                    continue
                if at >= until:
                    return placed
                if event_type.startswith(FACTOR_EVENT_PREFIX):
                    factors.extend((at, user) for user in factor_users(event))
                if at < published or (at == published and uuid in seen_set):
                    continue  # read in an earlier run (or out of order: never move back)
                if at > published:
                    published, seen, seen_set = at, [], set()
                seen.append(uuid)
                seen_set.add(uuid)
                value = {"position": [published, list(seen)]}
                if event_kind(event_type) is None:
                    yield Checkpoint(value)
                else:
                    yield SourceItem(uuid, moment, raw, event, cursor=value)
        return placed

    def normalise(self, item: SourceItem) -> Normalised:
        """Who did what to whom, the outcome and where from; no geolocation, no session ids."""
        event: dict[str, Any] = item.obj
        kind = event_kind(event["eventType"])
        if kind is None:
            raise ValueError(f"eventType {event['eventType']!r} is not stored by okta.system_log")
        actor = event.get("actor") or {}
        outcome = event.get("outcome") or {}
        client = event.get("client") or {}
        data: dict[str, Any] = {
            "event_type": event["eventType"],
            "display_message": event.get("displayMessage"),
            "published": event["published"],
            "outcome": outcome.get("result"),
            "reason": outcome.get("reason"),
            "actor": {"id": actor.get("id"), "type": actor.get("type"),
                      "alternate_id": actor.get("alternateId")},
            "targets": [_target(t) for t in event.get("target") or []],
            "client_ip": client.get("ipAddress"),
        }
        if kind == "access_log":
            context = event.get("authenticationContext") or {}
            data["credential_type"] = context.get("credentialType")
            data["authentication_provider"] = context.get("authenticationProvider")
        at = parse_okta(event["published"])
        # Built by hand: urlencode per event was a tenth of the stream's time. Timestamps in
        # the fixed form only need ':' escaped; the uuid is quoted.
        since = format_okta(at).replace(":", "%3A")
        until = format_okta(at + timedelta(milliseconds=1)).replace(":", "%3A")
        source_url = (f"{self.config.base_url}/api/v1/logs?since={since}&until={until}"
                      f"&filter=uuid+eq+%22{quote(str(event['uuid']), safe='')}%22")
        return Normalised(kind=kind, actor=actor.get("alternateId"), source_url=source_url, data=data)
