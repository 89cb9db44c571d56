"""The simulated cluster of a benchmark stage: a `python -m kubesim` process with a fixed
injected latency, and what the harness itself does to it as admin (seeding objects in bulk,
watching ServiceAccounts disappear).

kubesim serves plain HTTP here: the Python client sends bearer tokens over HTTP (only Go
clients refuse to), and TLS would add the same handshake-free per-request cost to scangate
and to the floor alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from app.kube.naming import MANAGED_SELECTOR
from kubesim.process import KubesimProcess
from kubesim.seed import DEFAULT_SEED

GRANTS_NAMESPACE: Final = "scangate-grants"
TARGET_NAMESPACE: Final = "payments"
TARGET_POD: Final = "web-0"
# Objects per admin `apply` request when seeding (one request, one JSON body).
_APPLY_CHUNK: Final = 1500


@dataclass
class SimulatedCluster:
    url: str
    admin_token: str
    admin_kubeconfig: Path
    latency_ms: float

    def _admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=120,
            trust_env=False,
        )

    def apply(self, objects: Sequence[dict[str, Any]]) -> None:
        """Create objects in bulk through kubesim's admin endpoint (no per-object round trip
        and no injected latency: this is setup, not measurement)."""
        with self._admin() as admin:
            for start in range(0, len(objects), _APPLY_CHUNK):
                chunk = list(objects[start : start + _APPLY_CHUNK])
                response = admin.post("/_kubesim/apply", json=chunk)
                response.raise_for_status()

    def count_managed(self) -> dict[str, int]:
        """How many scangate-labelled ServiceAccounts, Roles and RoleBindings exist."""
        paths = {
            "ServiceAccount": f"/api/v1/namespaces/{GRANTS_NAMESPACE}/serviceaccounts",
            "Role": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{TARGET_NAMESPACE}/roles",
            "RoleBinding": (
                f"/apis/rbac.authorization.k8s.io/v1/namespaces/{TARGET_NAMESPACE}/rolebindings"
            ),
        }
        with self._admin() as admin:
            counts = {}
            for kind, path in paths.items():
                response = admin.get(path, params={"labelSelector": MANAGED_SELECTOR})
                response.raise_for_status()
                counts[kind] = len(response.json().get("items") or [])
        return counts


class ServiceAccountWatch:
    """Polls the grants namespace and notes when each ServiceAccount was first seen gone.

    kubesim has no watch, so this lists the labelled ServiceAccounts every `interval` seconds.
    A disappearance is stamped with the moment the list that no longer showed it came back:
    an upper bound, late by at most one interval plus one list round trip.
    """

    def __init__(self, cluster: SimulatedCluster, names: Sequence[str]) -> None:
        self._cluster = cluster
        self._pending = set(names)
        self.gone_at: dict[str, float] = {}

    async def run(self, *, interval: float, timeout: float) -> None:
        deadline = time.time() + timeout
        path = f"/api/v1/namespaces/{GRANTS_NAMESPACE}/serviceaccounts"
        async with httpx.AsyncClient(
            base_url=self._cluster.url,
            headers={"Authorization": f"Bearer {self._cluster.admin_token}"},
            timeout=30,
            trust_env=False,
        ) as admin:
            while self._pending and time.time() < deadline:
                response = await admin.get(path, params={"labelSelector": MANAGED_SELECTOR})
                seen_at = time.time()
                response.raise_for_status()
                present = {item["metadata"]["name"] for item in response.json()["items"] or []}
                for name in self._pending - present:
                    self.gone_at[name] = seen_at
                self._pending &= present
                await asyncio.sleep(interval)

    @property
    def remaining(self) -> int:
        return len(self._pending)


@contextlib.contextmanager
def simulated_cluster(latency_ms: float) -> Iterator[SimulatedCluster]:
    """A fresh kubesim (default seed: the `payments` namespace and its pods) for one stage."""
    with tempfile.TemporaryDirectory(prefix="scangate-bench-kubesim-") as directory:
        seed = Path(directory) / "seed.yaml"
        seed.write_text(DEFAULT_SEED)
        process = KubesimProcess(
            directory=Path(directory),
            admin_token=secrets.token_urlsafe(32),
            seed_file=seed,
            latency_ms=latency_ms,
        )
        process.start()
        try:
            yield SimulatedCluster(
                url=process.url,
                admin_token=process.admin_token,
                admin_kubeconfig=process.kubeconfig_path,
                latency_ms=latency_ms,
            )
        finally:
            process.stop()
