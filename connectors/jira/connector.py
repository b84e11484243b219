"""The Jira connector: one Jira Cloud site, read through the `jira` package's client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from connectors.jira.config import JiraConfig
from connectors.jira.streams import ChangeTickets, Incidents
from connectors.sdk.base import Connector, HttpOptions
from connectors.sdk.errors import AuthError

if TYPE_CHECKING:
    from connectors.jira._client import JiraApi

__all__ = ["JiraConnector"]


class JiraConnector(Connector[JiraConfig, "JiraApi"]):
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
        self._refused: AuthError | None = None

    def check(self) -> None:
        """The config is sane and both credentials are present in the environment."""
        super().check()
        self.secret("email_env")
        self.secret("token_env")

    def open_session(self) -> JiraApi:
        """The connected client; a rejected login is remembered so no stream asks again."""
        if self._refused is not None:
            raise self._refused
        # Imported here: the `jira` package (and requests) load only when Jira is read.
        from connectors.jira._client import JiraApi

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
        return api

    def close_session(self, session: JiraApi) -> None:
        """Close the client."""
        session.close()
