"""Jira Cloud: change tickets and incidents with their full status history, via the `jira` package."""

from connectors.jira.config import JiraConfig
from connectors.jira.connector import JiraConnector
from connectors.jira.streams import ChangeTickets, Incidents

__all__ = ["ChangeTickets", "Incidents", "JiraConfig", "JiraConnector"]
