"""The Okta connector: one SSWS-authenticated HTTP client shared by its streams."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from connectors.okta.config import OktaConfig
from connectors.okta.system_log import SystemLogStream
from connectors.okta.users import UsersStream
from connectors.sdk.base import Connector, HttpOptions
from connectors.sdk.http import HttpClient

__all__ = ["OktaConnector"]

USER_AGENT = "evidence-collector (okta connector)"


class OktaConnector(Connector[OktaConfig]):
    """Reads an Okta org with a read-only admin API token (``Authorization: SSWS <token>``)."""

    name = "okta"
    config_type = OktaConfig
    stream_types = (SystemLogStream, UsersStream)

    def __init__(
        self,
        config: OktaConfig,
        *,
        env: Mapping[str, str] | None = None,
        http: HttpOptions | None = None,
    ) -> None:
        super().__init__(config, env=env, http=http)
        self._client: HttpClient | None = None

    @property
    def client(self) -> HttpClient:
        """The HTTP client, opened on first use (AuthError naming the variable if it is unset)."""
        if self._client is None:
            token = self.secret("token_env")
            self._client = HttpClient(
                self.name,
                self.config.base_url,
                headers={"Authorization": f"SSWS {token}", "Accept": "application/json",
                         "User-Agent": USER_AGENT},
                options=self.http,
                token_env=self.config.token_env,
                low_remaining=self.config.low_remaining,
            )
        return self._client

    def api_url(self, path: str, **query: str) -> str:
        """An absolute URL into the org's API, for a record's ``source_url``."""
        url = f"{self.config.base_url}{path}"
        return f"{url}?{urlencode(query)}" if query else url

    def close(self) -> None:
        """Close the HTTP client, if one was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None
