"""Factor changes okta.system_log has already read in this process, so okta.users need not ask again.

okta.system_log reads ``user.mfa.factor.*`` events (they are evidence of their own: an MFA
factor reset or removed). okta.users needs the same events, to know whose factors to read
again. When okta.system_log has read the System Log, completely, over a span that starts at
or before okta.users' log position and reaches close to the run's ceiling, okta.users takes
the changed users from here instead of querying ``/api/v1/logs`` itself; otherwise it queries
(a replica that did not run okta.system_log, a restart, okta.system_log disabled or failing).

What is kept, per org: one contiguous span ``[since, until)`` of System Log time read in full
and the (published, user id) of each factor event in it, for at most ``KEEP`` of log time.
Only what the log said is kept here, never what was stored: a span is noted only when a
okta.system_log read of it ended normally (not on an error, not when the run stopped early).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta

from connectors.okta._time import format_okta, parse_okta

__all__ = ["FACTOR_CHANGES", "FACTOR_EVENT_PREFIX", "KEEP", "FactorChanges", "factor_users"]

FACTOR_EVENT_PREFIX = "user.mfa.factor."
"""System Log eventTypes of factor changes (enrolled, activated, deactivated, reset, suspended)."""
KEEP = timedelta(days=2)
"""How much log time a span keeps: older events are dropped as newer spans are noted."""


def factor_users(event: object) -> list[str]:
    """Ids of the users a System Log event names (its actor and targets of type User)."""
    if not isinstance(event, dict):
        return []
    found: list[str] = []
    for who in [event.get("actor"), *(event.get("target") or [])]:
        if isinstance(who, dict) and who.get("type") == "User" and isinstance(who.get("id"), str):
            found.append(who["id"])
    return found


@dataclass(slots=True)
class _Span:
    since: str
    until: str
    events: list[tuple[str, str]] = field(default_factory=list)


class FactorChanges:
    """The spans noted per org (by ``org_url`` without a trailing slash); safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: dict[str, _Span] = {}

    def note(self, org: str, since: str, until: str, events: list[tuple[str, str]]) -> None:
        """The System Log of ``org`` was read in full over ``[since, until)`` (Okta timestamps in
        the fixed-width form) and held these (published, user id) factor events."""
        if since >= until:
            return
        with self._lock:
            span = self._spans.get(org)
            if span is not None and since <= span.until and until >= span.since:
                # Overlapping or adjacent: one span (an event in both reads is kept once).
                merged = set(span.events)
                merged.update(events)
                span = _Span(min(since, span.since), max(until, span.until), sorted(merged))
            else:
                span = _Span(since, until, sorted(set(events)))  # a gap: the older span is no use
            oldest = format_okta(parse_okta(span.until) - KEEP)
            if span.since < oldest:
                span.since = oldest
                span.events = [e for e in span.events if e[0] >= oldest]
            self._spans[org] = span

    def changed(self, org: str, since: str, until: str, lag: timedelta) -> tuple[str, set[str]] | None:
        """``(read_to, user ids)``: the users named by a factor event in ``[since, read_to)``,
        where ``read_to`` is ``until`` or, when the span ends before it, the span's end, which
        may be at most ``lag`` before ``until``. None when no span covers ``since`` or the
        span ends more than ``lag`` before ``until`` (the caller queries the log itself)."""
        with self._lock:
            span = self._spans.get(org)
            if span is None or not span.since <= since <= span.until:
                return None
            read_to = min(until, span.until)
            if read_to < format_okta(parse_okta(until) - lag):
                return None
            return read_to, {user for at, user in span.events if since <= at < read_to}

    def clear(self) -> None:
        """Forget every span (tests start from nothing)."""
        with self._lock:
            self._spans.clear()


FACTOR_CHANGES = FactorChanges()
"""This process's factor changes, shared by every OktaConnector (a connector lives for one run)."""
