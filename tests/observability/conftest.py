"""Fixtures of the observability suite: the real app (lifespan, migrations, kubesim over a
socket) with its logs captured as the JSON lines `scangate serve` writes.

`api_keys`, `scangate` and `scangate_without_reaper` are the root conftest's; this suite's
`deployment` runs them on SQLite against the plain-HTTP kubesim."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.engine import run_migrations
from kubesim.pytest_plugin import KubesimHandle
from tests.support.logs import LogCapture
from tests.support.scangate import Deployment, scangate_config


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str) -> str:
    run_migrations(sqlite_url)
    return sqlite_url


@pytest.fixture
def deployment(
    tmp_path: Path, kubesim: KubesimHandle, migrated_sqlite_url: str, api_keys: dict[str, str]
) -> Deployment:
    document = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig),
        database_url=migrated_sqlite_url,
        api_keys=api_keys,
    )
    return Deployment(tmp_path, api_keys, document)


@pytest.fixture
def json_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)
