"""Plain values that cross the app/kube boundary, so callers never see `kubernetes` models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ManagedKind = Literal["ServiceAccount", "Role", "RoleBinding"]
# What a pod can expose to whoever runs a process in it (`exposure.py`); the vocabulary of a
# policy's `allow_pods_with`.
ExposureKind = Literal[
    "service_account_token", "secret_volumes", "secret_env", "configmap_volumes", "configmap_env"
]
EXPOSURE_KINDS: tuple[ExposureKind, ...] = (
    "service_account_token", "secret_volumes", "secret_env", "configmap_volumes", "configmap_env",
)  # fmt: skip


@dataclass(frozen=True)
class PodExposure:
    """What an exec/debug grant reaches in one pod beyond the API (`app/kube/exposure.py`)."""

    service_account: str
    # The pod spec's own setting (None: unset, so the ServiceAccount's decides).
    automount_service_account_token: bool | None = None
    # A projected serviceAccountToken volume is in the spec (`kube-api-access-*` or the pod's own).
    service_account_token: bool = False
    # Secret / ConfigMap names mounted as volumes (projected sources included), sorted.
    secret_volumes: tuple[str, ...] = ()
    configmap_volumes: tuple[str, ...] = ()
    # Container name -> sorted Secret / ConfigMap names its env or envFrom reads.
    secret_env: dict[str, list[str]] = field(default_factory=dict)
    configmap_env: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "service_account": self.service_account,
            "automount_service_account_token": self.automount_service_account_token,
            "service_account_token": self.service_account_token,
            "secret_volumes": list(self.secret_volumes),
            "secret_env": {k: list(v) for k, v in self.secret_env.items()},
            "configmap_volumes": list(self.configmap_volumes),
            "configmap_env": {k: list(v) for k, v in self.configmap_env.items()},
        }


@dataclass(frozen=True)
class PodInfo:
    name: str
    phase: str
    labels: dict[str, str]
    containers: tuple[str, ...]
    exposure: PodExposure = field(default_factory=lambda: PodExposure(service_account="default"))


@dataclass(frozen=True)
class GrantTarget:
    grant_id: str
    namespace: str
    scanner: str
    requester: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    # repr=False: a bearer token must never end up in a log line or a traceback.
    token: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class ManagedObject:
    """One object of a grant: where it is, and, when it was read from the cluster (a listing),
    its installation label and the uid and resourceVersion a delete must still find."""

    kind: ManagedKind
    namespace: str
    name: str
    grant_id: str | None
    installation: str | None = field(default=None, compare=False)
    uid: str | None = field(default=None, compare=False, repr=False)
    resource_version: str | None = field(default=None, compare=False, repr=False)
