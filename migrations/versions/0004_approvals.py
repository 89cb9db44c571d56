"""approvals: grant_approvals, and what a grant needs to wait for its approvers

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:00:00

- grants.ttl_seconds: the TTL asked for (an approved grant's expiry is set from it when it
  becomes active); approvals_required and approval_deadline (NULL: no approval);
  activated_at (an approved grant's activation: its lifetime cap counts from there).
  Existing grants keep NULL in all four: they were immediate.
- grant_approvals: one row per approver decision (approved or denied), unique per grant and
  approver.
- The provisioning timeout counts from updated_at (when a grant entered `provisioning`), no
  longer from created_at: (status, created_at) is replaced by (status, updated_at), and
  (status, approval_deadline) serves the reaper's approval timeouts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DATETIME = sa.DateTime(timezone=True)
_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("grants", sa.Column("ttl_seconds", sa.Integer(), nullable=True))
    op.add_column("grants", sa.Column("approvals_required", sa.Integer(), nullable=True))
    op.add_column("grants", sa.Column("approval_deadline", _DATETIME, nullable=True))
    op.add_column("grants", sa.Column("activated_at", _DATETIME, nullable=True))
    op.create_index("ix_grants_status_updated_at", "grants", ["status", "updated_at"])
    op.create_index("ix_grants_status_approval_deadline", "grants", ["status", "approval_deadline"])
    op.drop_index("ix_grants_status_created_at", table_name="grants")
    op.create_table(
        "grant_approvals",
        sa.Column("id", _EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("grant_id", sa.String(26), nullable=False),
        sa.Column("approver", sa.String(512), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("at", _DATETIME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grants.id"],
            name="fk_grant_approvals_grant_id_grants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_grant_approvals"),
        sa.UniqueConstraint("grant_id", "approver", name="uq_grant_approvals_grant_id_approver"),
    )


def downgrade() -> None:
    op.drop_table("grant_approvals")
    op.create_index("ix_grants_status_created_at", "grants", ["status", "created_at"])
    op.drop_index("ix_grants_status_approval_deadline", table_name="grants")
    op.drop_index("ix_grants_status_updated_at", table_name="grants")
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("activated_at")
        batch.drop_column("approval_deadline")
        batch.drop_column("approvals_required")
        batch.drop_column("ttl_seconds")
