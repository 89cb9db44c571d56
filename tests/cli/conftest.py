"""Fixtures of the client CLI suite: a real scangate service (uvicorn on a loopback socket, in a
thread) on a migrated SQLite database, driving kubesim over HTTPS (so the real kubectl accepts
the issued kubeconfigs). `tests.support.cli_service` runs `scangate` as a user would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from app.auth import generate_api_key
from app.db.engine import run_migrations
from kubesim.pytest_plugin import KubesimHandle
from tests.oidc_issuer import running_issuer
from tests.support.approval_service import FakeApprovalService, fake_approval_service
from tests.support.cli_service import Service, service_settings, serving


@pytest.fixture
def service(sqlite_url: str, kubesim_tls: KubesimHandle) -> Iterator[Service]:
    run_migrations(sqlite_url)
    keys = {name: generate_api_key()[0] for name in ("ci", "other", "root", "nobody")}
    with running_issuer() as issuer:
        settings = service_settings(sqlite_url, str(kubesim_tls.admin_kubeconfig), keys, issuer)
        with serving(settings) as url:
            yield Service(url=url, keys=keys, kubesim=kubesim_tls, issuer=issuer)


@pytest.fixture
def capped_service(sqlite_url: str, kubesim_tls: KubesimHandle) -> Iterator[Service]:
    """The service with a policy whose grants live 30 s at most, renewals included."""
    run_migrations(sqlite_url)
    keys = {name: generate_api_key()[0] for name in ("ci", "other", "root", "nobody")}
    with running_issuer() as issuer:
        settings = service_settings(
            sqlite_url, str(kubesim_tls.admin_kubeconfig), keys, issuer,
            max_ttl_seconds=30, max_lifetime_seconds=30,
        )  # fmt: skip
        with serving(settings) as url:
            yield Service(url=url, keys=keys, kubesim=kubesim_tls, issuer=issuer)


@contextlib.contextmanager
def _service_with_approval(
    sqlite_url: str, kubesim: KubesimHandle, approval: dict[str, Any]
) -> Iterator[Service]:
    run_migrations(sqlite_url)
    names = ("ci", "other", "root", "nobody", "alice", "bob")
    keys = {name: generate_api_key()[0] for name in names}
    with running_issuer() as issuer:
        settings = service_settings(
            sqlite_url, str(kubesim.admin_kubeconfig), keys, issuer, approval=approval
        )
        with serving(settings) as url:
            yield Service(url=url, keys=keys, kubesim=kubesim, issuer=issuer)


@pytest.fixture
def two_person_service(sqlite_url: str, kubesim_tls: KubesimHandle) -> Iterator[Service]:
    """The real service whose payments-ci policy needs 2 approvals, by apikey:alice and
    apikey:bob (issue 19; only on a service that has approvals: tests/cli/test_approvals_e2e)."""
    approval = {"required": 2, "approvers": ["apikey:alice", "apikey:bob"]}
    with _service_with_approval(sqlite_url, kubesim_tls, approval) as service:
        yield service


@pytest.fixture
def hasty_approval_service(sqlite_url: str, kubesim_tls: KubesimHandle) -> Iterator[Service]:
    """As two_person_service, but 1 approval is enough and a request waits 5 s at most."""
    approval = {"required": 1, "approvers": ["apikey:alice", "apikey:bob"], "timeout_seconds": 5}
    with _service_with_approval(sqlite_url, kubesim_tls, approval) as service:
        yield service


@pytest.fixture
def approval_service() -> Iterator[FakeApprovalService]:
    """A stand-in for the service's approval endpoints (issue 19) until the service has them:
    see tests/support/approval_service.py. Once it does, tests/cli/test_approvals_e2e.py runs
    the same paths against the real service."""
    with fake_approval_service() as fake:
        yield fake
