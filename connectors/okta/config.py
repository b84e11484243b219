"""The ``[connectors.okta]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from connectors.sdk.base import ConnectorConfig, required_field, secret_field
from connectors.sdk.urls import url_problems

__all__ = ["FACTOR_TYPES", "OktaConfig"]

FACTOR_TYPES = frozenset({"call", "email", "push", "question", "signed_nonce", "sms", "token",
                          "token:hardware", "token:hotp", "token:software:totp", "u2f", "web", "webauthn"})
"""Okta's factorType values (``/api/v1/users/{id}/factors``), for checking ``weak_factors``."""


@dataclass(frozen=True, kw_only=True)
class OktaConfig(ConnectorConfig):
    """Where the org is and which variable holds its API token.

    ``page_size`` is the ``limit`` asked of ``/api/v1/logs`` (Okta allows up to 1000; the
    user list is capped at Okta's 200). ``low_remaining``: when a response says this many
    requests or fewer are left in the rate-limit window, wait for its reset before the next
    request, leaving the rest of the org's budget to other integrations.
    """

    org_url: str = required_field()
    token_env: str = secret_field("OKTA_API_TOKEN")
    interval: timedelta = timedelta(minutes=15)
    page_size: int = 1000
    low_remaining: int = 5
    # Okta's System Log is eventually consistent: an event can become visible shortly after
    # its `published` time. Reading only up to `ceiling - settle` leaves such late events for
    # the next run instead of passing them by ("0s" reads up to the run's start).
    settle: timedelta = timedelta(minutes=1)
    # Factor types that do not count as MFA on their own: a user whose only active factors are
    # of these types is an exception. Okta's security question is a second password, not MFA.
    weak_factors: tuple[str, ...] = ("question",)
    # okta.users reads every user's factors at most this often; in between only the factors of
    # new users and of users the System Log names in a user.mfa.factor.* event are read, and
    # each record's factors_read_at says when its factors were read. "0s": every run reads all.
    factors_full_every: timedelta = timedelta(days=1)

    @property
    def base_url(self) -> str:
        """``org_url`` without a trailing slash."""
        return self.org_url.rstrip("/")

    def api_url(self, path: str, **query: str) -> str:
        """An absolute URL into the org's API, for a record's ``source_url``."""
        url = f"{self.base_url}{path}"
        return f"{url}?{urlencode(query)}" if query else url

    def problems(self) -> list[tuple[str, str]]:
        """(key, problem) for every value that cannot work; the config loader reports the first."""
        found: list[tuple[str, str]] = []
        found.extend(url_problems("org_url", self.org_url, "https://acme.okta.com"))
        if not found and urlsplit(self.org_url).path.strip("/"):
            found.append(("org_url", "must be the org's base URL, without a path or query"))
        if not 1 <= self.page_size <= 1000:
            found.append(("page_size", f"must be between 1 and 1000, got {self.page_size}"))
        if self.low_remaining < 0:
            found.append(("low_remaining", f"must be 0 or more, got {self.low_remaining}"))
        for index, factor in enumerate(self.weak_factors):
            if factor not in FACTOR_TYPES:
                found.append((f"weak_factors[{index}]", f'"{factor}" is not an Okta factor type '
                              f'(known: {", ".join(sorted(FACTOR_TYPES))})'))
        if self.factors_full_every < timedelta(0):
            found.append(("factors_full_every", "must not be negative"))
        if not self.token_env:
            found.append(("token_env", "must name the environment variable holding the API token"))
        return found
