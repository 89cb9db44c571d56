"""Plain values that cross the app/kube boundary, so callers never see `kubernetes` models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ManagedKind = Literal["ServiceAccount", "Role", "RoleBinding"]


@dataclass(frozen=True)
class PodInfo:
    name: str
    phase: str
    labels: dict[str, str]
    containers: tuple[str, ...]


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
