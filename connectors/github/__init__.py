"""GitHub: merged pull requests with their reviews, default-branch protection, and org 2FA."""

from connectors.github.config import GithubConfig
from connectors.github.connector import GithubConnector
from connectors.github.streams import BranchProtection, OrgSettings, PullRequests

__all__ = ["BranchProtection", "GithubConfig", "GithubConnector", "OrgSettings", "PullRequests"]
