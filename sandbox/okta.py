"""A fake Okta org on loopback: System Log, users and factors, SSWS auth and Okta's rate limits."""

from __future__ import annotations

import base64
import bisect
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any
from urllib.parse import urlencode

from sandbox._http import FakeServer, Handler, Request, Response, Status
from sandbox.okta_data import OktaOrg, format_published, make_event, seed_org

__all__ = ["DEFAULT_TOKEN", "FakeOkta", "RateLimit"]

DEFAULT_TOKEN = "sandbox-okta-token"  # noqa: S105 - a fixture value for a loopback fake

_LOG_LIMIT_DEFAULT, _LOG_LIMIT_MAX = 100, 1000
_USER_LIMIT_DEFAULT, _USER_LIMIT_MAX = 200, 200
_CLAUSE = re.compile(r'^\s*([A-Za-z.]+)\s+(eq|sw)\s+"([^"]*)"\s*$')
_LOG_FIELDS = {"eventType", "uuid", "actor.id", "actor.alternateId"}
_USER_FIELDS = {"status", "id", "profile.login"}


def _error(status: int, code: str, summary: str) -> Response:
    return Response(status, {"errorCode": code, "errorSummary": summary, "errorLink": code,
                             "errorId": "oae" + code, "errorCauses": []})


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.astimezone(UTC)


def _parse_expression(text: str, fields: set[str]) -> list[tuple[str, str, str]]:
    """``a eq "x" or b sw "y"`` as clauses; ValueError for anything else."""
    clauses = []
    for part in re.split(r"\s+or\s+", text.strip()):
        match = _CLAUSE.match(part)
        if match is None or match.group(1) not in fields:
            raise ValueError(part)
        clauses.append((match.group(1), match.group(2), match.group(3)))
    return clauses


