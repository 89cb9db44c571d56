"""Fixtures of the exec suite: scangate itself (the grants API suite's fixtures: the real app,
its lifespan and reaper, migrations, kubesim over HTTPS) plus helpers to run the real kubectl
and the Python client through the kubeconfig a grant issues.

These tests are about what the issued credentials can do in a pod, not about storage, so they
run on SQLite only (the grants API suite covers PostgreSQL).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from tests.api.conftest import (
    Scangate,
    anyio_backend,
    api_keys,
    deployment,
    migrated_url,
    scangate,
    sim,
)

__all__ = ["anyio_backend", "api_keys", "deployment", "migrated_url", "scangate", "sim"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'scangate.db'}"


async def issued_kubeconfig(scangate: Scangate, grant_id: str, path: Path) -> Path:
    """The grant's kubeconfig, fetched as its requester (alice) and saved for kubectl."""
    response = await scangate.kubeconfig(grant_id)
    assert response.status_code == 200, response.text
    await anyio.Path(path).write_text(response.text)
    return path


async def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real kubectl, in a worker thread so the app's event loop (reaper) keeps running."""
    command = ["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=20s", *args]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    return await anyio.to_thread.run_sync(run)
