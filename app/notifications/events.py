"""Which notification event (the names targets subscribe to, `settings_notifications.py`) an
audit event is: the one mapping from `grant_events.type` (and, for the guard's decisions, its
verdict) to what a receiver hears.

Audit types without a notification (`revoking`: the end event follows; an allowed exec) map to
None. The approval types are those the approvals work records: a grant waiting for approvers
(`approval_required`), a decision (`approved`, `denied`) and a request nobody decided in time
(`approval_expired`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

_BY_AUDIT_TYPE: Final[Mapping[str, str]] = {
    "requested": "requested",
    "approval_required": "approval_needed",
    "approved": "approved",
    "denied": "denied",
    "approval_expired": "approval_expired",
    "activated": "active",
    "renewed": "renewed",
    "revoked": "revoked",
    "expired": "expired",
    "failed": "failed",
    "rejected": "rejected",
    "revocation_failed": "revocation_failed",
    "kubeconfig_issued": "kubeconfig_issued",
}
# The grant guard's decisions (app/guard): one event each, with `verdict` in its detail.
_GUARD_TYPES: Final = frozenset({"exec", "attach", "debug_container"})


def notification_event(audit_type: str, detail: Mapping[str, Any]) -> str | None:
    """The notification event an audit event is, or None."""
    if audit_type in _GUARD_TYPES:
        return "guard_refused" if detail.get("verdict") == "denied" else None
    return _BY_AUDIT_TYPE.get(audit_type)
