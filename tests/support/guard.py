"""The grant guard's test helpers: TLS files for its listener and a running guard's handle."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.db.engine import Database
from app.settings import Settings
from app.tls_files import ReloadingCertificate


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: bytes
    cert_file: Path
    key_file: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate


def certificate_name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue_serving_certificate(
    tls: TlsFiles, *, hosts: tuple[str, ...] = ("localhost",), days: int = 1
) -> None:
    """(Re)write the serving certificate and key, signed by the fixture's CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(certificate_name(hosts[0]))
        .issuer_name(tls.ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(tls.ca_key, hashes.SHA256())
    )
    tls.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


ROOT_KEY = "sg_" + "r" * 40


@dataclass
class RunningGuard:
    url: str
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    certificate: ReloadingCertificate

    async def review(self, document: dict[str, Any], cluster: str = "default") -> httpx.Response:
        return await self.client.post(f"{self.url}/admission/{cluster}", json=document)
