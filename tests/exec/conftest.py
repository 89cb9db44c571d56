"""Fixtures of the exec suite: scangate itself (the root conftest's `scangate`: the real app,
its lifespan and reaper, migrations, kubesim over HTTPS); tests run the real kubectl and the
Python client through the kubeconfig a grant issues (`Scangate.save_kubeconfig`,
`tests.support.kubectl`).

These tests are about what the issued credentials can do in a pod, not about storage, so they
run on SQLite only (the grants API suite covers PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'scangate.db'}"
