"""The Okta API client: the SDK's retrying HTTP client with the org's SSWS token.

Importing this module imports httpx; the connector imports it only when it opens its session.
"""

from __future__ import annotations

from connectors.okta.config import OktaConfig
from connectors.sdk.base import HttpOptions
from connectors.sdk.http import HttpClient

__all__ = ["USER_AGENT", "open_client"]

USER_AGENT = "evidence-collector (okta connector)"


def open_client(config: OktaConfig, token: str, options: HttpOptions) -> HttpClient:
    """A client for the org at ``config.org_url``, authenticated as ``SSWS <token>``."""
    return HttpClient(
        "okta",
        config.base_url,
        headers={"Authorization": f"SSWS {token}", "Accept": "application/json",
                 "User-Agent": USER_AGENT},
        options=options,
        token_env=config.token_env,
        low_remaining=config.low_remaining,
    )

