"""Grant rows written straight to the database, as a scangate process would have left them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.db.engine import Database
from app.db.models import Grant
from app.grants.clock import utcnow
from app.grants.ids import new_grant_id


def grant_row(**overrides: Any) -> Grant:
    """A grant row as provisioning would write it; override what the test is about."""
    now = utcnow()
    grant_id = overrides.pop("id", None) or new_grant_id()
    values: dict[str, Any] = {
        "id": grant_id,
        "status": "active",
        "cluster": "default",
        "namespace": "payments",
        "scanner": "exec",
        "pods": ["web-0"],
        "selector": None,
        "requester": "apikey:alice",
        "policy": "payments-ci",
        "reason": None,
        "service_account": f"system:serviceaccount:scangate-grants:scangate-{grant_id}",
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(seconds=900),
        "attempts": 0,
    }
    values.update(overrides)
    # A provisioning row is written once: it entered that status when it was created (the
    # provisioning timeout counts from updated_at).
    if "created_at" in overrides and "updated_at" not in overrides:
        values["updated_at"] = values["created_at"]
    return Grant(**values)


async def insert_grants(db: Database, *grants: Grant) -> None:
    """Store grant rows as they are (the service itself creates grants through its writer)."""
    async with db.session() as session:
        session.add_all(grants)
