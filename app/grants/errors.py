"""Domain errors of the grants package. The one problem+json handler (app.errors) renders them;
`detail` is shown to callers, so it never carries tokens or raw cluster responses."""

from __future__ import annotations

from app.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ScangateError,
    UnprocessableError,
    UpstreamForbidden,
    UpstreamUnavailable,
)
from app.grants.ids import is_grant_id
from app.kube.errors import KubeError, KubeForbidden, KubeMalformedResponse, KubeUnavailable


class GrantNotFound(NotFoundError):
    """Unknown id, or a grant the caller may not see: the two are indistinguishable on purpose
    so ids do not leak between principals."""

    title = "Grant Not Found"
    type_slug = "grant-not-found"

    def __init__(self, grant_id: str) -> None:
        # Only an id-shaped value is repeated: a path segment can hold anything a caller typed,
        # a pasted token included.
        shown = f" {grant_id!r}" if is_grant_id(grant_id) else ""
        super().__init__(f"grant{shown} not found")


class GrantNotActive(ConflictError):
    title = "Grant Not Active"
    type_slug = "grant-not-active"

    def __init__(self, grant_id: str, status: str) -> None:
        super().__init__(f"grant {grant_id!r} is {status}, not active", grant_status=status)


class LifetimeCapReached(ConflictError):
    title = "Grant Lifetime Cap Reached"
    type_slug = "lifetime-cap-reached"


class CredentialsForbidden(ForbiddenError):
    """Admins may see and revoke every grant but never obtain another principal's credentials."""

    title = "Credentials Are the Requester's Only"
    type_slug = "credentials-forbidden"


class GrantNoLongerAllowed(ForbiddenError):
    """The grant's requester, cluster, namespace or scanner is no longer allowed by any policy
    (the configuration changed since it was granted): no more credentials for it."""

    title = "Grant No Longer Allowed by Policy"
    type_slug = "grant-no-longer-allowed"


class UnknownCluster(UnprocessableError):
    title = "Unknown Cluster"
    type_slug = "unknown-cluster"


class TtlTooLong(UnprocessableError):
    title = "TTL Exceeds Policy"
    type_slug = "ttl-too-long"


class NamespaceNotFound(UnprocessableError):
    title = "Namespace Not Found"
    type_slug = "namespace-not-found"


class PodsNotFound(UnprocessableError):
    title = "Pods Not Found"
    type_slug = "pods-not-found"


class NoPodsMatch(UnprocessableError):
    title = "No Running Pods Match the Selector"
    type_slug = "no-pods-match"


class TooManyPods(UnprocessableError):
    title = "Too Many Pods"
    type_slug = "too-many-pods"


class SidecarMissing(UnprocessableError):
    title = "Sidecar Container Missing"
    type_slug = "sidecar-missing"


class PodExposureRefused(UnprocessableError):
    """A pod exposes something (a mounted ServiceAccount token, Secrets or ConfigMaps) that the
    policy's `allow_pods_with` does not allow an exec/debug grant to reach."""

    title = "Pod Exposes What the Policy Refuses"
    type_slug = "pod-exposure-refused"


class ClusterError(ScangateError):
    """The cluster rejected a request for a reason that is neither ours to retry nor the
    caller's fault (a missing grants namespace, an invalid object)."""

    status = 502
    title = "Cluster Error"
    type_slug = "cluster-error"


class ProvisioningAbandoned(ConflictError):
    """The grant stopped being `provisioning` while this request worked on it: the reaper gave
    up on it (it took longer than the provisioning timeout) or it was revoked meanwhile."""

    title = "Provisioning Abandoned"
    type_slug = "provisioning-abandoned"


def cluster_problem(exc: KubeError) -> ScangateError:
    """The API error for a cluster failure: 502 naming the permission scangate lacks, 503 with
    Retry-After when the cluster is unreachable, 502 otherwise (an answer that cannot be
    decoded included: it names the object and the field)."""
    if isinstance(exc, KubeForbidden):
        return UpstreamForbidden(
            f"the cluster refused scangate: it lacks permission to {exc.permission}",
            permission=exc.permission,
        )
    if isinstance(exc, KubeUnavailable):
        return UpstreamUnavailable(
            f"the cluster is unavailable: {exc}", retry_after=exc.retry_after
        )
    if isinstance(exc, KubeMalformedResponse):
        return ClusterError(f"the cluster's answer could not be read: {exc}")
    return ClusterError(f"the cluster rejected the request: {exc}")


# -- approvals and the policy's small controls ---------------------------------------------------


class GrantNotPending(ConflictError):
    """An approval or denial of a grant that is not waiting for one (any more)."""

    title = "Grant Not Pending Approval"
    type_slug = "grant-not-pending"

    def __init__(self, grant_id: str, status: str, *, why: str | None = None) -> None:
        because = f": {why}" if why else ""
        super().__init__(
            f"grant {grant_id!r} is {status}, not pending_approval{because}", grant_status=status
        )


class AlreadyDecided(ConflictError):
    """An approver decides once per grant."""

    title = "Already Decided"
    type_slug = "already-decided"


class NotAnApprover(ForbiddenError):
    title = "Not an Approver"
    type_slug = "not-an-approver"


class SelfApprovalRefused(ForbiddenError):
    """The requester is one of the policy's approvers, but the policy does not let it count
    for its own request (`allow_self_approval: false`)."""

    title = "Self-Approval Refused"
    type_slug = "self-approval-refused"


class ReasonRequired(UnprocessableError):
    title = "Reason Required"
    type_slug = "reason-required"


class ActiveGrantLimitReached(ConflictError):
    title = "Active Grant Limit Reached"
    type_slug = "active-grant-limit-reached"
