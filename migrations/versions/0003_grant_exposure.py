"""grants.exposure: what an exec/debug grant reaches in its pods beyond the Kubernetes API

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 16:00:00

Pod name -> its ServiceAccount, whether that account's token is mounted, and the Secrets and
ConfigMaps mounted as volumes or read by env/envFrom, recorded when the grant is made. NULL for
sidecar grants (they reach no container) and for grants made before this revision, whose pods
were never read for it: no data migration could know what they exposed then.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("grants", sa.Column("exposure", sa.JSON(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("exposure")
