"""grants.containers: the containers a grant may exec/attach into (the grant guard)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 00:00:00

NULL means every container of the granted pods, which is what grants made before this
revision could reach, so existing rows keep their meaning without a data migration.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("grants", sa.Column("containers", sa.JSON(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("containers")