def _lookup(obj: dict[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(obj: dict[str, Any], clauses: list[tuple[str, str, str]]) -> bool:
    for name, op, wanted in clauses:
        value = _lookup(obj, name)
        if isinstance(value, str) and (value == wanted if op == "eq" else value.startswith(wanted)):
            return True
    return False


def _limit(request: Request, default: int, maximum: int) -> int:
    text = request.arg("limit")
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError("limit")
    return min(int(text), maximum)


@dataclass
class RateLimit:
    """One Okta rate-limit bucket: ``limit`` requests per ``window`` seconds."""

    limit: int = 600
    window: float = 60.0
    used: int = 0
    started: float = 0.0

    def take(self, now: float) -> bool:
        """Count one request now; False when the bucket is exhausted (answer 429)."""
        if now >= self.started + self.window:
            self.started, self.used = now, 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self) -> list[tuple[str, str]]:
        """Okta's ``X-Rate-Limit-*`` headers; the reset is an epoch second."""
        return [
            ("X-Rate-Limit-Limit", str(self.limit)),
            ("X-Rate-Limit-Remaining", str(max(0, self.limit - self.used))),
            ("X-Rate-Limit-Reset", str(math.ceil(self.started + self.window))),
        ]


@dataclass(frozen=True, order=True)
class _Key:
    published: datetime
    seq: int

    def token(self) -> str:
        raw = f"{int(self.published.timestamp() * 1000)}_{self.seq}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> _Key:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        millis, seq = raw.split("_")
        return cls(datetime.fromtimestamp(int(millis) / 1000, UTC), int(seq))


class FakeOkta(FakeServer):
    """Okta's ``/api/v1/logs``, ``/api/v1/users``, ``/api/v1/users/{id}`` and
    ``/api/v1/users/{id}/factors``; factor changes made with ``change_factors`` are logged as
    ``user.mfa.factor.*`` events, which ``/api/v1/logs`` serves to a
    ``filter=eventType sw "user.mfa.factor."`` query.

    Wire behaviour kept from Okta: ``Authorization: SSWS <token>`` (401 E0000011 otherwise);
    ``X-Rate-Limit-*`` on every answer and 429 E0000047 when a bucket is empty; one ``Link``
    header per rel with an opaque ``after`` cursor. The log's ``since`` is inclusive and
    ``until`` exclusive; without ``until`` the log is a polling query and every page, the
    last included, has a next link. The unfiltered user list leaves DEPROVISIONED users
    out; ``search``/``filter`` ``status eq "DEPROVISIONED"`` lists them.
    """

    def __init__(
        self,
        org: OktaOrg | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        limits: dict[str, RateLimit] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.token = token
        self._clock = clock
        self._data_lock = threading.Lock()
        self.limits = {"logs": RateLimit(), "users": RateLimit(), "factors": RateLimit()}
        self.limits.update(limits or {})
        self._events: list[tuple[_Key, dict[str, Any]]] = []
        self._seq = 0
        self._users: dict[str, dict[str, Any]] = {}
        self._factors: dict[str, list[dict[str, Any]]] = {}
        self._repeated: set[str] = set()
        org = org if org is not None else seed_org()
        self.add_events(org.events)
        for user in org.users:
            self.put_user(user, org.factors.get(user["id"], []))
        self.route("GET", r"^/api/v1/logs$", self._guard("logs", self._logs))
        self.route("GET", r"^/api/v1/users$", self._guard("users", self._list_users))
        self.route("GET", r"^/api/v1/users/(?P<user>[^/]+)/factors$",
                   self._guard("factors", self._factors_of))
        self.route("GET", r"^/api/v1/users/(?P<user>[^/]+)$", self._guard("users", self._get_user))

    # -- the org, mutable between runs -------------------------------------------------------

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Append events to the log (kept in ``published`` order, ties in arrival order)."""
        with self._data_lock:
            for event in events:
                self._seq += 1
                entry = (_Key(_parse_time(event["published"]), self._seq), event)
                bisect.insort(self._events, entry, key=lambda e: e[0])

    def add_event_at(self, event: dict[str, Any], when: datetime) -> None:
        """Append an event that Okta holds at ``when`` whatever its ``published`` text says (Okta's
        own documented example event is published on September 31st)."""
        with self._data_lock:
            self._seq += 1
            bisect.insort(self._events, (_Key(when.astimezone(UTC), self._seq), event), key=lambda e: e[0])

    def repeat_in_listing(self, user_id: str) -> None:
        """List ``user_id`` twice in a row from now on (Okta's documented user list shows one id
        on two users)."""
        with self._data_lock:
            self._repeated.add(user_id)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event in the log, in the order an ASCENDING query returns them."""
        with self._data_lock:
            return [event for _, event in self._events]

    def put_user(self, user: dict[str, Any], factors: list[dict[str, Any]] | None = None) -> None:
        """Add or replace a user (and, when given, its factors)."""
        with self._data_lock:
            self._users[user["id"]] = user
            if factors is not None or user["id"] not in self._factors:
                self._factors[user["id"]] = list(factors or [])

    def change_factors(self, user_id: str, factors: list[dict[str, Any]], *,
                       event_type: str = "user.mfa.factor.activate",
                       actor: dict[str, Any] | None = None) -> dict[str, Any]:
        """Replace ``user_id``'s factors and log the change as Okta does: a ``user.mfa.factor.*``
        event published now (the fake's clock) whose target is the user, its actor the user
        unless ``actor`` (an admin resetting factors) is given. Returns the event."""
        with self._data_lock:
            user = self._users[user_id]
            self._factors[user_id] = list(factors)
            seq = self._seq
        profile = user.get("profile") or {}
        who = {"id": user_id, "type": "User", "alternateId": profile.get("login"),
               "displayName": f"{profile.get('firstName')} {profile.get('lastName')}"}
        target = {**who, "detailEntry": None}
        rng = Random(seq)  # noqa: S311 - fixture data, not security
        now = datetime.fromtimestamp(self._clock(), UTC)
        event = make_event(rng, event_type, now, actor or who, [target], message="Update factor for user")
        self.add_events([event])
        return event

    def set_status(self, login: str, status: str, at: datetime) -> dict[str, Any]:
        """Move the user whose login is ``login`` to ``status`` (DEPROVISIONED, SUSPENDED, ACTIVE…)
        at ``at``, as an admin does, and log the matching ``user.lifecycle.*`` event; returns the
        user. KeyError when no user has that login."""
        with self._data_lock:
            user = next((u for u in self._users.values() if u["profile"]["login"] == login), None)
        if user is None:
            raise KeyError(login)
        changed = {**user, "status": status, "statusChanged": format_published(at),
                   "lastUpdated": format_published(at)}
        self.put_user(changed)
        event_type = {"DEPROVISIONED": "user.lifecycle.deactivate", "SUSPENDED": "user.lifecycle.suspend",
                      "ACTIVE": "user.lifecycle.activate"}.get(status)
        if event_type is not None:
            rng = Random(f"{login}/{status}/{at.isoformat()}")  # noqa: S311 - fixture data, not security
            admin = {"id": "00u1sandboxadmin0001", "type": "User", "alternateId": "admin@example.com",
                     "displayName": "Sandbox Admin"}
            target = {"id": user["id"], "type": "User", "alternateId": login, "displayName": login,
                      "detailEntry": None}
            self.add_events([make_event(rng, event_type, at, admin, [target], message=event_type)])
        return changed

    def delete_user(self, user_id: str) -> None:
        """Delete a user, as Okta does after deprovisioning: gone from every listing, 404 by id."""
        with self._data_lock:
            del self._users[user_id]
            self._factors.pop(user_id, None)

    @property
    def users(self) -> list[dict[str, Any]]:
        """Every user, DEPROVISIONED included."""
        with self._data_lock:
            return list(self._users.values())

    def factors_of(self, user_id: str) -> list[dict[str, Any]]:
        """The factors enrolled for ``user_id``."""
        with self._data_lock:
            return list(self._factors.get(user_id, []))

    def rate_limited(self, bucket: str = "logs", reset_in: int = 1) -> Status:
        """A 429 fault as Okta sends it, resetting ``reset_in`` seconds from now."""
        limit = self.limits[bucket].limit
        reset = math.ceil(self._clock()) + reset_in
        return Status(
            429,
            [("X-Rate-Limit-Limit", str(limit)), ("X-Rate-Limit-Remaining", "0"),
             ("X-Rate-Limit-Reset", str(reset))],
            {"errorCode": "E0000047",
             "errorSummary": "API call exceeded rate limit due to too many requests."},
        )

    # -- request handling --------------------------------------------------------------------

    def _guard(self, bucket: str, handler: Handler) -> Handler:
        def guarded(request: Request) -> Response:
            limit = self.limits[bucket]
            with self._data_lock:
                allowed = limit.take(self._clock())
                headers = limit.headers()
            if not allowed:
                response = _error(429, "E0000047",
                                  "API call exceeded rate limit due to too many requests.")
            elif request.headers.get("authorization") != f"SSWS {self.token}":
                response = _error(401, "E0000011", "Invalid token provided")
            else:
                try:
                    response = handler(request)
                except ValueError as exc:
                    response = _error(400, "E0000001", f"Api validation failed: {exc}")
            return Response(response.status, response.body, [*response.headers, *headers])

        return guarded

    @staticmethod
    def _link(request: Request, rel: str, **changes: str) -> tuple[str, str]:
        query = {k: v[0] for k, v in request.query.items()}
        query.update(changes)
        url = f"{request.base_url}{request.path}"
        if query:
            url += "?" + urlencode(query)
        return ("Link", f'<{url}>; rel="{rel}"')

    def _logs(self, request: Request) -> Response:
        until_text, since_text = request.arg("until"), request.arg("since")
        try:
            until = _parse_time(until_text) if until_text else datetime.fromtimestamp(self._clock(), UTC)
        except ValueError:
            raise ValueError("until") from None
        try:
            since = _parse_time(since_text) if since_text else until - timedelta(days=7)
        except ValueError:
            raise ValueError("since") from None
        limit = _limit(request, _LOG_LIMIT_DEFAULT, _LOG_LIMIT_MAX)
        order = request.arg("sortOrder", "ASCENDING")
        if order not in ("ASCENDING", "DESCENDING"):
            raise ValueError("sortOrder")
        text = request.arg("filter")
        clauses = _parse_expression(text, _LOG_FIELDS) if text else None
        after = request.arg("after")
        try:
            position = _Key.parse(after) if after else None
        except (ValueError, UnicodeDecodeError):
            raise ValueError("after") from None
        with self._data_lock:
            entries = [(k, e) for k, e in self._events
                       if since <= k.published < until and (clauses is None or _matches(e, clauses))]
        if order == "DESCENDING":
            entries.reverse()
        if position is not None:
            entries = [(k, e) for k, e in entries
                       if (k > position if order == "ASCENDING" else k < position)]
        page, rest = entries[:limit], entries[limit:]
        links = [self._link(request, "self")]
        if rest or until_text is None:
            last = page[-1][0].token() if page else after
            links.append(self._link(request, "next", **({"after": last} if last else {})))
        return Response(200, [event for _, event in page], links)

    def _list_users(self, request: Request) -> Response:
        limit = _limit(request, _USER_LIMIT_DEFAULT, _USER_LIMIT_MAX)
        expression = request.arg("search") or request.arg("filter")
        with self._data_lock:
            users = list(self._users.values())
        if expression:
            clauses = _parse_expression(expression, _USER_FIELDS)
            users = [u for u in users if _matches(u, clauses)]
        else:
            users = [u for u in users if u["status"] != "DEPROVISIONED"]
        after = request.arg("after")
        if after:
            ids = [u["id"] for u in users]
            if after not in ids:
                raise ValueError("after")
            users = users[ids.index(after) + 1:]
        page, rest = users[:limit], users[limit:]
        links = [self._link(request, "self")]
        if rest:
            links.append(self._link(request, "next", after=page[-1]["id"]))
        with self._data_lock:
            repeated = set(self._repeated)
        listed = [copy for user in page for copy in ([user, user] if user["id"] in repeated else [user])]
        return Response(200, listed, links)

    def _get_user(self, request: Request) -> Response:
        user_id = request.params["user"]
        with self._data_lock:
            user = self._users.get(user_id)
        if user is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {user_id} (User)")
        return Response(200, user)

    def _factors_of(self, request: Request) -> Response:
        user_id = request.params["user"]
        with self._data_lock:
            known = user_id in self._users
            factors = list(self._factors.get(user_id, []))
        if not known:
            return _error(404, "E0000007", f"Not found: Resource not found: {user_id} (User)")
        return Response(200, factors)
