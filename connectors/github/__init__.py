"""GitHub: merged pull requests with their reviews, default-branch protection, org 2FA and members."""

from connectors.github.config import GithubConfig
from connectors.github.connector import GithubConnector
from connectors.github.members import Members
from connectors.github.streams import BranchProtection, OrgSettings, PullRequests

__all__ = ["BranchProtection", "GithubConfig", "GithubConnector", "Members", "OrgSettings", "PullRequests"]
