"""Writes admin kubeconfig files for tests that need no running cluster."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_ca_pem() -> bytes:
    _, cert = self_signed_ca("scangate-test-ca")
    return cert.public_bytes(serialization.Encoding.PEM)


def self_signed_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A CA's key and certificate, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    token: str = "admin-token",
    ca_data: bytes | None = None,
    ca_file: Path | None = None,
    context: str = "admin",
    extra_contexts: dict[str, str] | None = None,
) -> Path:
    """A kubeconfig whose context `context` points at `server`; `extra_contexts` maps more
    context names to other servers."""
    servers = {context: server, **(extra_contexts or {})}
    clusters: list[dict[str, Any]] = []
    contexts: list[dict[str, Any]] = []
    for name, url in servers.items():
        cluster: dict[str, Any] = {"server": url}
        if ca_data is not None:
            cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
        if ca_file is not None:
            cluster["certificate-authority"] = str(ca_file)
        clusters.append({"name": f"{name}-cluster", "cluster": cluster})
        contexts.append({"name": name, "context": {"cluster": f"{name}-cluster", "user": "admin"}})
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": contexts,
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(document))
    return path
