"""``okta.users``: every user, DEPROVISIONED included, with the MFA factors each has enrolled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from connectors.okta._factor_changes import FACTOR_CHANGES, FACTOR_EVENT_PREFIX, factor_users
from connectors.okta._log import log_pages
from connectors.okta._time import format_okta, parse_okta
from connectors.okta.config import OktaConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import AuthError, FatalError, NotFoundError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, SourceItem
from connectors.sdk.rawjson import split_array

if TYPE_CHECKING:
    # A type only: the HTTP client (httpx) loads when the connector opens its session.
    from connectors.sdk.http import HttpClient

__all__ = ["DEPROVISIONED", "FACTOR_EVENTS", "NO_ACTIVE_FACTOR", "SIGN_IN_STATUSES", "UsersStream"]

NO_ACTIVE_FACTOR = "ACTIVE user has no active MFA factor"
SIGN_IN_STATUSES = ("ACTIVE", "PASSWORD_EXPIRED", "RECOVERY", "LOCKED_OUT")
"""Statuses of accounts that can sign in (after a reset or an unlock): each needs MFA like ACTIVE."""
_USER_PAGE_MAX = 200
DEPROVISIONED = 'status eq "DEPROVISIONED"'
"""The full read's second listing: Okta's unfiltered list (the authoritative one, no cap on its
length) leaves DEPROVISIONED users out; this filter query lists them."""
_USER_FIELDS = ("id", "status", "statusChanged", "lastLogin")
"""What the cursor keeps of a DEPROVISIONED user (with ``profile.login`` and ``profile.email``):
what its record says."""
FACTOR_EVENTS = f'eventType sw "{FACTOR_EVENT_PREFIX}"'
"""The System Log filter for factor changes (enrolled, activated, deactivated, reset, suspended)."""
_FACTOR_FIELDS = ("id", "factorType", "provider", "status")
"""What a record says of a factor, and all the cursor keeps of one (never its profile)."""


@dataclass(frozen=True, slots=True)
class _FactorState:
    """What the committed cursor says of the previous runs (see ``UsersStream``)."""

    full_at: str
    log_to: str
    users: dict[str, tuple[str, list[list[Any]]]]
    deprovisioned: dict[str, tuple[str, dict[str, Any]]]


def _factor_state(value: Any) -> _FactorState | None:
    """The cursor's ``factors`` state, or None (a full read) when absent or not in the expected
    shape (a cursor written before DEPROVISIONED users were kept in it included): an
    unreadable state costs one full read, never a record claiming a stale read."""
    try:
        position, state = value["factors"]
        full_at, log_to = format_okta(parse_okta(state["full_at"])), format_okta(parse_okta(position))
        users: dict[str, tuple[str, list[list[Any]]]] = {}
        for user_id, (read_at, factors) in state["users"].items():
            if not all(isinstance(f, list) and len(f) == len(_FACTOR_FIELDS) for f in factors):
                raise ValueError(f"factors of {user_id}")
            users[str(user_id)] = (format_okta(parse_okta(read_at)), factors)
        deprovisioned: dict[str, tuple[str, dict[str, Any]]] = {}
        for user_id, (read_at, user) in state["deprovisioned"].items():
            if not isinstance(user, dict) or user.get("id") != user_id:
                raise ValueError(f"deprovisioned user {user_id}")
            deprovisioned[str(user_id)] = (format_okta(parse_okta(read_at)), user)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return _FactorState(full_at, log_to, users, deprovisioned)


def _kept_user(user: dict[str, Any]) -> dict[str, Any]:
    """A DEPROVISIONED user as the cursor keeps it: what its record says, nothing else."""
    found = user.get("profile")
    profile: dict[str, Any] = found if isinstance(found, dict) else {}
    kept = {k: user.get(k) for k in _USER_FIELDS}
    kept["profile"] = {"login": profile.get("login"), "email": profile.get("email")}
    return kept


def _compact(factors: list[dict[str, Any]]) -> list[list[Any]]:
    return [[f.get(k) for k in _FACTOR_FIELDS] if isinstance(f, dict) else [None] * 4 for f in factors]


def _expanded(compact: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(_FACTOR_FIELDS, f, strict=True)) for f in compact]


class UsersStream(Stream[OktaConfig, "HttpClient"]):
    """The MFA state of every user, read at the run's ceiling (a state stream).

    A user who can sign in (``SIGN_IN_STATUSES``) is an exception without an ACTIVE factor, or
    when every ACTIVE factor is of a type in ``weak_factors``. A user id listed twice in one
    listing is an ``ItemFailure`` for the second entry (``<id> (repeated)``).

    Factors are read incrementally. Every user's factors are read at the first run and then
    at most every ``factors_full_every``; in between, only the factors of users who are new
    (not read before) or whose factors changed according to the System Log
    (``user.mfa.factor.*`` events, a target or actor of type User, since the last run's log
    position) are read. Every other user is still one record per run, carrying the factors
    read before, and every record's ``factors_read_at`` says when its factors were read. A
    System Log that cannot be read (not an auth failure) makes the run a full read.

    Which factors changed comes from okta.system_log when it has read that part of the log in
    this process (``connectors.okta._factor_changes``: it stores factor events too, and runs
    first), reaching to within the connector's ``interval`` of this run's log position;
    the run's log position is then where that read ended. Otherwise from one System Log query
    of its own.

    Where the factors read before live: in the stream's cursor (a stream never reads the
    store), as ``{"factors": [log_to, {"full_at", "users": {id: [read_at, [[id, factorType,
    provider, status], ...]]}}]}``: the System Log position first, so the value only grows
    from run to run (``json_leq``); written with the run's last commit. A run with a failed
    item keeps the previous cursor, so the next run re-reads from the older position.

    Requests per run: one per 200 users of the listing (one ``filter`` query for every status,
    DEPROVISIONED included), plus, in a full read, one factors request per user who is not
    DEPROVISIONED (a deprovisioned user cannot sign in, so the record says so instead of
    reading factors), or, in between, one factors request per new or changed user and, when
    okta.system_log has not read the span, one System Log query (a page per 1000 factor
    events). A user's raw bytes are its list element, a newline, then its factors response
    body, or, for factors carried from an earlier read, ``{"factors", "factors_read_at"}`` as
    the cursor holds them.
    """

    name = "users"
    kinds = frozenset({"mfa_status"})
    mode = "state"
    by_id_max = _USER_PAGE_MAX
    """Between full reads, users no longer listed are read by id up to this many; more, and the
    run reads the DEPROVISIONED listing instead."""

    def _changed_users(self, client: HttpClient, since: str, until: str) -> set[str]:
        """Ids of users named by a ``user.mfa.factor.*`` event in ``[since, until)``."""
        changed: set[str] = set()
        if since >= until:
            return changed
        params = {"since": since, "until": until, "sortOrder": "ASCENDING",
                  "limit": str(self.config.page_size), "filter": FACTOR_EVENTS}
        for events in log_pages(client, params, "okta.users"):
            for event, _ in events:
                changed.update(factor_users(event))
        return changed

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        """Yield one item per user; a user whose factors cannot be read is an ItemFailure."""
        client: HttpClient = self.session()
        limit = str(min(self.config.page_size, _USER_PAGE_MAX))
        now = format_okta(cursor.ceiling)
        log_to = format_okta(cursor.ceiling - self.config.settle)
        before = _factor_state(cursor.value)
        full = before is None or parse_okta(before.full_at) + self.config.factors_full_every <= cursor.ceiling
        changed: set[str] = set()
        if before is not None and not full:
            # okta.system_log may have read these events already in this process (it runs first).
            noted = FACTOR_CHANGES.changed(self.config.base_url, before.log_to, log_to,
                                           lag=self.config.interval)
            if noted is not None:
                log_to, changed = noted
            else:
                try:
                    changed = self._changed_users(client, before.log_to, log_to)
                except AuthError:
                    raise
                except FatalError:
                    full = True  # which factors changed is unknown: read them all
        kept: dict[str, tuple[str, list[list[Any]]]] = {}
        gone: dict[str, tuple[str, dict[str, Any]]] = {}

        def one(user: dict[str, Any], raw: bytes, user_id: str) -> Iterator[StreamOutput]:
            """The item of one user as read now."""
            if user.get("status") == "DEPROVISIONED":
                gone[user_id] = (now, _kept_user(user))
                yield SourceItem(user_id, cursor.ceiling, raw,
                                 {"user": user, "factors": None, "factors_read_at": None,
                                  "status_read_at": now})
                return
            earlier = None if full or user_id in changed or before is None else before.users.get(user_id)
            if earlier is not None:
                read_at, compact = earlier
                kept[user_id] = earlier
                carried = orjson.dumps({"factors": compact, "factors_read_at": read_at})
                yield SourceItem(user_id, cursor.ceiling, raw + b"\n" + carried,
                                 {"user": user, "factors": _expanded(compact), "factors_read_at": read_at,
                                  "status_read_at": now})
                return
            try:
                factors, factor_response = client.get_json(f"/api/v1/users/{quote(user_id, safe='')}/factors")
            except AuthError:
                raise
            except FatalError as exc:  # e.g. the user was deleted since the listing
                yield ItemFailure(user_id, str(exc), type(exc).__name__)
                return
            if not isinstance(factors, list):
                yield ItemFailure(user_id, "factors response is not a list")
                return
            kept[user_id] = (now, _compact(factors))
            yield SourceItem(user_id, cursor.ceiling, raw + b"\n" + factor_response.content,
                             {"user": user, "factors": factors, "factors_read_at": now,
                              "status_read_at": now})

        read: set[str] = set()

        def listing(search: str | None) -> Iterator[StreamOutput]:
            """One listing's users (unfiltered, or a filter query), each read once per run."""
            params = {"limit": limit} if search is None else {"limit": limit, "filter": search}
            listed: set[str] = set()
            for _, response in client.pages("/api/v1/users", params=params):
                try:
                    users = split_array(response.content)
                except ValueError as exc:
                    raise FatalError(f"okta.users: /api/v1/users did not return a list ({exc})") from exc
                for user, raw in users:
                    user_id = user.get("id") if isinstance(user, dict) else None
                    if not isinstance(user_id, str) or not user_id:
                        yield ItemFailure("unknown", "a user without an id in /api/v1/users")
                        continue
                    if user_id in listed:
                        # Two entries under one id: which is the user is unknowable, so the
                        # first stays stored and the second is reported, never dropped silently.
                        yield ItemFailure(f"{user_id} (repeated)",
                                          "okta.users: the listing returned this user id again; "
                                          "its first entry was stored")
                        continue
                    listed.add(user_id)
                    if user_id in read:
                        continue  # listed by the unfiltered read, deprovisioned since: already read
                    read.add(user_id)
                    yield from one(user, raw, user_id)

        yield from listing(None)
        # A full read lists the DEPROVISIONED users; so does a run after many users left at once
        # (a page per 200 costs less than reading each by id).
        if before is None or full or len(before.users.keys() - read) > self.by_id_max:
            yield from listing(DEPROVISIONED)
        else:
            yield from self._not_listed(client, before, read, one, gone, cursor)
        full_at = now if full or before is None else before.full_at
        yield Checkpoint({"factors": [log_to, {"full_at": full_at,
                                               "users": {k: list(v) for k, v in kept.items()},
                                               "deprovisioned": {k: list(v) for k, v in gone.items()}}]})

    def _not_listed(self, client: HttpClient, before: _FactorState, read: set[str],
                    one: Callable[[dict[str, Any], bytes, str], Iterator[StreamOutput]],
                    gone: dict[str, tuple[str, dict[str, Any]]], cursor: Cursor) -> Iterator[StreamOutput]:
        """Between full reads (one listing, which leaves DEPROVISIONED users out): a user of the
        previous run who is no longer listed is read by id (DEPROVISIONED since, or deleted:
        no item); a user DEPROVISIONED at the previous run and still not listed (reactivated
        users are) is carried, saying when its status was read (``status_read_at``)."""
        for user_id in sorted(before.users.keys() - read):
            try:
                user, response = client.get_json(f"/api/v1/users/{quote(user_id, safe='')}")
            except AuthError:
                raise
            except NotFoundError:
                continue  # deleted since the previous run: not a user any more
            except FatalError as exc:
                yield ItemFailure(user_id, str(exc), type(exc).__name__)
                continue
            if not isinstance(user, dict) or user.get("id") != user_id:
                yield ItemFailure(user_id, f"/api/v1/users/{user_id} did not return that user")
                continue
            read.add(user_id)
            yield from one(user, response.content, user_id)
        for user_id in sorted(before.deprovisioned.keys() - read):
            read_at, kept = before.deprovisioned[user_id]
            gone[user_id] = (read_at, kept)
            carried = orjson.dumps({"user": kept, "status_read_at": read_at})
            yield SourceItem(user_id, cursor.ceiling, carried,
                             {"user": kept, "factors": None, "factors_read_at": None,
                              "status_read_at": read_at})

    def normalise(self, item: SourceItem) -> Normalised:
        """Login, email (``profile.email``, None when absent: it links the person to accounts
        elsewhere), status, last login and each factor's type, provider and status; never the
        rest of the profile, never factor profiles (phone numbers, device names)."""
        user: dict[str, Any] = item.obj["user"]
        factors: list[dict[str, Any]] | None = item.obj["factors"]
        profile = user.get("profile") or {}
        login = profile.get("login")
        email = profile.get("email")
        status = user.get("status")
        data: dict[str, Any] = {
            "user_id": user["id"],
            "login": login,
            "email": email if isinstance(email, str) and email else None,
            "status": status,
            "last_login": user.get("lastLogin"),
            "status_changed": user.get("statusChanged"),
            "factors_read_at": item.obj.get("factors_read_at"),
            "status_read_at": item.obj.get("status_read_at"),
        }
        exception = None
        if factors is None:
            data["factors"] = None
            data["factors_note"] = "not read: a DEPROVISIONED user cannot sign in"
        else:
            data["factors"] = [
                {"id": f.get("id"), "type": f.get("factorType"), "provider": f.get("provider"),
                 "status": f.get("status")}
                for f in factors
            ]
            active = [f for f in factors if f.get("status") == "ACTIVE"]
            data["active_factors"] = len(active)
            weak = self.config.weak_factors
            if status in SIGN_IN_STATUSES:
                if not active:
                    exception = f"{status} user has no active MFA factor"
                elif all(f.get("factorType") in weak for f in active):
                    types = ", ".join(sorted({str(f.get("factorType")) for f in active}))
                    exception = f"{status} user's only active MFA factors are weak ({types})"
        source_url = self.config.api_url(f"/api/v1/users/{quote(user['id'], safe='')}/factors")
        return Normalised(kind="mfa_status", actor=login, source_url=source_url, data=data,
                        exception=exception)
