"""A store built the old way, through Alembic's migration scripts, up to a given revision."""

from __future__ import annotations

import sqlalchemy as sa

from storage.engine import MIGRATIONS, create_store_engine


def alembic_store(url: str, revision: str = "head") -> sa.Engine:
    """The store at ``url`` brought to ``revision`` by running each migration script in turn
    (as an earlier version left it, or as the head is reached without the METADATA shortcut)."""
    from alembic import command
    from alembic.config import Config

    engine = create_store_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return engine
