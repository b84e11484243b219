"""The store's errors: ``StoreError`` is the one base, each subclass names what the caller does next."""

from __future__ import annotations

__all__ = ["CursorConflict", "StoreError", "StoreOpenError"]


class StoreError(Exception):
    """The evidence store failed; the message names the store (URL without password) or the stream."""


class StoreOpenError(StoreError):
    """The store cannot be opened or migrated: fix its URL, the server, or the file's folder."""


class CursorConflict(StoreError):
    """Another run moved this stream's cursor since this run read it; this batch is rolled back."""
