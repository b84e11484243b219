"""The GitHub connector: its config section and the PyGithub client its streams share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.github.config import GithubConfig
from connectors.github.members import Members
from connectors.github.streams import BranchProtection, OrgSettings, PullRequests
from connectors.sdk.base import Connector

if TYPE_CHECKING:
    from connectors.github._client import GithubClient

__all__ = ["GithubConnector"]


class GithubConnector(Connector[GithubConfig, "GithubClient"]):
    """GitHub.com or GitHub Enterprise Server through PyGithub, with a token from the environment."""

    name = "github"
    config_type = GithubConfig
    stream_types = (PullRequests, BranchProtection, OrgSettings, Members)

    def open_session(self) -> GithubClient:
        """The client (AuthError naming the variable when the token is unset)."""
        # Imported here: PyGithub costs about 0.2 s to import, paid only when GitHub is read.
        from connectors.github._client import GithubClient

        cfg = self.config
        return GithubClient(
            cfg.base_url, self.secret("token_env"), cfg.token_env, options=self.http,
            per_page=cfg.per_page, spacing=cfg.request_spacing_ms / 1000,
        )

    def close_session(self, session: GithubClient) -> None:
        """Close the client's connections."""
        session.close()
