"""The evidence store: models, engine, migrations and append-only guards."""

from storage.engine import StorageError, create_store_engine, migrate, normalise_url
from storage.store import CursorConflict, EvidenceRow, FilingRow, RunSummary, Store

__all__ = [
    "CursorConflict",
    "EvidenceRow",
    "FilingRow",
    "RunSummary",
    "StorageError",
    "Store",
    "create_store_engine",
    "migrate",
    "normalise_url",
]
