"""ORM models: grants, their approval decisions and their audit trail.

The tables are created by Alembic (`migrations/versions/`), never by `create_all`; a test
compares this metadata with the migrated schema on SQLite and PostgreSQL so the two cannot drift.

No column ever holds a token or an API key: tokens are minted when a kubeconfig is fetched and
handed straight to the caller, and principals are stored by name (`apikey:NAME`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones and keeps the text of a naive
    datetime. Converting to UTC on the way in (and tagging UTC on the way out) makes both
    return the same aware values and makes SQLite's text comparisons (`expires_at <= :now`)
    order correctly, because every stored value has the same offset and format.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive datetime is a programming error here: its zone is unknowable.
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class GrantStatus(StrEnum):
    """Where a grant is in its life. Stored as its value (a plain string column: no database
    constraint, so adding a status needs no migration)."""

    PROVISIONING = "provisioning"
    ACTIVE = "active"
    REVOKING = "revoking"
    REVOKED = "revoked"
    EXPIRED = "expired"
    # The cluster (or scangate) failed while provisioning: an operator may need to look.
    FAILED = "failed"
    # The request was refused for its own content once the cluster was asked (no such pod or
    # namespace, no Running pod matches, too many pods, a pod without the sidecar): the
    # caller's mistake, kept for the audit trail but left out of default listings.
    REJECTED = "rejected"
    # Approval (a policy's `approval`): the committed request waits for N approvers and has no
    # cluster object yet; the Nth approval moves it to `provisioning`.
    PENDING_APPROVAL = "pending_approval"
    # An approver (or scangate, when no policy allows the request any more) refused it.
    DENIED = "denied"
    # Nobody decided before the request's approval deadline (the reaper ends it).
    APPROVAL_EXPIRED = "approval_expired"


# Every allowed change of status, in one place. Each is a conditional UPDATE in the repository
# (`WHERE status = <from>`), whose affected rows say which of two racing writers won.
TRANSITIONS: Final[dict[GrantStatus, frozenset[GrantStatus]]] = {
    # `revoked`: the requester (or an admin) withdrew the request; nothing to delete.
    GrantStatus.PENDING_APPROVAL: frozenset(
        {
            GrantStatus.PROVISIONING,
            GrantStatus.DENIED,
            GrantStatus.APPROVAL_EXPIRED,
            GrantStatus.REVOKED,
        }
    ),
    GrantStatus.PROVISIONING: frozenset(
        {GrantStatus.ACTIVE, GrantStatus.REVOKING, GrantStatus.FAILED, GrantStatus.REJECTED}
    ),
    GrantStatus.ACTIVE: frozenset({GrantStatus.REVOKING}),
    # `revoking` ends as its `end_status`: revoked (asked for) or expired (the reaper's claim).
    GrantStatus.REVOKING: frozenset({GrantStatus.REVOKED, GrantStatus.EXPIRED}),
    GrantStatus.REVOKED: frozenset(),
    GrantStatus.EXPIRED: frozenset(),
    GrantStatus.FAILED: frozenset(),
    GrantStatus.REJECTED: frozenset(),
    GrantStatus.DENIED: frozenset(),
    GrantStatus.APPROVAL_EXPIRED: frozenset(),
}
# Grants whose objects may exist in the cluster and must stay there. A `pending_approval` grant
# is not among them: it has no object until its Nth approval moves it to `provisioning`.
LIVE_STATUSES: Final = (GrantStatus.PROVISIONING, GrantStatus.ACTIVE, GrantStatus.REVOKING)
# What counts against a policy's `max_active_grants`: every request that holds, or may soon
# hold, access.
COUNTED_STATUSES: Final = (
    GrantStatus.PENDING_APPROVAL,
    GrantStatus.PROVISIONING,
    GrantStatus.ACTIVE,
)


def check_transition(sources: Collection[GrantStatus], target: GrantStatus) -> None:
    """Raise ValueError unless every status in `sources` may become `target` (a bug guard on
    the repository's state changes, checked when each is built)."""
    wrong = [s for s in sources if target not in TRANSITIONS[s]]
    if wrong:
        raise ValueError(f"no transition {', '.join(wrong)} -> {target}")


class GrantStatusType(TypeDecorator[GrantStatus]):
    """The status column: stored as its string value, read back as a GrantStatus."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: GrantStatus | None, dialect: Dialect) -> str | None:
        return None if value is None else GrantStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> GrantStatus | None:
        return None if value is None else GrantStatus(value)


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Grant(Base):
    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    status: Mapped[GrantStatus] = mapped_column(GrantStatusType())
    cluster: Mapped[str] = mapped_column(String(253))
    namespace: Mapped[str] = mapped_column(String(63))
    scanner: Mapped[str] = mapped_column(String(32))
    # Explicit grants: the requested names. Selector grants: the Running pods the selector
    # resolved to at grant time (empty until then) -- exactly the Role's resourceNames.
    pods: Mapped[list[str]] = mapped_column(JSON)
    selector: Mapped[str | None] = mapped_column(Text)
    # The containers exec/attach may reach (the grant guard, app/guard); NULL: all of them.
    containers: Mapped[list[str] | None] = mapped_column(JSON)
    # What an exec/debug grant reaches in each pod beyond the API, read at grant time (pod name ->
    # ServiceAccount, token mounted, Secrets and ConfigMaps as volumes or env). NULL for sidecar
    # grants (they reach no container) and grants made before revision 0003.
    exposure: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    requester: Mapped[str] = mapped_column(String(512))
    policy: Mapped[str] = mapped_column(String(253))
    reason: Mapped[str | None] = mapped_column(Text)
    service_account: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The last change of status (or of the expiry). A `provisioning` grant entered that status
    # then: the reaper's provisioning timeout counts from it, because an approved grant starts
    # provisioning long after its request was made.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Active grants: when access ends. A `pending_approval` grant has no expiry yet (its TTL
    # counts from activation): it holds the latest end possible, approval deadline + TTL.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # Where a `revoking` grant ends: `revoked` (asked for) or `expired` (the reaper's claim).
    end_status: Mapped[GrantStatus | None] = mapped_column(GrantStatusType())
    # Revocation attempts and when the next may start. While an attempt runs, next_attempt_at is
    # its lease: other replicas leave the grant alone until it passes.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The TTL asked for (revision 0004; NULL before). An approved grant's expiry is set from it
    # when the grant becomes active.
    ttl_seconds: Mapped[int | None] = mapped_column(Integer)
    # Approval (app/grants/approvals.py): how many approvers the request needs (NULL: none, the
    # grant was immediate) and until when they may decide.
    approvals_required: Mapped[int | None] = mapped_column(Integer)
    approval_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When an approved grant became active: its renewals' lifetime cap counts from here (NULL:
    # no approval, the grant's life started at created_at).
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The approvals and the denial, oldest first. Never loaded implicitly (an approval grant's
    # readers load them: `repository.load_decisions`); a grant without approval has none.
    decisions: Mapped[list[GrantDecision]] = relationship(
        lazy="raise", passive_deletes=True, order_by="GrantDecision.id"
    )

    __table_args__ = (
        Index("ix_grants_status_expires_at", "status", "expires_at"),
        Index("ix_grants_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_grants_status_updated_at", "status", "updated_at"),
        Index("ix_grants_status_approval_deadline", "status", "approval_deadline"),
        Index("ix_grants_requester_id", "requester", "id"),
        Index("ix_grants_namespace", "namespace"),
        Index("ix_grants_cluster", "cluster"),
    )


class GrantEvent(Base):
    __tablename__ = "grant_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_grant_events_grant_id_id", "grant_id", "id"),)


class Verdict(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"


class GrantDecision(Base):
    """One approver's decision on a `pending_approval` grant. An approver decides once per
    grant (the unique constraint is what makes a repeated or racing second approval by the
    same approver fail)."""

    __tablename__ = "grant_approvals"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"))
    approver: Mapped[str] = mapped_column(String(512))
    verdict: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("grant_id", "approver", name="uq_grant_approvals_grant_id_approver"),
    )


class NotificationOutbox(Base):
    """Grant events waiting to be POSTed to a notification target (app/notifications): one row
    per event and target that wants it, written in the event's own transaction and deleted once
    delivered (or given up). Delivery order is per (target, grant): a row is sent only once no
    older row of its grant for its target remains."""

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(63))
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(
        EventId, ForeignKey("grant_events.id", ondelete="CASCADE")
    )
    # The notification event name (`active`), not the audit type (`activated`).
    event: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the next attempt may start; while one runs, its lease (other replicas wait).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Why the last attempt failed (an HTTP status or a connection error; never a secret).
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_notification_outbox_target_grant_id_id", "target", "grant_id", "id"),
        Index("ix_notification_outbox_next_attempt_at", "next_attempt_at"),
    )
