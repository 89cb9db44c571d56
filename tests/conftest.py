"""Shared fixtures: databases (SQLite and PostgreSQL, for real) and the kubesim plugin.

Every test that touches the database runs on both engines through ``database_url``. PostgreSQL
is a throwaway server started once per session (or the server named by
``SCANGATE_TEST_POSTGRES_URL``); each test gets its own empty database on it. Under ``CI=true``
PostgreSQL is required: a machine without it fails the run instead of silently skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devsupport.postgres_server import fresh_database, postgres_available, throwaway_postgres

pytest_plugins = ["kubesim.pytest_plugin"]

_IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    configured = os.environ.get("SCANGATE_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    if not postgres_available():
        if _IN_CI:
            pytest.fail("PostgreSQL is required in CI but initdb/pg_ctl are not installed")
        pytest.skip("PostgreSQL server binaries are not installed")
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'scangate.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each engine scangate supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scangate.db'}"
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    with fresh_database(server_url) as url:
        yield url
