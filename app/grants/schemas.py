"""Request and response bodies of the grants API (README "API"; docs/ARCHITECTURE.md).

Syntax is validated here so a bad request never creates a grant row; everything that depends on
configuration (the policy's max TTL and max pods) or on the cluster is checked by the service.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from app.db.models import Grant, GrantEvent, GrantStatus, Verdict
from app.grants.clock import format_rfc3339
from app.grants.examples import EVENT, GRANT
from app.grants.selectors import is_dns1123_label, is_dns1123_subdomain, label_selector_problem
from app.observability.credentials import contains_credential

MIN_TTL_SECONDS = 30
MAX_PODS_PER_REQUEST = 1000  # a syntax bound; the policy's max_pods is the real limit
MAX_CONTAINERS_PER_REQUEST = 100  # a syntax bound: pods rarely have more than a few

ScannerName = Literal["exec", "debug", "sidecar"]


def _namespace(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError("must be a DNS-1123 label: at most 63 lowercase letters, digits and '-'")
    return value


def _pod_name(value: str) -> str:
    if not is_dns1123_subdomain(value):
        raise ValueError("must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'")
    return value


def _container_name(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError("must be a container name: a DNS-1123 label (lowercase, digits, '-')")
    return value


def _cluster(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError("must be a configured cluster name")
    return value


def _no_credential(value: str) -> str:
    # Free text is stored, listed to admins and exported with the audit trail: a token or key
    # pasted here (say, a CI variable expanded by mistake) must be refused, not kept.
    if contains_credential(value):
        raise ValueError("must not contain a credential (an API key, a token or a JWT)")
    return value


# C0 and C1 control characters other than tab and line breaks, and lone UTF-16 surrogates (a
# JSON "\ud800" escape decodes to one): PostgreSQL cannot store a NUL, no UTF-8 encoder takes a
# surrogate, and escape sequences would be replayed to whoever reads the audit trail in a
# terminal.
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _plain_text(value: str) -> str:
    if _CONTROL_OR_SURROGATE.search(value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


def _selector(value: str) -> str:
    _no_credential(value)  # before the syntax check, whose messages quote the selector
    problem = label_selector_problem(value)
    if problem:
        raise ValueError(f"invalid label selector: {problem}")
    return value.strip()


def _unique_sorted(value: list[str]) -> list[str]:
    # The Role's resourceNames are a set; sorting makes the stored grant deterministic.
    return sorted(set(value))


Rfc3339 = Annotated[datetime, PlainSerializer(format_rfc3339, return_type=str)]
NamespaceName = Annotated[str, AfterValidator(_namespace)]
PodName = Annotated[str, AfterValidator(_pod_name)]


class _Body(BaseModel):
    # Unknown keys are mistakes (a typo in `selector` must not silently become a pods grant).
    model_config = ConfigDict(extra="forbid")


class GrantCreate(_Body):
    cluster: Annotated[str, AfterValidator(_cluster)] | None = Field(
        default=None, description="Configured cluster name; the first configured by default."
    )
    namespace: NamespaceName = Field(description="The target namespace.")
    pods: (
        Annotated[
            list[PodName],
            Field(min_length=1, max_length=MAX_PODS_PER_REQUEST),
            AfterValidator(_unique_sorted),
        ]
        | None
    ) = Field(default=None, description="Pod names (give `pods` or `selector`, not both).")
    selector: Annotated[str, Field(max_length=4096), AfterValidator(_selector)] | None = Field(
        default=None,
        description="Label selector, resolved once at grant time to the matching Running pods.",
    )
    scanner: ScannerName = Field(
        description="The scanner profile: `exec` (kubectl exec), `debug` (ephemeral debug "
        "containers) or `sidecar` (read a scanner sidecar's logs)."
    )
    containers: (
        Annotated[
            list[Annotated[str, AfterValidator(_container_name)]],
            Field(min_length=1, max_length=MAX_CONTAINERS_PER_REQUEST),
            AfterValidator(_unique_sorted),
        ]
        | None
    ) = Field(
        default=None,
        description="The containers exec, attach and debug containers may target (enforced "
        "by the grant guard webhook). Default: every container of the pods, and for a `debug` "
        "grant also the debug containers it created.",
    )
    ttl_seconds: int | None = Field(
        default=None,
        ge=MIN_TTL_SECONDS,
        description="Default 900 (or the policy's max if lower); at most the policy's max.",
    )
    reason: Annotated[str, AfterValidator(_plain_text), AfterValidator(_no_credential)] | None = (
        Field(default=None, max_length=1024, description="Why, for the audit trail.")
    )

    @model_validator(mode="after")
    def _exactly_one_target(self) -> GrantCreate:
        if (self.pods is None) == (self.selector is None):
            raise ValueError("give exactly one of `pods` or `selector`")
        return self

    @model_validator(mode="after")
    def _containers_need_exec(self) -> GrantCreate:
        if self.containers is not None and self.scanner == "sidecar":
            # A sidecar grant only reads logs: naming containers would suggest a limit that
            # nothing enforces.
            raise ValueError("`containers` applies to `exec` and `debug` grants only")
        return self


class GrantRenew(_Body):
    ttl_seconds: int = Field(ge=MIN_TTL_SECONDS, description="New lifetime from now.")


class GrantRevoke(_Body):
    reason: Annotated[str, AfterValidator(_plain_text), AfterValidator(_no_credential)] | None = (
        Field(default=None, max_length=1024, description="Why, for the audit trail.")
    )


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


FreeText = Annotated[str, AfterValidator(_plain_text), AfterValidator(_no_credential)]


class GrantApprove(_Body):
    reason: FreeText | None = Field(
        default=None, max_length=1024, description="Why, for the audit trail."
    )


class GrantDeny(_Body):
    reason: Annotated[FreeText, AfterValidator(_not_blank)] = Field(
        max_length=1024,
        description="Why the request is refused (required): the requester "
        "and the audit trail read it.",
    )


class ApprovalDecisionOut(BaseModel):
    approver: str
    at: Rfc3339
    reason: str | None


class ApprovalOut(BaseModel):
    """Where a grant that needs approval stands: its approvals so far and any denial."""

    required: int = Field(description="How many distinct approvers must approve.")
    approvals: list[ApprovalDecisionOut] = Field(description="Oldest first.")
    deadline: Rfc3339 = Field(
        description="The request ends `approval_expired` if not approved by then."
    )
    denied_by: str | None = Field(
        description="Who denied it (`scangate:system`: no policy allows it any more)."
    )
    denial_reason: str | None

    @classmethod
    def of(cls, grant: Grant) -> ApprovalOut | None:
        if grant.approvals_required is None or grant.approval_deadline is None:
            return None
        decisions = grant.decisions
        denial = next((d for d in decisions if d.verdict == Verdict.DENIED), None)
        return cls(
            required=grant.approvals_required,
            approvals=[
                ApprovalDecisionOut(approver=d.approver, at=d.at, reason=d.reason)
                for d in decisions
                if d.verdict == Verdict.APPROVED
            ],
            deadline=grant.approval_deadline,
            denied_by=denial.approver if denial else None,
            denial_reason=denial.reason if denial else None,
        )


class PodExposureOut(BaseModel):
    """What an exec/debug grant reaches in one pod beyond the Kubernetes API: whoever runs a
    process in a container reads its mounted files and environment, and a mounted
    ServiceAccount token carries that account's own API permissions."""

    service_account: str = Field(description="The pod's ServiceAccount.")
    automount_service_account_token: bool | None = Field(
        description="The pod spec's automountServiceAccountToken (null: unset)."
    )
    service_account_token: bool = Field(
        description="A projected ServiceAccount token volume (e.g. kube-api-access-*) is in the "
        "pod spec: an exec/debug grant can read the token and act with the account's rights."
    )
    secret_volumes: list[str] = Field(description="Secrets mounted as volumes (projected too).")
    secret_env: dict[str, list[str]] = Field(
        description="Container -> Secrets its env or envFrom reads."
    )
    configmap_volumes: list[str] = Field(
        description="ConfigMaps mounted as volumes (projected too; not the kube-root-ca.crt "
        "projected beside a token)."
    )
    configmap_env: dict[str, list[str]] = Field(
        description="Container -> ConfigMaps its env or envFrom reads."
    )


