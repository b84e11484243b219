"""The GitHub connector: its config section and the PyGithub client its streams share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from connectors.github._client import GithubClient
from connectors.github.config import GithubConfig
from connectors.github.streams import BranchProtection, OrgSettings, PullRequests
from connectors.sdk.base import Connector
from connectors.sdk.errors import FatalError

if TYPE_CHECKING:
    from github.Organization import Organization
    from github.Repository import Repository

__all__ = ["GithubConfig", "GithubConnector"]


class GithubConnector(Connector[GithubConfig]):
    """GitHub.com or GitHub Enterprise Server through PyGithub, with a token from the environment."""

    name = "github"
    config_type = GithubConfig
    stream_types = (PullRequests, BranchProtection, OrgSettings)

    def __init__(self, config: GithubConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._client: GithubClient | None = None

    @property
    def client(self) -> GithubClient:
        """The shared client, opened on first use (so listing streams needs no token)."""
        if self._client is None:
            cfg = self.config
            self._client = GithubClient(
                cfg.base_url, self.secret("token_env"), cfg.token_env, options=self.http,
                per_page=cfg.per_page, spacing=cfg.request_spacing_ms / 1000,
            )
        return self._client

    def check(self) -> None:
        """Refuse a config whose values cannot work, before any request."""
        for key, problem in self.config.problems():
            raise FatalError(f"github: connectors.github.{key}: {problem}")

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def organization(self) -> Organization:
        """The configured org (one request)."""
        client = self.client
        org = self.config.org
        return client.call(lambda: client.api.get_organization(org), f"GET /orgs/{org}")

    def repositories(self) -> Iterator[Repository]:
        """The configured repositories, else every repository of the org, in listing order."""
        client = self.client
        org = self.config.org
        if self.config.repos:
            for entry in self.config.repos:
                full = f"{org}/{entry.rpartition('/')[2]}"
                yield client.call(lambda full=full: client.api.get_repo(full), f"GET /repos/{full}")  # type: ignore[misc]
            return
        organization = self.organization()
        yield from client.each(organization.get_repos(), f"GET /orgs/{org}/repos")

