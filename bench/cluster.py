"""The simulated cluster of a benchmark stage: a `python -m kubesim` process with a fixed
injected latency, and what the harness itself does to it as admin (seeding objects in bulk,
reading when objects were deleted from its request log).

kubesim serves plain HTTP here: the Python client sends bearer tokens over HTTP (only Go
clients refuse to), and TLS would add the same handshake-free per-request cost to scangate
and to the floor alike.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
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

    def token_cache_ttl_seconds(self) -> float:
        """How long kubesim keeps a successful token authentication (its admin state)."""
        with self._admin() as admin:
            response = admin.get("/_kubesim/state")
            response.raise_for_status()
        return float(response.json()["token_cache_ttl_seconds"])

    def clear_request_log(self) -> None:
        with self._admin() as admin:
            admin.delete("/_kubesim/requests").raise_for_status()

    def deletions(self, resource: str) -> dict[str, float]:
        """`{name: when}` of the successful deletions of `resource` that kubesim's request log
        holds (its last 20,000 requests), stamped when kubesim answered, after the deletion
        took effect: the moment the object stopped existing, observed by the cluster itself."""
        with self._admin() as admin:
            response = admin.get("/_kubesim/requests")
            response.raise_for_status()
        return {
            entry["name"]: float(entry["at"])
            for entry in response.json()["requests"]
            if entry["verb"] == "delete" and entry["resource"] == resource
            and not entry["subresource"] and entry["status"] == 200
        }  # fmt: skip


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
