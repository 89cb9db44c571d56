"""The grant guard in the demo: its certificate, its listening socket and its registration in
the simulated cluster.

The demo runs the guard's webhook listener (app/guard) beside the API, in the demo's process,
on a loopback port of its own, serving a certificate signed by a CA generated into the demo's
directory. The simulated cluster learns of it as a real cluster would: from a
ValidatingWebhookConfiguration (the chart's rules and matchConditions, with a `url`
clientConfig since there is no cluster network) whose caBundle is that CA, seeded into kubesim
before it starts, so no grant identity can reach a pod before the guard is registered.
"""

from __future__ import annotations

import base64
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from app.demo.seed import GRANTS_NAMESPACE
from kubesim.tls import generate as generate_tls_material

WEBHOOK_NAME: Final = "guard.scangate.dev"
GUARD_HOST: Final = "127.0.0.1"


@dataclass(frozen=True)
class GuardCertificate:
    ca_pem: bytes
    cert_file: Path
    key_file: Path


def write_guard_certificate(directory: Path) -> GuardCertificate:
    """A fresh CA (kept only as its certificate: the caBundle) and a serving certificate for
    the guard's loopback address, written into `directory` (the key with mode 0600). The pair
    comes from kubesim's generator, the one its own HTTPS listener uses."""
    ca_pem, cert_pem, key_pem = generate_tls_material(GUARD_HOST)
    (directory / "guard-ca.crt").write_bytes(ca_pem)
    cert_file, key_file = directory / "guard.crt", directory / "guard.key"
    cert_file.write_bytes(cert_pem)
    key_file.unlink(missing_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    return GuardCertificate(ca_pem, cert_file, key_file)


def bind_guard_listener() -> socket.socket:
    """The guard's socket on a free loopback port, bound before kubesim is told the URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((GUARD_HOST, 0))
    sock.listen(128)
    return sock


def guard_url(port: int, cluster: str = "default") -> str:
    # The path names the cluster whose API server calls (app/guard/app.py).
    return f"https://{GUARD_HOST}:{port}/admission/{cluster}"


def webhook_configuration(url: str, ca_pem: bytes) -> dict[str, Any]:
    """The chart's registration (helm/scangate/templates/guard-webhook.yaml) with a `url`
    clientConfig instead of the in-cluster Service."""
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "scope": "Namespaced"}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "scangate-guard"},
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "NoneOnDryRun",
                # A grant never gets more than the guard allows, even while it is down.
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                "rules": [
                    {**rule, "operations": ["CONNECT"], "resources": ["pods/exec", "pods/attach"]},
                    {**rule, "operations": ["UPDATE"], "resources": ["pods/ephemeralcontainers"]},
                ],
                # Only grant identities ever wait for the guard.
                "matchConditions": [
                    {
                        "name": "grant-identities-only",
                        "expression": "request.userInfo.username.startsWith("
                        f"'system:serviceaccount:{GRANTS_NAMESPACE}:scangate-')",
                    }
                ],
            }
        ],
    }


def webhook_seed(url: str, ca_pem: bytes) -> str:
    """The registration as a document to append to kubesim's seed."""
    return "---\n" + yaml.safe_dump(webhook_configuration(url, ca_pem), sort_keys=False)
