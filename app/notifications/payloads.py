"""What a receiver gets: the body of one notification, as CloudEvents 1.0 structured JSON or as
a Slack incoming-webhook message, and its signature headers.

Bodies carry the grant's descriptive fields and the audit event (actor, time, detail), never a
credential: tokens are not stored anywhere, and the audit detail is the same the API lists to
admins (an exec's argv already has credentials masked).

Signature: `Scangate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed
with the target's secret. The timestamp lets a receiver refuse replays of an old body; the
README shows the check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from app.rfc3339 import format_rfc3339

CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json"
JSON_CONTENT_TYPE: Final = "application/json"
EVENT_TYPE_PREFIX: Final = "dev.scangate.grant."
SIGNATURE_HEADER: Final = "Scangate-Signature"

# The grant's fields a notification carries (the API's grant JSON, less what is not stable).
_GRANT_FIELDS: Final = (
    "id", "cluster", "namespace", "scanner", "pods", "selector", "containers", "requester",
    "policy", "reason", "service_account",
)  # fmt: skip
_GRANT_TIMES: Final = ("created_at", "expires_at")


@dataclass(frozen=True)
class Notification:
    """One outbox row ready to send: its event and its grant as they are in the database."""

    target: str
    event: str  # the notification event name (`active`)
    event_id: int
    audit_type: str
    actor: str
    at: datetime
    detail: dict[str, Any]
    grant: dict[str, Any]

    @property
    def grant_id(self) -> str:
        return str(self.grant["id"])

    @property
    def delivery_id(self) -> str:
        """Stable for this event and target, so a receiver can drop a redelivery: the same on
        every attempt, replica and restart."""
        return f"{self.grant_id}-{self.event_id}-{self.target}"


def grant_fields(grant: Any) -> dict[str, Any]:
    """The notification's view of a grant (an ORM `Grant`)."""
    fields = {name: getattr(grant, name) for name in _GRANT_FIELDS}
    for name in _GRANT_TIMES:
        fields[name] = format_rfc3339(getattr(grant, name))
    return fields


def _data(notification: Notification) -> dict[str, Any]:
    return {
        "event": notification.event,
        "grant": notification.grant,
        "audit_event": {
            "id": notification.event_id,
            "type": notification.audit_type,
            "actor": notification.actor,
            "at": format_rfc3339(notification.at),
            "detail": notification.detail,
        },
    }


def cloudevent(notification: Notification, *, source: str) -> dict[str, Any]:
    """CloudEvents 1.0, structured content mode (the attributes and `data` in one JSON)."""
    return {
        "specversion": "1.0",
        "id": notification.delivery_id,
        "source": source,
        "type": EVENT_TYPE_PREFIX + notification.event,
        "time": format_rfc3339(notification.at),
        "subject": notification.grant_id,
        "datacontenttype": JSON_CONTENT_TYPE,
        "data": _data(notification),
    }


_HEADLINES: Final = {
    "requested": "requested access",
    "approval_needed": "needs approval",
    "approved": "was approved",
    "denied": "was denied",
    "approval_expired": "was not approved in time",
    "active": "is active",
    "renewed": "was renewed",
    "revoked": "was revoked",
    "expired": "expired",
    "failed": "failed",
    "rejected": "was rejected",
    "revocation_failed": "could not be revoked yet (retrying)",
    "kubeconfig_issued": "credentials were fetched",
    "guard_refused": "was refused by the grant guard",
}


def _escape(text: str) -> str:
    # Slack reads <...> as links and mentions (`<!channel>`) and & as an entity: a reason typed
    # by a requester must stay text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(notification: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (notifications, fallback) and blocks."""
    grant = notification.grant
    grant_id = notification.grant_id
    headline = _HEADLINES.get(notification.event, notification.event)
    text = _escape(
        f"scangate grant {grant_id} {headline}: {grant['scanner']} on "
        f"{grant['cluster']}/{grant['namespace']} for {grant['requester']}"
    )
    facts = [
        f"*Pods:* {_escape(', '.join(grant['pods']) or grant.get('selector') or '-')}",
        f"*Policy:* {_escape(str(grant['policy']))}",
        f"*By:* {_escape(notification.actor)}",
    ]
    why = notification.detail.get("reason") or grant.get("reason")
    if why:
        facts.append(f"*Reason:* {_escape(str(why))}")
    if notification.event in ("expired", "active", "renewed"):
        facts.append(f"*Expires:* {grant['expires_at']}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)}},
    ]
    if notification.event == "approval_needed":
        commands = f"scangate grant approve {grant_id}\nscangate grant deny {grant_id}"
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"To decide:\n```{commands}```"},
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{notification.event} · {format_rfc3339(notification.at)} · "
                    f"event {notification.delivery_id}",
                }
            ],
        }
    )
    return {"text": text, "blocks": blocks}


def render(notification: Notification, *, format: str, source: str) -> tuple[bytes, str]:
    """The body and its content type."""
    if format == "slack":
        document, content_type = slack_message(notification), JSON_CONTENT_TYPE
    else:
        document, content_type = cloudevent(notification, source=source), CLOUDEVENTS_CONTENT_TYPE
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return body, content_type


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The `Scangate-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
