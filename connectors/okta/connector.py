"""The Okta connector: one SSWS-authenticated HTTP client shared by its streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.okta.config import OktaConfig
from connectors.okta.system_log import SystemLogStream
from connectors.okta.users import UsersStream
from connectors.sdk.base import Connector

if TYPE_CHECKING:
    from connectors.sdk.http import HttpClient

__all__ = ["OktaConnector"]


class OktaConnector(Connector[OktaConfig, "HttpClient"]):
    """Reads an Okta org with a read-only admin API token (``Authorization: SSWS <token>``)."""

    name = "okta"
    config_type = OktaConfig
    stream_types = (SystemLogStream, UsersStream)

    def open_session(self) -> HttpClient:
        """The HTTP client (AuthError naming the variable when the token is unset)."""
        # Imported here: httpx loads only when Okta is read.
        from connectors.okta._client import open_client

        return open_client(self.config, self.secret("token_env"), self.http)

    def close_session(self, session: HttpClient) -> None:
        """Close the HTTP client."""
        session.close()
