"""notification_outbox: grant events waiting to be POSTed to notification targets

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:00:00

One row per event and target that wants it, written in the same transaction as the event
(app/notifications); delivered rows are deleted. Self-contained: it only adds a table, so it
may be re-chained after other revisions without change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("target", sa.String(63), nullable=False),
        sa.Column("grant_id", sa.String(26), nullable=False),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grants.id"],
            name="fk_notification_outbox_grant_id_grants",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["grant_events.id"],
            name="fk_notification_outbox_event_id_grant_events",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notification_outbox"),
    )
    # The head of each (target, grant) queue: no older row of the same pair remains.
    op.create_index(
        "ix_notification_outbox_target_grant_id_id",
        "notification_outbox",
        ["target", "grant_id", "id"],
    )
    # Due rows.
    op.create_index(
        "ix_notification_outbox_next_attempt_at", "notification_outbox", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_next_attempt_at", table_name="notification_outbox")
    op.drop_index("ix_notification_outbox_target_grant_id_id", table_name="notification_outbox")
    op.drop_table("notification_outbox")
