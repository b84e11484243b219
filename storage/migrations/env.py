"""Alembic environment: migrations run on the connection the store hands over."""

from __future__ import annotations

from alembic import context

from storage.models import METADATA

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached from the alembic CLI
    raise RuntimeError("run migrations through storage.engine.open_store()")
context.configure(connection=connection, target_metadata=METADATA)
with context.begin_transaction():
    context.run_migrations()
