"""The evidence store: models, engine, migrations and append-only guards."""

from storage.engine import create_store_engine, migrate, normalise_url
from storage.errors import CursorConflict, StoreError, StoreOpenError
from storage.rows import BatchJob, EvidenceRecord, FilingRow
from storage.store import RunSummary, Store

__all__ = [
    "BatchJob",
    "CursorConflict",
    "EvidenceRecord",
    "FilingRow",
    "RunSummary",
    "Store",
    "StoreError",
    "StoreOpenError",
    "create_store_engine",
    "migrate",
    "normalise_url",
]
