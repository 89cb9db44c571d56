"""The real cluster of the opt-in end-to-end suite, as its fixtures prepared it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s


@dataclass(frozen=True)
class E2ECluster:
    kubeconfig: Path
    api: k8s.ApiClient
    namespace: str
    grants_namespace: str
