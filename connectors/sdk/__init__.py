"""The connector SDK: base classes, cursor and items, typed errors, HTTP retries and pagination."""

from connectors.sdk.base import Connector, ConnectorConfig, HttpOptions, Stream, StreamOutput
from connectors.sdk.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    ItemError,
    PaginationError,
    RetriableError,
)
from connectors.sdk.items import (
    KEEP,
    KINDS,
    Checkpoint,
    Cursor,
    ItemFailure,
    Normalised,
    Skipped,
    SourceItem,
    json_leq,
)

__all__ = [
    "KEEP",
    "KINDS",
    "AuthError",
    "Checkpoint",
    "Connector",
    "ConnectorConfig",
    "ConnectorError",
    "Cursor",
    "FatalError",
    "HttpOptions",
    "ItemError",
    "ItemFailure",
    "Normalised",
    "PaginationError",
    "RetriableError",
    "Skipped",
    "SourceItem",
    "Stream",
    "StreamOutput",
    "json_leq",
]
