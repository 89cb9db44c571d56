"""Request and response bodies of the grants API (DESIGN.md "REST API").

Syntax is validated here so a bad request never creates a grant row; everything that depends on
configuration (the policy's max TTL and max pods) or on the cluster is checked by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from app.db.models import Grant, GrantEvent
from app.grants.clock import format_rfc3339
from app.grants.selectors import is_dns1123_label, is_dns1123_subdomain, label_selector_problem

MIN_TTL_SECONDS = 30
MAX_PODS_PER_REQUEST = 1000  # a syntax bound; the policy's max_pods is the real limit

ScannerName = Literal["exec", "debug", "sidecar"]
GrantStatus = Literal["provisioning", "active", "revoking", "revoked", "expired", "failed"]
LIVE_STATUSES: tuple[GrantStatus, ...] = ("provisioning", "active", "revoking")


def _namespace(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError("must be a DNS-1123 label: at most 63 lowercase letters, digits and '-'")
    return value


def _pod_name(value: str) -> str:
    if not is_dns1123_subdomain(value):
        raise ValueError("must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'")
    return value


def _cluster(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError("must be a configured cluster name")
    return value


def _selector(value: str) -> str:
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
    namespace: NamespaceName
    pods: (
        Annotated[
            list[PodName],
            Field(min_length=1, max_length=MAX_PODS_PER_REQUEST),
            AfterValidator(_unique_sorted),
        ]
        | None
    ) = None
    selector: Annotated[str, Field(max_length=4096), AfterValidator(_selector)] | None = Field(
        default=None,
        description="Label selector, resolved once at grant time to the matching Running pods.",
    )
    scanner: ScannerName
    ttl_seconds: int | None = Field(
        default=None,
        ge=MIN_TTL_SECONDS,
        description="Default 900 (or the policy's max if lower); at most the policy's max.",
    )
    reason: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _exactly_one_target(self) -> GrantCreate:
        if (self.pods is None) == (self.selector is None):
            raise ValueError("give exactly one of `pods` or `selector`")
        return self


class GrantRenew(_Body):
    ttl_seconds: int = Field(ge=MIN_TTL_SECONDS, description="New lifetime from now.")


class GrantRevoke(_Body):
    reason: str | None = Field(default=None, max_length=1024)


class GrantOut(BaseModel):
    id: str
    status: GrantStatus
    cluster: str
    namespace: str
    scanner: ScannerName
    pods: list[str]
    selector: str | None
    requester: str
    policy: str
    reason: str | None
    service_account: str
    created_at: Rfc3339
    expires_at: Rfc3339
    ended_at: Rfc3339 | None
    last_error: str | None

    @classmethod
    def of(cls, grant: Grant) -> GrantOut:
        return cls.model_validate({name: getattr(grant, name) for name in cls.model_fields})


class GrantPage(BaseModel):
    items: list[GrantOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class GrantEventOut(BaseModel):
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
    items: list[GrantEventOut]
