"""Shared fixtures: a real PostgreSQL server started for the session, and store URLs for both backends."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver import PostgresUnavailable, pg_bin, running_postgres

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback; yields a base URL without a database name."""
    if os.environ.get("EC_POSTGRES_URL"):
        yield os.environ["EC_POSTGRES_URL"].rstrip("/")
        return
    root = Path(tempfile.mkdtemp(prefix="ec-pg-"))
    try:
        with running_postgres(root, ("full_page_writes=off",)) as port:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    except PostgresUnavailable as exc:
        if pg_bin() is None:
            if os.environ.get("EC_REQUIRE_POSTGRES"):
                pytest.fail("PostgreSQL binaries not found but EC_REQUIRE_POSTGRES is set")
            pytest.skip("PostgreSQL is not installed")
        pytest.fail(str(exc))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_factor_changes_from_other_tests() -> Iterator[None]:
    """okta.system_log's factor-change reads are per process: a test never sees another test's
    (a later fake Okta may listen on a port an earlier one used)."""
    from connectors.okta._factor_changes import FACTOR_CHANGES

    FACTOR_CHANGES.clear()
    yield
    FACTOR_CHANGES.clear()


_db_counter = 0


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    import psycopg

    global _db_counter
    _db_counter += 1
    name = f"ec_test_{os.getpid()}_{_db_counter}"
    with psycopg.connect(postgres_server.replace("postgresql+psycopg", "postgresql") + "/postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'evidence.db'}"
    return str(request.getfixturevalue("postgres_url"))
