"""Okta: the System Log (sign-ins, lifecycle, membership changes) and users with their MFA factors."""

from connectors.okta.config import OktaConfig
from connectors.okta.connector import OktaConnector
from connectors.okta.system_log import SystemLogStream, event_kind
from connectors.okta.users import UsersStream

__all__ = ["OktaConfig", "OktaConnector", "SystemLogStream", "UsersStream", "event_kind"]
