"""Jira Cloud: change tickets and incidents with their full status history, via the `jira` package."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.jira._client import JiraApi
from connectors.jira.config import JiraConfig
from connectors.jira.streams import ChangeTickets, Incidents
from connectors.sdk.base import Connector, HttpOptions
from connectors.sdk.errors import AuthError

__all__ = ["ChangeTickets", "Incidents", "JiraConfig", "JiraConnector"]


class JiraConnector(Connector[JiraConfig]):
    """One Jira Cloud site, read as an API user (email + API token from the environment).

    The client is opened on the first stream's first fetch and shared by both streams, so a
    collection costs one serverInfo, one myself and one field request besides its searches.
    """

    name = "jira"
    config_type = JiraConfig
    stream_types = (ChangeTickets, Incidents)

    def __init__(self, config: JiraConfig, *, env: Mapping[str, str] | None = None,
                 http: HttpOptions | None = None) -> None:
        super().__init__(config, env=env, http=http)
        self._api: JiraApi | None = None
        self._refused: AuthError | None = None

    def check(self) -> None:
        """Both credentials are present in the environment."""
        self.secret("email_env")
        self.secret("token_env")

    def api(self) -> JiraApi:
        """The connected client; a rejected login is remembered so no stream asks again."""
        if self._refused is not None:
            raise self._refused
        if self._api is None:
            api = JiraApi(
                self.config.url, self.secret("email_env"), self.secret("token_env"),
                email_env=self.config.email_env, token_env=self.config.token_env, options=self.http,
            )
            try:
                api.connect()
            except AuthError as exc:
                api.close()
                self._refused = exc
                raise
            except Exception:
                api.close()
                raise
            self._api = api
        return self._api

    def close(self) -> None:
        """Close the client, if one was opened."""
        if self._api is not None:
            self._api.close()
            self._api = None
