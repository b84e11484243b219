"""``okta.users``: every user, DEPROVISIONED included, with the MFA factors each has enrolled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connectors.okta.config import OktaConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import AuthError, FatalError
from connectors.sdk.items import Cursor, ItemFailure, Normalised, SourceItem
from connectors.sdk.rawjson import split_array

if TYPE_CHECKING:
    # A type only: the HTTP client (httpx) loads when the connector opens its session.
    from connectors.sdk.http import HttpClient

__all__ = ["NO_ACTIVE_FACTOR", "SIGN_IN_STATUSES", "UsersStream"]

NO_ACTIVE_FACTOR = "ACTIVE user has no active MFA factor"
SIGN_IN_STATUSES = ("ACTIVE", "PASSWORD_EXPIRED", "RECOVERY", "LOCKED_OUT")
"""Statuses of accounts that can sign in (after a reset or an unlock): each needs MFA like ACTIVE."""
_USER_PAGE_MAX = 200
_LISTINGS: tuple[str | None, ...] = (None, 'status eq "DEPROVISIONED"')
"""Okta's unfiltered list leaves DEPROVISIONED users out; a second, searched listing adds them."""


class UsersStream(Stream[OktaConfig, "HttpClient"]):
    """The MFA state of every user, read at the run's ceiling (a state stream).

    A user who can sign in (``SIGN_IN_STATUSES``) is an exception without an ACTIVE factor, or
    when every ACTIVE factor is of a type in ``weak_factors``. A user id listed twice in one
    listing is an ``ItemFailure`` for the second entry (``<id> (repeated)``).

    Requests per run: one per 200 users in each of the two listings, plus one factors
    request per user who is not DEPROVISIONED (a deprovisioned user cannot sign in, so the
    record says so instead of reading factors). A user's raw bytes are its list element,
    a newline, then its factors response body.
    """

    name = "users"
    kinds = frozenset({"mfa_status"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        """Yield one item per user; a user whose factors cannot be read is an ItemFailure."""
        client: HttpClient = self.session()
        limit = str(min(self.config.page_size, _USER_PAGE_MAX))
        read: set[str] = set()
        for search in _LISTINGS:
            params = {"limit": limit} if search is None else {"limit": limit, "search": search}
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
                    if user.get("status") == "DEPROVISIONED":
                        yield SourceItem(user_id, cursor.ceiling, raw, {"user": user, "factors": None})
                        continue
                    try:
                        factors, factor_response = client.get_json(
                            f"/api/v1/users/{quote(user_id, safe='')}/factors"
                        )
                    except AuthError:
                        raise
                    except FatalError as exc:  # e.g. the user was deleted since the listing
                        yield ItemFailure(user_id, str(exc), type(exc).__name__)
                        continue
                    if not isinstance(factors, list):
                        yield ItemFailure(user_id, "factors response is not a list")
                        continue
                    yield SourceItem(user_id, cursor.ceiling, raw + b"\n" + factor_response.content,
                                     {"user": user, "factors": factors})

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
