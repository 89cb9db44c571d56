"""scangate's Kubernetes client (`ClusterClient`) pointed at kubesim: how the kube suite builds
clients, grant targets and limited identities, and the rules the Helm chart grants scangate."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from app.kube.clusters import ClusterClient, ClusterSettings, RetryPolicy
from app.kube.models import GrantTarget
from tests.support.scangate import GRANTS_NAMESPACE

# Quick backoff so retry tests stay fast; Retry-After is still honoured.
FAST_RETRIES = RetryPolicy(base_delay=0.02, max_delay=0.2, max_retry_after=3.0, read_timeout=10.0)
_ALPHABET = string.digits + string.ascii_lowercase


def new_grant_id() -> str:
    """26 lowercase base-36 characters, time-ordered like the grants stream's ULIDs."""
    millis = int(time.time() * 1000)
    head = ""
    for _ in range(10):
        millis, digit = divmod(millis, 32)
        head = _ALPHABET[digit] + head
    return head + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def grant_target(
    namespace: str = "payments", scanner: str = "exec", ttl_seconds: int = 900
) -> GrantTarget:
    return GrantTarget(
        grant_id=new_grant_id(),
        namespace=namespace,
        scanner=scanner,
        requester="apikey:ci-payments",
        expires_at=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl_seconds),
    )


def kubeconfig_with_token(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """A copy of kubesim's admin kubeconfig (same server and CA) that uses another token."""
    document = yaml.safe_load(admin_kubeconfig.read_text())
    for user in document["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(document))
    return path


async def cluster_client(
    kubeconfig: Path, *, name: str = "default", retry: RetryPolicy = FAST_RETRIES, **kw: Any
) -> ClusterClient:
    settings = ClusterSettings(name, str(kubeconfig), None, None, GRANTS_NAMESPACE)
    return await ClusterClient.connect(settings, retry=retry, **kw)


# What the Helm chart grants scangate: SA rights in the grants namespace, and in each target
# namespace the Role/RoleBinding rights plus every profile permission (escalation prevention
# demands scangate hold what it grants).
GRANTS_NAMESPACE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts"],
        "verbs": ["get", "list", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
]
TARGET_NAMESPACE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/exec", "pods/attach"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch", "update"]},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": ["get", "list", "create", "delete"],
    },
]

# The `limited_cluster` fixture: a ClusterClient for a user holding only the given rules per
# namespace.
LimitedCluster = Callable[[dict[str, list[dict[str, Any]]]], Awaitable[ClusterClient]]
