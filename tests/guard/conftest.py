"""Fixtures of the guard suite: a CA and serving certificate on disk, a migrated database on
SQLite and PostgreSQL with grant rows, and the guard's real HTTPS listener (uvicorn, the same
TLS context `scangate serve` uses) on a free local port."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.auth import hash_api_key
from app.db.engine import Database, run_migrations
from app.db.models import Grant
from app.grants.clock import utcnow
from app.grants.ids import new_grant_id
from app.guard.server import SharedSignalsServer, guard_config
from app.settings import Settings, load_settings
from tests.guard.admission_reviews import GRANTS_NAMESPACE, grant_username
from tests.support.guard import (
    ROOT_KEY,
    RunningGuard,
    TlsFiles,
    certificate_name,
    issue_serving_certificate,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(certificate_name("scangate-guard-test-ca"))
        .issuer_name(certificate_name("scangate-guard-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    tls = TlsFiles(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_file=tmp_path / "tls.crt",
        key_file=tmp_path / "tls.key",
        ca_key=ca_key,
        ca_cert=ca_cert,
    )
    issue_serving_certificate(tls)
    return tls


@pytest.fixture
def migrated_url(database_url: str) -> str:
    run_migrations(database_url)
    return database_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


POLICY: dict[str, Any] = {
    "name": "payments-ci",
    "subjects": ["apikey:alice"],
    "namespaces": ["payments"],
    "scanners": ["exec", "debug"],
    "debug_images": ["busybox:1.36"],
}


@pytest.fixture
def guard_settings(
    migrated_url: str, tls_files: TlsFiles, tmp_path: Path, kubesim: Any
) -> Settings:
    """The guard's and the API's configuration; the API (for reading events back) talks to
    kubesim, which the guard itself never calls."""
    path = tmp_path / "scangate.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database_url": migrated_url,
                "clusters": [
                    {
                        "name": "default",
                        "kubeconfig": str(kubesim.admin_kubeconfig),
                        "grants_namespace": GRANTS_NAMESPACE,
                    }
                ],
                "api_keys": [{"name": "root", "sha256": hash_api_key(ROOT_KEY)}],
                "admins": ["apikey:root"],
                "policies": [POLICY],
                "guard": {
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": _free_port(),
                    "cert_file": str(tls_files.cert_file),
                    "key_file": str(tls_files.key_file),
                },
            }
        )
    )
    return load_settings(path)


@pytest.fixture
async def guard(guard_settings: Settings, tls_files: TlsFiles) -> AsyncIterator[RunningGuard]:
    config, certificate = guard_config(guard_settings, log_level="warning")
    server = SharedSignalsServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    verify = ssl.create_default_context(cadata=tls_files.ca_pem.decode())
    db = Database(guard_settings.database_url)
    try:
        async with httpx.AsyncClient(verify=verify, timeout=10) as client:
            yield RunningGuard(
                f"https://localhost:{guard_settings.guard.port}",
                client,
                db,
                guard_settings,
                certificate,
            )
    finally:
        server.should_exit = True
        await task
        await db.dispose()


@pytest.fixture
def add_grant(guard: RunningGuard) -> Callable[..., Any]:
    async def add(**overrides: Any) -> Grant:
        now = utcnow()
        grant_id = new_grant_id()
        values: dict[str, Any] = {
            "id": grant_id,
            "status": "active",
            "cluster": "default",
            "namespace": "payments",
            "scanner": "debug",
            "pods": ["web-0"],
            "selector": None,
            "containers": None,
            "requester": "apikey:alice",
            "policy": "payments-ci",
            "reason": None,
            "service_account": grant_username(grant_id),
            "created_at": now,
            "updated_at": now,
            "expires_at": now + dt.timedelta(seconds=900),
            "attempts": 0,
        }
        values.update(overrides)
        grant = Grant(**values)
        async with guard.db.session() as session:
            session.add(grant)
        return grant

    return add
