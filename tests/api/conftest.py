"""Fixtures of the grants API suite.

Everything runs for real: the app from `create_app`, its lifespan (database engine, cluster
clients, reaper), migrations applied the way production applies them, kubesim over a socket (HTTPS),
and the real kubectl. The service's fixtures (`deployment`, `scangate`, `db`, `sim`, ...) are the
root conftest's, shared with the exec and observability suites; the helpers tests import are in
`tests.support`. Async tests run on asyncio through anyio's pytest plugin.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
