"""How results read: plain text for people, `--output json` for scripts (the API's own JSON,
unchanged, on stdout)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

_GRANT_FIELDS: Final = (
    "id",
    "status",
    "cluster",
    "namespace",
    "scanner",
    "pods",
    "selector",
    "requester",
    "policy",
    "reason",
    "service_account",
    "created_at",
    "expires_at",
    "ended_at",
    "last_error",
)
_LIST_COLUMNS: Final = ("id", "status", "cluster", "namespace", "scanner", "pods", "expires_at")


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def grant_text(grant: dict[str, Any]) -> str:
    """One grant as `field: value` lines (every field of the API's Grant JSON), then what an
    exec/debug grant reaches in each pod beyond the API."""
    width = max(len(name) for name in _GRANT_FIELDS)
    lines = [f"{name + ':':<{width + 1}} {_text(grant.get(name))}" for name in _GRANT_FIELDS]
    if grant.get("approval"):
        lines += _approval_lines(grant["approval"], width)
    exposure = grant.get("exposure")
    if exposure is None:
        reaches = "-" if grant.get("scanner") != "sidecar" else "- (sidecar: reaches no container)"
        lines.append(f"{'exposure:':<{width + 1}} {reaches}")
    else:
        lines.append("exposure:")
        lines += [
            f"  {pod}: {_pod_exposure_text(pod_exposure)}" for pod, pod_exposure in exposure.items()
        ]
    return "\n".join(lines)


def _approval_lines(approval: dict[str, Any], width: int) -> list[str]:
    """The approval object: approvals so far of those required, by whom, the deadline, and a
    denial with its reason."""
    approvals = approval.get("approvals") or []
    lines = [
        f"{'approval:':<{width + 1}} {len(approvals)}/{approval.get('required')} approvals, "
        f"deadline {_text(approval.get('deadline'))}"
    ]
    for entry in approvals:
        reason = f" ({entry['reason']})" if entry.get("reason") else ""
        lines.append(f"  approved by {entry.get('approver')} at {entry.get('at')}{reason}")
    if approval.get("denied_by"):
        reason = f": {approval['denial_reason']}" if approval.get("denial_reason") else ""
        lines.append(f"  denied by {approval['denied_by']}{reason}")
    return lines


def _pod_exposure_text(exposure: dict[str, Any]) -> str:
    token = "token mounted" if exposure.get("service_account_token") else "no token mounted"
    parts = [f"ServiceAccount {exposure.get('service_account')} ({token})"]
    for key, label in (
        ("secret_volumes", "Secret volumes"),
        ("configmap_volumes", "ConfigMap volumes"),
    ):
        if exposure.get(key):
            parts.append(f"{label} {_text(exposure[key])}")
    for key, label in (("secret_env", "Secret env"), ("configmap_env", "ConfigMap env")):
        by_container = exposure.get(key) or {}
        if by_container:
            parts.append(
                f"{label} "
                + "; ".join(f"{c}: {_text(names)}" for c, names in sorted(by_container.items()))
            )
    return ", ".join(parts)


def grants_table(grants: Sequence[dict[str, Any]]) -> str:
    """A table, one grant a row. When some grant needed approval (an approver's list of
    pending requests), who asked and the approvals so far are shown too."""
    columns: tuple[str, ...] = _LIST_COLUMNS
    if any(grant.get("approval") for grant in grants):
        columns += ("requester", "approvals")
    rows = [[name.upper() for name in columns]]
    rows += [[_cell(grant, name) for name in columns] for grant in grants]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _cell(grant: dict[str, Any], column: str) -> str:
    if column == "approvals":
        approval = grant.get("approval")
        if not approval:
            return "-"
        return f"{len(approval.get('approvals') or [])}/{approval.get('required')}"
    if column == "expires_at" and grant.get("status") == "pending_approval":
        # The service answers the latest moment it could end; its TTL starts at activation.
        return "-"
    return _text(grant.get(column))


# Detail fields shown on an event's line (the grant guard's decisions carry these).
_EVENT_DETAILS: Final = ("pod", "container", "image", "argv")


def events_text(events: Sequence[dict[str, Any]]) -> str:
    """One line per audit event: time, type, actor, then a guard decision's verdict, what it
    judged and its reason; or an approval decision's count and reason."""
    width = max((len(str(e.get("type"))) for e in events), default=0)
    lines = []
    for event in events:
        detail = event.get("detail") or {}
        parts = [str(event.get("at")), str(event.get("type")).ljust(width), str(event.get("actor"))]
        if "verdict" in detail:
            parts.append(str(detail["verdict"]))
            for name in _EVENT_DETAILS:
                value = detail.get(name)
                if value:
                    shown = " ".join(map(str, value)) if isinstance(value, list) else str(value)
                    parts.append(f"{name}={shown}")
            if detail.get("reason") and detail["reason"] != detail["verdict"]:
                parts.append(f"({detail['reason']})")
        else:
            parts += _approval_event_parts(str(event.get("type")), detail)
        lines.append("  ".join(parts))
    return "\n".join(lines)


def _approval_event_parts(event_type: str, detail: dict[str, Any]) -> list[str]:
    """`approval_required`: how many, by when; `approved`: approvals so far of those required;
    either decision: its reason."""
    parts = []
    if event_type == "approval_required":
        parts.append(f"needs {detail.get('required')} by {detail.get('deadline')}")
    elif "approvals" in detail and "required" in detail:
        parts.append(f"{detail['approvals']}/{detail['required']}")
    if event_type in ("approved", "denied") and detail.get("reason"):
        parts.append(f"({detail['reason']})")
    return parts


def whoami_text(identity: dict[str, Any]) -> str:
    lines = [
        f"principal: {identity.get('principal')}",
        f"kind:      {identity.get('kind')}",
        f"admin:     {'yes' if identity.get('is_admin') else 'no'}",
    ]
    claims = identity.get("claims")
    if claims:
        lines.append("claims:")
        lines += [f"  {name}: {_text(value)}" for name, value in sorted(claims.items())]
    policies = identity.get("policies") or []
    if not policies:
        lines.append("policies:  none (every request will be denied)")
    else:
        lines.append("policies:")
    for policy in policies:
        lines.append(
            f"  {policy.get('name')}: namespaces {_text(policy.get('namespaces'))}; "
            f"scanners {_text(policy.get('scanners'))}; clusters {_text(policy.get('clusters'))}; "
            f"max ttl {policy.get('max_ttl_seconds')}s; max pods {policy.get('max_pods')}"
        )
        for name, patterns in sorted((policy.get("claims") or {}).items()):
            lines.append(f"    requires claim {name}: {_text(patterns)}")
    return "\n".join(lines)
