"""Fixtures of the reload suite: the real app started from a YAML file it can reload (both
databases, kubesim over TLS: the root conftest's `deployment`), and `scangate serve` as a
subprocess for SIGHUP and file changes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.oidc_issuer import LocalIssuer, running_issuer
from tests.reload.reloadable import Reloadable, running
from tests.support.logs import LogCapture
from tests.support.scangate import Deployment


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def reloadable(deployment: Deployment) -> AsyncIterator[Reloadable]:
    async with running(deployment) as app:
        yield app


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    """A real OIDC issuer on loopback (discovery and JWKS over HTTP)."""
    with running_issuer() as local:
        yield local


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    with contextlib.ExitStack() as stack:
        stack.callback(root.setLevel, previous)
        stack.callback(root.removeHandler, capture)
        yield capture
