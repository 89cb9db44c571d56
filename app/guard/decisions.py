"""The grant guard's verdicts: pure functions of (admission request, grant, policy, now).

Nothing here reads the database or the clock; `grant_lookup.py` supplies the grant and records
the audit events a `Decision` carries, so every rule is table-tested without a server.

Order of the checks: who (a grant identity at all, the grant known, still active and not past
its expiry — this also closes kube-apiserver's token-cache window after a revoke), where (the
grant's namespace and pods, the profile that includes the subresource), then what (the
container of an exec/attach, the new debug containers). The first failing "who/where" rule
decides; for debug containers every problem is listed, so a scanner author fixes them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from app.grants.clock import format_rfc3339
from app.guard.debug_containers import judge_debug_container, new_ephemeral_containers
from app.guard.review import AdmissionRequest
from app.kube.naming import OBJECT_NAME_PREFIX
from app.observability.credentials import mask_credentials
from app.settings_sections import PolicyConfig

_SA_PREFIX: Final = "system:serviceaccount:"

# The profiles (DESIGN.md) whose RBAC rules include each subresource. The guard checks it too,
# so a Role edited by hand or a future profile cannot widen what the guard admits.
_PROFILES_FOR: Final = {
    "exec": ("exec", "debug"),
    "attach": ("debug",),
    "debug_container": ("debug",),
}


@dataclass(frozen=True)
class GrantView:
    """What the guard needs of a grant (read from its row)."""

    id: str
    status: str
    cluster: str
    namespace: str
    scanner: str
    pods: Sequence[str]
    containers: Sequence[str] | None
    service_account: str
    policy: str
    expires_at: datetime
    # (pod, container) of the debug containers this grant was allowed to add.
    debug_containers: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class AuditRecord:
    type: str  # exec, attach, debug_container
    detail: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    records: tuple[AuditRecord, ...] = field(default=())


def grant_id_of(username: str, grants_namespace: str) -> str | None:
    """The grant id in `system:serviceaccount:<grants namespace>:scangate-<id>`, else None."""
    prefix = f"{_SA_PREFIX}{grants_namespace}:{OBJECT_NAME_PREFIX}"
    if not username.startswith(prefix):
        return None
    grant_id = username[len(prefix) :]
    return grant_id or None


def request_kind(request: AdmissionRequest) -> str | None:
    """exec, attach or debug_container; None for anything the guard does not judge."""
    if request.resource != "pods":
        return None
    if request.operation == "CONNECT" and request.sub_resource in ("exec", "attach"):
        return request.sub_resource
    if request.operation == "UPDATE" and request.sub_resource == "ephemeralcontainers":
        return "debug_container"
    return None


def judge(
    request: AdmissionRequest,
    grant: GrantView | None,
    policy: PolicyConfig | None,
    *,
    cluster: str,
    now: datetime,
) -> Decision:
    kind = request_kind(request)
    if grant is None:
        return Decision(False, "this ServiceAccount belongs to no grant scangate knows")
    if kind is None:
        what = "/".join(filter(None, (request.resource, request.sub_resource)))
        return Decision(
            False,
            f"the grant guard admits only pods/exec, pods/attach and pods/ephemeralcontainers "
            f"for grant identities, not {request.operation} {what}",
        )
    problem = _grant_problem(request, grant, policy, kind, cluster=cluster, now=now)
    if problem is not None:
        return _recorded(kind, request, grant, allowed=False, reason=problem)
    assert policy is not None  # _grant_problem refuses a grant whose policy is gone
    if kind == "debug_container":
        return _judge_debug(request, grant, policy)
    return _judge_connect(kind, request, grant)


def _grant_problem(
    request: AdmissionRequest,
    grant: GrantView,
    policy: PolicyConfig | None,
    kind: str,
    *,
    cluster: str,
    now: datetime,
) -> str | None:
    if grant.service_account != request.username or grant.cluster != cluster:
        return f"grant {grant.id} belongs to another cluster or identity"
    if grant.status != "active":
        return f"grant {grant.id} is {grant.status}, not active"
    if now >= grant.expires_at:
        return f"grant {grant.id} expired at {format_rfc3339(grant.expires_at)}"
    if policy is None:
        return f"grant {grant.id}'s policy {grant.policy!r} is no longer configured"
    if request.namespace != grant.namespace:
        return f"namespace {request.namespace!r} is not grant {grant.id}'s ({grant.namespace})"
    if request.name not in grant.pods:
        return (
            f"pod {request.name!r} is not one of grant {grant.id}'s pods ({', '.join(grant.pods)})"
        )
    if grant.scanner not in _PROFILES_FOR[kind]:
        return f"a {grant.scanner!r} grant does not include {request.sub_resource}"
    return None


def _judge_connect(kind: str, request: AdmissionRequest, grant: GrantView) -> Decision:
    container = str(request.object.get("container") or "")
    if grant.containers is None:
        return _recorded(kind, request, grant, allowed=True, reason="every container is allowed")
    allowed = sorted(
        {*grant.containers} | {c for pod, c in grant.debug_containers if pod == request.name}
    )
    if not container:
        reason = (
            f"name the container (kubectl {kind} -c NAME): grant {grant.id} allows only "
            f"{', '.join(allowed)}"
        )
        return _recorded(kind, request, grant, allowed=False, reason=reason)
    if container not in allowed:
        reason = (
            f"container {container!r} of pod {request.name!r} is not allowed: grant "
            f"{grant.id} allows only {', '.join(allowed)}"
        )
        return _recorded(kind, request, grant, allowed=False, reason=reason)
    return _recorded(kind, request, grant, allowed=True, reason=f"container {container!r} allowed")


def _judge_debug(request: AdmissionRequest, grant: GrantView, policy: PolicyConfig) -> Decision:
    new = new_ephemeral_containers(request.object, request.old_object)
    if not new:
        return _recorded(
            "debug_container", request, grant, allowed=True, reason="no new debug container"
        )
    verdicts = [judge_debug_container(c, request.object, policy, grant.containers) for c in new]
    refused = [v for v in verdicts if v.problems]
    reason = (
        "; ".join(f"debug container {v.name!r}: {'; '.join(v.problems)}" for v in refused)
        if refused
        else f"debug container {', '.join(repr(v.name) for v in verdicts)} allowed"
    )
    records = tuple(
        AuditRecord(
            "debug_container",
            {
                **_where(request),
                **v.summary,
                "verdict": "denied" if refused else "allowed",
                # Each container's own problems; a container refused only because another in
                # the same request was says so.
                "reason": "; ".join(v.problems) or (reason if refused else "allowed"),
            },
        )
        for v in verdicts
    )
    return Decision(not refused, reason, records)


def _recorded(
    kind: str, request: AdmissionRequest, grant: GrantView, *, allowed: bool, reason: str
) -> Decision:
    detail: dict[str, Any] = _where(request)
    if kind in ("exec", "attach"):
        detail["container"] = request.object.get("container") or None
    if kind == "exec":
        # argv is the scanner's own command line; a credential pasted into it must not be
        # stored (the audit trail is listed to admins and exported).
        detail["argv"] = [mask_credentials(str(a)) for a in request.object.get("command") or []]
    detail["verdict"] = "allowed" if allowed else "denied"
    detail["reason"] = reason
    return Decision(allowed, reason, (AuditRecord(kind, detail),))


def _where(request: AdmissionRequest) -> dict[str, Any]:
    return {"namespace": request.namespace, "pod": request.name, "request_uid": request.uid}
