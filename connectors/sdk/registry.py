"""Connector discovery: the built-ins plus third parties registered under an entry-point group."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from connectors.sdk.base import Connector

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Discovery", "discover", "load_builtin"]

ENTRY_POINT_GROUP = "evidence_collector.connectors"

BUILTIN: dict[str, str] = {
    "synthetic": "connectors.synthetic:SyntheticConnector",
    "aws": "connectors.aws:AwsConnector",
    "github": "connectors.github:GithubConnector",
    "jira": "connectors.jira:JiraConnector",
    "okta": "connectors.okta:OktaConnector",
}


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


def discover() -> Discovery:
    """Every connector: built-ins (which must load) and entry points (reported and skipped if broken)."""
    found = {name: load_builtin(name) for name in BUILTIN}
    skipped: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        try:
            found[ep.name] = _load(ep.value)
        except Exception as exc:
            skipped[ep.name] = f"{type(exc).__name__}: {exc}"
    return Discovery(found, skipped)
