"""Examples of the grants API's requests and responses, shown in /docs and /redoc.

Kept apart from the schemas so the models stay readable; a test checks that every request and
response in the OpenAPI document has one, and the request examples are valid requests.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi.openapi.models import Example

GRANT_ID: Final = "01jbq3z5ksxn2m8d7c4v6w9e0r"

GRANT: Final[dict[str, Any]] = {
    "id": GRANT_ID,
    "status": "active",
    "cluster": "default",
    "namespace": "payments",
    "scanner": "exec",
    "pods": ["web-0", "web-1"],
    "selector": None,
    "containers": None,
    "exposure": {
        pod: {
            "service_account": "web",
            "automount_service_account_token": None,
            "service_account_token": True,
            "secret_volumes": ["web-tls"],
            "secret_env": {"app": ["db-credentials"]},
            "configmap_volumes": [],
            "configmap_env": {},
        }
        for pod in ("web-0", "web-1")
    },
    "requester": "apikey:ci-payments",
    "policy": "payments-ci",
    "reason": "nightly CIS scan",
    "service_account": f"system:serviceaccount:scangate-grants:scangate-{GRANT_ID}",
    "created_at": "2025-01-31T12:00:00.123Z",
    "expires_at": "2025-01-31T12:15:00.123Z",
    "ended_at": None,
    "last_error": None,
    "approval": None,
}

# A request under a policy with `approval` (the 202 answer): nothing exists in the cluster yet,
# and `expires_at` is the latest end possible (deadline + TTL) until the grant is activated.
PENDING_GRANT: Final[dict[str, Any]] = GRANT | {
    "status": "pending_approval",
    "pods": ["web-0", "web-1"],
    "exposure": None,
    "expires_at": "2025-01-31T13:15:00.123Z",
    "approval": {
        "required": 2,
        "approvals": [
            {"approver": "apikey:sec-oncall", "at": "2025-01-31T12:03:10.000Z", "reason": None}
        ],
        "deadline": "2025-01-31T13:00:00.123Z",
        "denied_by": None,
        "denial_reason": None,
    },
}

EVENT: Final[dict[str, Any]] = {
    "id": 41,
    "grant_id": GRANT_ID,
    "at": "2025-01-31T12:00:00.456Z",
    "actor": "apikey:ci-payments",
    "type": "activated",
    "detail": {"pods": ["web-0", "web-1"], "expires_at": "2025-01-31T12:15:00.123Z"},
}

CREATE: Final[dict[str, Example]] = {
    "pods": Example(
        summary="Named pods",
        description="Exec access to two pods for 15 minutes.",
        value={
            "namespace": "payments",
            "pods": ["web-0", "web-1"],
            "scanner": "exec",
            "ttl_seconds": 900,
            "reason": "nightly CIS scan",
        },
    ),
    "selector": Example(
        summary="Label selector",
        description="Resolved once, now, to the Running pods that match; pods started later "
        "are not covered.",
        value={
            "namespace": "payments",
            "selector": "app=web,tier=frontend",
            "scanner": "debug",
            "ttl_seconds": 600,
        },
    ),
}

APPROVE: Final[dict[str, Example]] = {
    "reason": Example(summary="With a reason", value={"reason": "change CHG-1234 approved"}),
}
DENY: Final[dict[str, Example]] = {
    "reason": Example(summary="A denial", value={"reason": "no change ticket for this scan"}),
}

RENEW: Final[dict[str, Example]] = {
    "renew": Example(summary="Ten more minutes from now", value={"ttl_seconds": 600}),
}

REVOKE: Final[dict[str, Example]] = {
    "revoke": Example(summary="Scan finished", value={"reason": "scan finished"}),
}

KUBECONFIG_JSON: Final[dict[str, Any]] = {
    "apiVersion": "v1",
    "kind": "Config",
    "preferences": {},
    "clusters": [
        {
            "name": "default",
            "cluster": {
                "server": "https://kubernetes.example.com:6443",
                "certificate-authority-data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t...",
            },
        }
    ],
    "users": [{"name": f"scangate-{GRANT_ID}", "user": {"token": "<short-lived token>"}}],
    "contexts": [
        {
            "name": f"scangate-{GRANT_ID}",
            "context": {
                "cluster": "default",
                "user": f"scangate-{GRANT_ID}",
                "namespace": "payments",
            },
        }
    ],
    "current-context": f"scangate-{GRANT_ID}",
}

KUBECONFIG_YAML: Final = f"""\
apiVersion: v1
kind: Config
preferences: {{}}
clusters:
- name: default
  cluster:
    server: https://kubernetes.example.com:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t...
users:
- name: scangate-{GRANT_ID}
  user:
    token: <short-lived token>
contexts:
- name: scangate-{GRANT_ID}
  context:
    cluster: default
    user: scangate-{GRANT_ID}
    namespace: payments
current-context: scangate-{GRANT_ID}
"""
