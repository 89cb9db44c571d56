"""Fixtures of kubesim's own tests: clients for admins, ServiceAccounts and static users (the
helpers they use are in `tests.support.kubesim_clients`)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from kubesim.pytest_plugin import KubesimHandle
from tests.kubesim.policy_support import Cluster
from tests.kubesim.webhook_server import WebhookServer
from tests.support.kubesim_clients import grant_scanner, kubectl, raw_http


@pytest.fixture
def admin_core(kubesim: KubesimHandle) -> Iterator[client.CoreV1Api]:
    with kubesim.admin_client() as api:
        yield client.CoreV1Api(api)


@pytest.fixture
def scanner_token(kubesim: KubesimHandle) -> str:
    """A ServiceAccount token that may get and exec into pod web-0 only."""
    return grant_scanner(kubesim, ["web-0"], ["web-0"])


@pytest.fixture
def user_token(kubesim: KubesimHandle) -> str:
    """A static token for user "alice" with no permissions beyond the bootstrap ones."""
    token = secrets.token_urlsafe(24)
    kubesim.add_user_token(token, "alice", ["developers"])
    return token


@pytest.fixture
def run_kubectl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The real kubectl with a given kubeconfig: `run_kubectl(kubeconfig, *args)`."""
    return kubectl


@pytest.fixture
def admin_http(kubesim: KubesimHandle) -> Iterator[httpx.Client]:
    """Plain HTTP to the plain-HTTP kubesim as its admin, for hand-built request bodies."""
    with raw_http(kubesim) as http:
        yield http


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[WebhookServer]:
    """A real HTTPS admission webhook in the test process (`webhook_server.py`)."""
    server = WebhookServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cluster(kubesim: KubesimHandle) -> Cluster:
    """kubesim seen by the admission policy tests (`policy_support.py`)."""
    return Cluster(kubesim)
