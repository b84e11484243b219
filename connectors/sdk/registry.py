"""Connector registry: built-ins and third parties (an entry-point group), each imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.sdk.base import Connector

__all__ = [
    "BUILTIN",
    "BUILTIN_STREAMS",
    "ENTRY_POINT_GROUP",
    "ConnectorLoadError",
    "Discovery",
    "Registry",
    "discover",
    "load_builtin",
]

ENTRY_POINT_GROUP = "evidence_collector.connectors"

BUILTIN: dict[str, str] = {
    "synthetic": "connectors.synthetic:SyntheticConnector",
    "aws": "connectors.aws:AwsConnector",
    "github": "connectors.github:GithubConnector",
    "jira": "connectors.jira:JiraConnector",
    "okta": "connectors.okta:OktaConnector",
}


BUILTIN_STREAMS: dict[str, tuple[str, ...]] = {
    "synthetic": ("events", "users"),
    "aws": ("cloudtrail", "iam_credential_report", "backup_jobs", "rds_snapshots", "iam_users"),
    "github": ("pull_requests", "branch_protection", "org_settings", "members"),
    "jira": ("change_tickets", "incidents"),
    "okta": ("system_log", "users"),
}
"""The streams each built-in declares, in declaration order, so that a stream id named in the
config or the control library is checked without importing its connector (a test holds this
table equal to the declared streams)."""


class ConnectorLoadError(Exception):
    """A third-party connector is registered but cannot be imported; the message names its target."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"cannot import {target}: {reason}")


@dataclass(frozen=True)
class Discovery:
    """What discovery found: usable connectors by name, and third parties that failed to load."""

    connectors: dict[str, type[Connector[Any]]]
    skipped: dict[str, str]


def _load(target: str) -> type[Connector[Any]]:
    module_name, _, attr = target.partition(":")
    loaded = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise TypeError(f"{target} is not a Connector subclass")
    return loaded


def load_builtin(name: str) -> type[Connector[Any]]:
    """Import one built-in connector; a broken built-in is a bug and raises."""
    return _load(BUILTIN[name])


class Registry:
    """Every installed connector by name; each connector is imported the first time it is asked for.

    Importing a connector imports its vendor SDK (PyGithub alone takes about 0.15 s), so a
    collection imports only the connectors its config names. Built-in names are known without
    reading anything; the entry points of the group are read (not imported) only when a name is
    not built in, or when every name is listed. One instance serves a whole command: a
    connector is imported, and the entry points read, at most once.
    """

    def __init__(self, builtin: Mapping[str, str] = BUILTIN, group: str = ENTRY_POINT_GROUP) -> None:
        self._builtin = dict(builtin)
        self._group = group
        self._third_party: dict[str, str] | None = None
        self._loaded: dict[str, type[Connector[Any]]] = {}

    def _entry_points(self) -> dict[str, str]:
        if self._third_party is None:
            from importlib.metadata import entry_points  # reads every installed distribution

            self._third_party = {ep.name: ep.value for ep in entry_points(group=self._group)
                                 if ep.name not in self._builtin}
        return self._third_party

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._builtin or name in self._entry_points())

    def names(self) -> list[str]:
        """Every connector name, built-in and registered, sorted; imports none of them."""
        return sorted({*self._builtin, *self._entry_points()})

    def load(self, name: str) -> type[Connector[Any]]:
        """The connector class registered as ``name``, imported once.

        KeyError when no connector has that name; ConnectorLoadError when a third party's
        target cannot be imported. A built-in that fails to import is a bug and raises as is.
        """
        if name in self._loaded:
            return self._loaded[name]
        if name in self._builtin:
            loaded = _load(self._builtin[name])
        else:
            target = self._entry_points()[name]
            try:
                loaded = _load(target)
            except Exception as exc:
                raise ConnectorLoadError(target, f"{type(exc).__name__}: {exc}") from exc
        self._loaded[name] = loaded
        return loaded

    def stream_names(self, name: str) -> tuple[str, ...]:
        """The streams connector ``name`` declares; () when there is no such connector or it
        cannot be imported (a name to report as unknown, not a crash)."""
        if name in self._builtin and name in BUILTIN_STREAMS:
            return BUILTIN_STREAMS[name]
        try:
            return self.load(name).stream_names()
        except (KeyError, ConnectorLoadError):
            return ()

    def knows_stream(self, stream_id: str) -> bool:
        """Whether ``<connector>.<stream>`` names a declared stream; imports no built-in, and of a
        third party only that connector."""
        connector, dot, stream = stream_id.partition(".")
        return bool(dot) and connector in self and stream in self.stream_names(connector)

    def discover(self) -> Discovery:
        """Import every connector: built-ins (which must load) and third parties (skipped, with
        the reason, when they fail)."""
        found: dict[str, type[Connector[Any]]] = {}
        skipped: dict[str, str] = {}
        for name in self.names():
            try:
                found[name] = self.load(name)
            except ConnectorLoadError as exc:
                skipped[name] = exc.reason
        return Discovery(found, skipped)


def discover() -> Discovery:
    """Every connector, imported: built-ins (which must load) and entry points (skipped, with the
    reason, when broken)."""
    return Registry().discover()