class GrantOut(BaseModel):
    """A grant. `pods` are the pods its Role names (for a selector grant: the Running pods the
    selector matched when the grant was made)."""

    model_config = ConfigDict(json_schema_extra={"examples": [GRANT]})

    id: str
    status: GrantStatus
    cluster: str
    namespace: str
    scanner: ScannerName
    pods: list[str]
    selector: str | None
    containers: list[str] | None = Field(
        default=None, description="Containers exec/attach may reach; null: every container."
    )
    exposure: dict[str, PodExposureOut] | None = Field(
        default=None,
        description="Pod name -> what an exec/debug grant reaches in it beyond the API, read "
        "when the grant was made. Null for `sidecar` grants (they reach no container) and "
        "while provisioning.",
    )
    requester: str
    policy: str
    reason: str | None
    service_account: str
    created_at: Rfc3339
    expires_at: Rfc3339
    ended_at: Rfc3339 | None
    last_error: str | None
    approval: ApprovalOut | None = Field(
        default=None,
        description="The approvals the grant's policy asks for and where they stand; null when "
        "the policy needs none. A `pending_approval` grant has no cluster object yet, and its "
        "`expires_at` is the latest it could end (deadline + TTL): its TTL counts from "
        "activation.",
    )

    @classmethod
    def of(cls, grant: Grant) -> GrantOut:
        values = {name: getattr(grant, name) for name in cls.model_fields if name != "approval"}
        return cls.model_validate({**values, "approval": ApprovalOut.of(grant)})


class GrantPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [GRANT], "next_cursor": GRANT["id"]}]}
    )

    items: list[GrantOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class GrantEventOut(BaseModel):
    """One audit event: `type` is requested, approval_required, approved, denied,
    approval_expired, activated, failed, kubeconfig_issued, renewed, revoking,
    revocation_failed, revoked or expired; `actor` a principal, `scangate:reaper` or
    `scangate:system`.
    The grant guard adds exec, attach and debug_container (each with `verdict` and `reason`),
    whose actor is the grant's ServiceAccount."""

    model_config = ConfigDict(json_schema_extra={"examples": [EVENT]})

    id: int
    grant_id: str
    at: Rfc3339
    actor: str
    type: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: GrantEvent) -> GrantEventOut:
        return cls.model_validate({name: getattr(event, name) for name in cls.model_fields})


class GrantEventList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EVENT]}]})

    items: list[GrantEventOut] = Field(description="Oldest first.")
