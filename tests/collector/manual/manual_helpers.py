"""Helpers for the manual evidence tests: a config on disk, reading back what the store holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from collector.config import Settings, load_settings
from collector.manual import open_files
from storage import Store
from storage.blobs import BlobStore

PEOPLE = """
[people]
roster = "roster.csv"

[[people.require]]
type = "policy_ack"
item = "infosec-policy@v3"

[[people.require]]
type = "training"
item = "Security awareness"
every = "1y"
"""
ROSTER = "email,name\nalice@acme.example,Alice\nbob@acme.example,Bob\ncarol@acme.example,Carol\n"


@dataclass
class Env:
    """A loaded config with its open store and blob store."""

    dir: Path
    config: Path
    settings: Settings
    store: Store
    blobs: BlobStore


def write_config(directory: Path, store_url: str, extra: str = PEOPLE) -> Path:
    """``config.toml`` in ``directory``: the store, blobs in ``files/``, people coverage and a roster."""
    (directory / "roster.csv").write_text(ROSTER)
    config = directory / "config.toml"
    config.write_text(f'[storage]\nurl = "{store_url}"\n\n[files]\nurl = "files"\n{extra}')
    return config


def open_env(directory: Path, store_url: str, extra: str = PEOPLE) -> Env:
    """Write the config, load it and open its stores."""
    config = write_config(directory, store_url, extra)
    settings = load_settings(config)
    return Env(directory, config, settings, Store.open(settings.storage_url), open_files(settings))


def rows(store: Store, stream: str) -> list[dict[str, Any]]:
    """Every record of ``stream`` as its full body plus id, oldest first."""
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT id, body FROM evidence WHERE stream = :s ORDER BY observed_at, id"),
                             {"s": stream}).all()
    return [{"id": r[0], **orjson.loads(r[1])} for r in found]


def filings(store: Store, record_id: str) -> list[str]:
    """The criteria a record is filed under, sorted."""
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT criterion FROM filings WHERE record_id = :r"), {"r": record_id})
        return sorted(str(c) for (c,) in found)


def runs(store: Store, stream: str) -> list[tuple[str, int, int]]:
    """(status, items, records_new) of every run of ``stream``, oldest first."""
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT status, items, records_new FROM runs WHERE stream = :s "
                                  "ORDER BY started_at"), {"s": stream}).all()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in found]
