"""The policy's limits on one grant, checked the same way wherever they apply."""

from __future__ import annotations

from app.grants.errors import ActiveGrantLimitReached, ReasonRequired, TooManyPods, TtlTooLong
from app.settings_sections import PolicyConfig


def check_ttl(ttl_seconds: int, policy: PolicyConfig) -> int:
    """`ttl_seconds` if the policy allows it (creation and renewal), else TtlTooLong."""
    if ttl_seconds > policy.max_ttl_seconds:
        raise TtlTooLong(
            f"ttl_seconds {ttl_seconds} exceeds the policy's max_ttl_seconds "
            f"{policy.max_ttl_seconds}",
            field="body.ttl_seconds",
            max_ttl_seconds=policy.max_ttl_seconds,
        )
    return ttl_seconds


def check_pod_count(
    count: int, max_pods: int, *, field: str, pods: list[str] | None = None
) -> None:
    """TooManyPods unless `count` pods are within the policy's `max_pods` (named pods before
    anything is recorded; a selector's matches once resolved, naming them)."""
    if count <= max_pods:
        return
    detail = f"{count} pods requested but the policy allows at most {max_pods}"
    if pods is None:
        raise TooManyPods(detail, field=field, max_pods=max_pods)
    raise TooManyPods(detail, field=field, pods=pods, max_pods=max_pods)


def check_reason(reason: str | None, policy: PolicyConfig) -> None:
    """ReasonRequired (422, body.reason) when the policy has `require_reason` and the request
    gives none, or only blanks."""
    if policy.require_reason and not (reason or "").strip():
        raise ReasonRequired(
            f"policy {policy.name!r} requires a reason for every grant", field="body.reason"
        )


def check_active_grant_limit(held: int, limit: int, requester: str, policy: str) -> None:
    """ActiveGrantLimitReached (409, naming the limit) when `requester` already holds `limit`
    grants under `policy` (pending_approval, provisioning or active)."""
    if held >= limit:
        raise ActiveGrantLimitReached(
            f"{requester} already holds {held} grant(s) under policy {policy!r}, whose "
            f"max_active_grants is {limit}: end one first",
            max_active_grants=limit,
            policy=policy,
        )
