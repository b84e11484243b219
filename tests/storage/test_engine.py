"""Opening a store: migrations only when the schema is behind, and failures that name the store."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from schema_helpers import alembic_store

from storage import Store, StoreOpenError
from storage.engine import MIGRATIONS, SCHEMA_HEAD, create_store_engine, schema_version


def test_schema_head_is_the_newest_migration() -> None:
    """SCHEMA_HEAD names the head of the migration scripts, so a current store skips Alembic."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_a_current_store_opens_without_importing_alembic(tmp_path: Path) -> None:
    """Opening a store already at the head revision never imports Alembic (a second process
    checks its own modules), and neither does creating a new store at the head revision."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    script = ("import sys; from storage import Store; Store.open(sys.argv[1]).close(); "
              "print('alembic' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                           check=True)
    assert first.stdout.strip() == "False", "creating a new store loaded Alembic"
    engine = create_store_engine(url)
    assert schema_version(engine) == SCHEMA_HEAD, "a new store is created at the head revision"
    engine.dispose()
    again = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                           check=True)
    assert again.stdout.strip() == "False", "a current store loaded Alembic"


def test_a_store_behind_the_head_is_migrated(tmp_path: Path) -> None:
    """A store left at an older revision by an earlier version is brought to the head on open."""
    engine = alembic_store(f"sqlite:///{tmp_path / 'store.db'}", "0002")
    assert schema_version(engine) == "0002"
    engine.dispose()
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    assert schema_version(store.engine) == SCHEMA_HEAD
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM snapshot_contents")).scalar_one() == 0
    store.close()


def test_an_unreachable_store_names_itself_without_its_password() -> None:
    """A server that refuses the connection: StoreOpenError naming the URL, password masked."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(StoreOpenError) as info:
        Store.open(f"postgresql+psycopg://ec:hunter2@127.0.0.1:{port}/evidence")
    assert f"127.0.0.1:{port}/evidence" in str(info.value)
    assert "hunter2" not in str(info.value)
