"""Kubeconfig files for kubesim: one cluster, one token user, one context."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def token_kubeconfig(
    url: str,
    token: str,
    ca_cert_pem: bytes | None = None,
    *,
    name: str = "kubesim",
    user: str = "kubesim-admin",
    namespace: str | None = None,
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": url}
    if ca_cert_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_cert_pem).decode()
    context: dict[str, Any] = {"cluster": name, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write with mode 0600: a kubeconfig holds a credential."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
