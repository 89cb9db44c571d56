"""The approvals contract (issue 19), kept by a stand-in for the service's approval endpoints
(served over HTTP by tests/support/approval_service.py until the service has them). Its
answers are the contract's, literally:

- POST /v1/grants under the approval policy -> 202 with the grant in `pending_approval`, its
  `approval` object (`required`, `approvals`, `deadline`, `denied_by`, `denial_reason`), a
  Location header and `expires_at` = deadline + ttl, the latest it could end (as the service
  answers; the TTL counts from activation, when `expires_at` is set again); a
  namespace listed in `immediate_namespaces` gets 201 `active` as today;
- GET /v1/grants/{id} (requester, admins, the policy's approvers) and GET /v1/grants with
  `status`, `limit` and `cursor` (approvers see the pending grants they can decide on);
- POST /v1/grants/{id}/approve and /deny: 200 with the grant; the Nth distinct approval makes it
  `active` (expires_at = approval time + ttl), a denial `denied`; problem+json 403 (not an
  approver, or self-approval, saying which), 409 (not pending, with `grant_status`; already
  decided), 404 (unknown or not visible), 422 naming `body.reason` for a blank denial reason;
- POST /v1/grants/{id}/revoke (the requester cancels: `pending_approval` -> `revoked`) and
  GET /v1/grants/{id}/kubeconfig (requester only, only while active; approvers never);
- the deadline: a pending grant past it reads `approval_expired` (the service's reaper).

`provisioning_error` makes the Nth approval's provisioning fail (`failed` with `last_error`).
Knobs for the transport behaviour the client must cope with: `fail_next_polls` (the next GETs
of a grant answer 503, with `Retry-After` when `retry_after` is set), `drop_next_polls` (the
next GETs of a grant get their connection closed without an answer) and `poll_retry_after`
(a Retry-After header on every GET of a pending grant). `requests` records what was asked.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PROBLEM_TYPE_BASE = "https://scangate.dev/problems/"
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class RecordedRequest:
    at: float  # time.monotonic()
    method: str
    path: str
    principal: str | None
    status: int


class Problem(Exception):
    """A problem+json answer; `slug` (the type's last part) defaults to the title's words."""

    def __init__(
        self, status: int, title: str, detail: str, *, slug: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        self.slug = slug or title.lower().replace(" ", "-")

    def body(self) -> dict[str, Any]:
        slug = self.slug
        return {
            "type": PROBLEM_TYPE_BASE + slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


@dataclass
class ApprovalContract:
    """The stand-in's state and answers. The approval policy (`required`, `approvers`,
    `allow_self_approval`, `timeout_seconds`) and the knobs can be changed by a test before it
    requests a grant."""

    keys: dict[str, str] = field(default_factory=dict)  # key name -> API key
    required: int = 2
    approvers: tuple[str, ...] = ("apikey:alice", "apikey:bob")
    allow_self_approval: bool = False
    timeout_seconds: int = 3600
    admins: tuple[str, ...] = ("apikey:root",)
    immediate_namespaces: tuple[str, ...] = ("open",)
    provisioning_error: str | None = None  # set: the Nth approval's provisioning fails with it
    poll_retry_after: int | None = None
    fail_next_polls: int = 0
    drop_next_polls: int = 0
    retry_after: int | None = None
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)
    ttls: dict[str, int] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- what a test observes ------------------------------------------------------------------

    def status_of(self, grant_id: str) -> str:
        with self.lock:
            self._expire_overdue()
            return str(self.grants[grant_id]["status"])

    def only_grant(self) -> dict[str, Any]:
        with self.lock:
            assert len(self.grants) == 1, list(self.grants)
            return dict(next(iter(self.grants.values())))

    def polls_of(self, grant_id: str) -> list[RecordedRequest]:
        with self.lock:
            return [
                r for r in self.requests if r.method == "GET" and r.path == f"/v1/grants/{grant_id}"
            ]

    # -- the contract ---------------------------------------------------------------------------

    def take_dropped_poll(self) -> bool:
        """Whether to close this GET's connection unanswered (`drop_next_polls`)."""
        with self.lock:
            if self.drop_next_polls <= 0:
                return False
            self.drop_next_polls -= 1
            return True

    def handle(
        self, method: str, path: str, query: dict[str, str], principal: str, body: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self._expire_overdue()
            parts = path.strip("/").split("/")
            if parts[:2] != ["v1", "grants"]:
                raise Problem(404, "Not Found", f"no route {path}")
            if len(parts) == 2 and method == "POST":
                return self._create(principal, body)
            if len(parts) == 2 and method == "GET":
                return 200, self._list(principal, query), {}
            grant = self._visible(principal, parts[2])
            action = parts[3] if len(parts) == 4 else None
            if action is None and method == "GET":
                return self._get(grant)
            if action == "approve" and method == "POST":
                return 200, self._approve(principal, grant, body), {}
            if action == "deny" and method == "POST":
                return 200, self._deny(principal, grant, body), {}
            if action == "revoke" and method == "POST":
                return 200, self._revoke(principal, grant), {}
            raise Problem(405, "Method Not Allowed", f"{method} {path}")

    def kubeconfig(self, principal: str, grant_id: str) -> str:
        with self.lock:
            self._expire_overdue()
            grant = self._visible(principal, grant_id)
            if principal != grant["requester"]:
                raise Problem(
                    403,
                    "Credentials Are the Requester's Only",
                    "only the grant's requester may fetch its kubeconfig",
                )
            if grant["status"] != "active":
                raise Problem(
                    409,
                    "Grant Not Active",
                    f"grant {grant_id!r} is {grant['status']}, not active",
                    grant_status=grant["status"],
                )
            return (
                "apiVersion: v1\nkind: Config\n"
                f"clusters: [{{name: default, cluster: {{server: 'https://127.0.0.1:1'}}}}]\n"
                f"users: [{{name: scangate-{grant_id}, user: {{token: t-{grant_id}}}}}]\n"
                f"contexts: [{{name: scangate-{grant_id}, context: {{cluster: default, "
                f"user: scangate-{grant_id}, namespace: {grant['namespace']}}}}}]\n"
                f"current-context: scangate-{grant_id}\n"
            )

    def _create(self, principal: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not isinstance(body, dict) or not body.get("namespace") or not body.get("scanner"):
            raise Problem(
                422,
                "Request Validation Failed",
                "invalid request: body",
                errors=[{"field": "body", "message": "namespace and scanner"}],
            )
        grant_id = "01j" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(23))
        now = datetime.now(UTC)
        immediate = body["namespace"] in self.immediate_namespaces
        ttl = int(body.get("ttl_seconds") or 900)
        grant: dict[str, Any] = {
            "id": grant_id,
            "status": "active" if immediate else "pending_approval",
            "cluster": body.get("cluster") or "default",
            "namespace": body["namespace"],
            "scanner": body["scanner"],
            "pods": body.get("pods") or ["web-0"],
            "selector": body.get("selector"),
            "containers": None,
            "exposure": None,
            "requester": principal,
            "policy": "payments-ci",
            "reason": body.get("reason"),
            "service_account": f"scangate-{grant_id}",
            "created_at": _rfc3339(now),
            "expires_at": _rfc3339(
                now + timedelta(seconds=ttl if immediate else ttl + self.timeout_seconds)
            ),
            "ended_at": None,
            "last_error": None,
            "approval": None
            if immediate
            else {
                "required": self.required,
                "approvals": [],
                "deadline": _rfc3339(now + timedelta(seconds=self.timeout_seconds)),
                "denied_by": None,
                "denial_reason": None,
            },
        }
        self.grants[grant_id] = grant
        self.ttls[grant_id] = ttl
        return (201 if immediate else 202), grant, {"Location": f"/v1/grants/{grant_id}"}

    def _visible(self, principal: str, grant_id: str) -> dict[str, Any]:
        grant = self.grants.get(grant_id)
        if grant is None or not (
            principal == grant["requester"]
            or principal in self.admins
            or (grant["approval"] is not None and principal in self.approvers)
        ):
            raise Problem(404, "Grant Not Found", f"grant {grant_id!r} not found")
        return grant

    def _get(self, grant: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.fail_next_polls > 0:
            self.fail_next_polls -= 1
            headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
            raise Problem(
                503, "Service Unavailable", "the database is not answering", headers=headers
            )
        headers = {}
        if grant["status"] == "pending_approval" and self.poll_retry_after is not None:
            headers["Retry-After"] = str(self.poll_retry_after)
        return 200, grant, headers

    def _list(self, principal: str, query: dict[str, str]) -> dict[str, Any]:
        statuses = (
            "pending_approval",
            "provisioning",
            "active",
            "revoking",
            "revoked",
            "expired",
            "failed",
            "rejected",
            "denied",
            "approval_expired",
        )
        status = query.get("status")
        if status is not None and status not in statuses:
            raise Problem(
                422,
                "Request Validation Failed",
                "invalid request: query.status",
                errors=[{"field": "query.status", "message": "unknown status"}],
            )
        items = [
            g
            for g in reversed(self.grants.values())
            if (status is None or g["status"] == status)
            and (
                principal == g["requester"]
                or principal in self.admins
                or (
                    g["status"] == "pending_approval"
                    and principal in self.approvers
                    and (self.allow_self_approval or principal != g["requester"])
                )
            )
        ]
        start = next((i + 1 for i, g in enumerate(items) if g["id"] == query.get("cursor")), 0)
        limit = int(query.get("limit") or 50)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {"items": page, "next_cursor": page[-1]["id"] if more and page else None}

    def _decidable(self, principal: str, grant: dict[str, Any]) -> dict[str, Any]:
        approval = grant["approval"]
        if approval is None or principal not in self.approvers:
            raise Problem(
                403,
                "Not an Approver",
                f"{principal} is not an approver of policy {grant['policy']!r}",
            )
        if principal == grant["requester"] and not self.allow_self_approval:
            raise Problem(
                403, "Self-Approval Refused", "the requester cannot approve or deny their own grant"
            )
        if grant["status"] != "pending_approval":
            raise Problem(
                409,
                "Grant Not Pending Approval",
                f"grant {grant['id']!r} is {grant['status']}, not pending_approval",
                slug="grant-not-pending",
                grant_status=grant["status"],
            )
        return dict(approval)

    def _approve(self, principal: str, grant: dict[str, Any], body: Any) -> dict[str, Any]:
        approval = self._decidable(principal, grant)
        if any(entry["approver"] == principal for entry in approval["approvals"]):
            raise Problem(
                409, "Already Decided", f"{principal} already approved grant {grant['id']!r}"
            )
        now = datetime.now(UTC)
        reason = body.get("reason") if isinstance(body, dict) else None
        approval["approvals"] = [
            *approval["approvals"],
            {"approver": principal, "at": _rfc3339(now), "reason": reason},
        ]
        grant["approval"] = approval
        if len(approval["approvals"]) >= approval["required"] and self.provisioning_error:
            # The cluster refused: the approvals stand, the grant is failed with the reason.
            grant.update(
                status="failed", last_error=self.provisioning_error, ended_at=_rfc3339(now)
            )
        elif len(approval["approvals"]) >= approval["required"]:
            grant["status"] = "active"
            grant["expires_at"] = _rfc3339(now + timedelta(seconds=self.ttls[grant["id"]]))
        return grant

    def _deny(self, principal: str, grant: dict[str, Any], body: Any) -> dict[str, Any]:
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip():
            raise Problem(
                422,
                "Request Validation Failed",
                "invalid request: body.reason",
                errors=[{"field": "body.reason", "message": "a reason is required"}],
            )
        approval = self._decidable(principal, grant)
        approval.update(denied_by=principal, denial_reason=reason)
        grant.update(approval=approval, status="denied", ended_at=_rfc3339(datetime.now(UTC)))
        return grant

    def _revoke(self, principal: str, grant: dict[str, Any]) -> dict[str, Any]:
        if principal != grant["requester"] and principal not in self.admins:
            raise Problem(404, "Grant Not Found", f"grant {grant['id']!r} not found")
        if grant["status"] in ("pending_approval", "active"):
            grant.update(status="revoked", ended_at=_rfc3339(datetime.now(UTC)))
        return grant

    def _expire_overdue(self) -> None:
        now = datetime.now(UTC)
        for grant in self.grants.values():
            deadline = (grant["approval"] or {}).get("deadline")
            if (
                grant["status"] == "pending_approval"
                and deadline
                and (datetime.fromisoformat(deadline.replace("Z", "+00:00")) <= now)
            ):
                grant.update(status="approval_expired", ended_at=_rfc3339(now))
