"""grants and grant events

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

Written by hand rather than generated from the models so that it stays what it was when it
shipped; a test checks that migrating to head yields exactly the models' schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cluster", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("scanner", sa.String(32), nullable=False),
        sa.Column("pods", sa.JSON(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("requester", sa.String(512), nullable=False),
        sa.Column("policy", sa.String(253), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("service_account", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("end_status", sa.String(16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_grants"),
    )
    # The reaper's three queries: due expiries, due revocation retries, stale provisioning.
    op.create_index("ix_grants_status_expires_at", "grants", ["status", "expires_at"])
    op.create_index("ix_grants_status_next_attempt_at", "grants", ["status", "next_attempt_at"])
    op.create_index("ix_grants_status_created_at", "grants", ["status", "created_at"])
    # Listing: a caller's own grants newest first (cursor on id), and the filters.
    op.create_index("ix_grants_requester_id", "grants", ["requester", "id"])
    op.create_index("ix_grants_namespace", "grants", ["namespace"])
    op.create_index("ix_grants_cluster", "grants", ["cluster"])

    op.create_table(
        "grant_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("grant_id", sa.String(26), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(512), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grants.id"],
            name="fk_grant_events_grant_id_grants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_grant_events"),
    )
    op.create_index("ix_grant_events_grant_id_id", "grant_events", ["grant_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_grant_events_grant_id_id", table_name="grant_events")
    op.drop_table("grant_events")
    for name in (
        "ix_grants_cluster",
        "ix_grants_namespace",
        "ix_grants_requester_id",
        "ix_grants_status_created_at",
        "ix_grants_status_next_attempt_at",
        "ix_grants_status_expires_at",
    ):
        op.drop_index(name, table_name="grants")
    op.drop_table("grants")
