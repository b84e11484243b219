"""The ``[connectors.github]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.sdk.base import ConnectorConfig, required_field, secret_field
from connectors.sdk.urls import url_problems

__all__ = ["GithubConfig"]


@dataclass(frozen=True, kw_only=True)
class GithubConfig(ConnectorConfig):
    """``[connectors.github]``: the org, the token's variable, and the API (GHES: ``…/api/v3``).

    ``require_final_approval``: a merge to the default branch whose approvals are all of earlier
    commits (work pushed after the last approval) is an exception too.

    ``api``: how merged pull requests are read. ``"graphql"`` (default) asks for ``per_page``
    pulls with their reviews and review dismissals in one query, and falls back to REST for
    the rest of the process when the server has no GraphQL API (a 404); ``"rest"`` reads each
    merged pull's detail and reviews with REST calls. Both store the same records.
    """

    org: str = required_field()
    token_env: str = secret_field("GITHUB_TOKEN")
    base_url: str = "https://api.github.com"
    repos: tuple[str, ...] = ()
    per_page: int = 100
    request_spacing_ms: int = 250
    require_final_approval: bool = False
    api: str = "graphql"

    def problems(self) -> list[tuple[str, str]]:
        """Values that cannot work, as (key, problem); checked when the config is loaded."""
        found: list[tuple[str, str]] = []
        found.extend(url_problems("base_url", self.base_url, "https://api.github.com"))
        if not self.org.strip() or "/" in self.org:
            found.append(("org", f'expected an organisation login, got "{self.org}"'))
        if not 1 <= self.per_page <= 100:
            found.append(("per_page", f"must be between 1 and 100, not {self.per_page}"))
        if self.api not in ("graphql", "rest"):
            found.append(("api", f'expected "graphql" or "rest", got "{self.api}"'))
        if self.request_spacing_ms < 0:
            found.append(("request_spacing_ms", "must not be negative"))
        for index, repo in enumerate(self.repos):
            owner, _, name = repo.rpartition("/")
            if not name or (owner and owner != self.org):
                found.append((f"repos[{index}]", f'expected "<repo>" or "{self.org}/<repo>", got "{repo}"'))
        return found
