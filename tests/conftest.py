"""Shared fixtures: databases (SQLite and PostgreSQL, for real), the kubesim plugin, and a
scangate deployment that starts the real app (the helpers they use are in `tests.support`).

Every test that touches the database runs on both engines through ``database_url``. PostgreSQL
is a throwaway server started once per session (or the server named by
``SCANGATE_TEST_POSTGRES_URL``); each test gets its own empty database on it. Under ``CI=true``
PostgreSQL is required: a machine without it fails the run instead of silently skipping.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.auth import generate_api_key
from app.db.engine import Database, run_migrations
from devsupport.postgres_server import fresh_database, postgres_available, throwaway_postgres
from tests.support.scangate import PRINCIPALS, Deployment, Scangate, scangate_config

if TYPE_CHECKING:
    # Only for annotations: imported at run time before `pytest_plugins` registers it, pytest
    # could no longer rewrite the plugin's asserts.
    from kubesim.pytest_plugin import KubesimHandle

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


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A fresh database (SQLite and PostgreSQL) migrated to head, as `scangate migrate` does."""
    run_migrations(database_url)
    return database_url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    database = Database(migrated_url)
    yield database
    await database.dispose()


# -- the running service (the grants API suite's, shared with the exec and observability suites)


@pytest.fixture
def sim(kubesim_tls: KubesimHandle) -> KubesimHandle:
    """The simulated cluster of the service's suites: kubesim over HTTPS, because kubectl only
    sends bearer tokens over TLS and issued kubeconfigs must carry the cluster's CA (never
    insecure-skip-tls-verify)."""
    return kubesim_tls


@pytest.fixture
def api_keys() -> dict[str, str]:
    """A fresh random API key per principal (so tests can search for them afterwards)."""
    return {name: generate_api_key()[0] for name in PRINCIPALS}


@pytest.fixture
def deployment(
    tmp_path: Path, sim: KubesimHandle, migrated_url: str, api_keys: dict[str, str]
) -> Deployment:
    document = scangate_config(
        kubeconfig=str(sim.admin_kubeconfig), database_url=migrated_url, api_keys=api_keys
    )
    return Deployment(tmp_path, api_keys, document)


@pytest.fixture
async def scangate(deployment: Deployment) -> AsyncIterator[Scangate]:
    """The service with its reaper running."""
    async with deployment.running() as running:
        yield running


@pytest.fixture
async def scangate_without_reaper(deployment: Deployment) -> AsyncIterator[Scangate]:
    """The service alone: proves a behaviour does not depend on the reaper cleaning up."""
    async with deployment.running(start_reaper=False) as running:
        yield running
