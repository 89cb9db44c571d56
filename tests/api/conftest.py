"""Fixtures of the grants API suite.

Everything runs for real: the app from `create_app`, its lifespan (database engine, cluster
clients, reaper), migrations applied the way production applies them, kubesim over a socket (HTTPS),
and the real kubectl. The service's fixtures (`deployment`, `scangate`, `db`, `sim`, ...) are the
root conftest's, shared with the exec and observability suites; the helpers tests import are in
`tests.support`. Async tests run on asyncio through anyio's pytest plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.db.engine import run_migrations
from tests.support.scangate import Deployment, scangate_config

if TYPE_CHECKING:
    from kubesim.pytest_plugin import KubesimHandle


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def other_installation(tmp_path: Path, sim: KubesimHandle, api_keys: dict[str, str]) -> Deployment:
    """A second scangate installation on the same cluster, over the same target namespaces
    (the same policies), with its own database (SQLite) and grants namespace
    (`scangate-grants-b`); its installation id is therefore its own."""
    sim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scangate-grants-b"}})
    home = tmp_path / "installation-b"
    home.mkdir()
    url = f"sqlite:///{home / 'scangate.db'}"
    run_migrations(url)
    document = scangate_config(
        kubeconfig=str(sim.admin_kubeconfig), database_url=url, api_keys=api_keys
    )
    document["clusters"][0]["grants_namespace"] = "scangate-grants-b"
    return Deployment(home, api_keys, document)
