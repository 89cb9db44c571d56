"""Migrations run the way production runs them (`app.db.engine.run_migrations`, i.e. Alembic),
upgrade and downgrade cleanly on both databases, and produce exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from app.db.base import Base
from app.db.engine import downgrade, run_migrations
from app.db.urls import sync_database_url


def _inspect(url: str) -> tuple[set[str], set[str], list[object]]:
    engine = create_engine(sync_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            tables = set(inspector.get_table_names()) - {"alembic_version"}
            indexes = {
                index["name"] or "" for table in tables for index in inspector.get_indexes(table)
            }
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    return tables, indexes, diff


def test_upgrade_downgrade_upgrade_round_trips(database_url: str) -> None:
    run_migrations(database_url)
    tables, indexes, diff = _inspect(database_url)
    assert tables == {"grants", "grant_events", "grant_approvals", "notification_outbox"}
    assert {
        "ix_grants_status_expires_at",
        "ix_grants_status_next_attempt_at",
        "ix_grants_requester_id",
        "ix_grants_namespace",
        "ix_grants_cluster",
        "ix_grant_events_grant_id_id",
        "ix_notification_outbox_target_grant_id_id",
        "ix_notification_outbox_next_attempt_at",
    } <= indexes
    assert diff == [], "the migrated schema differs from app/db/models.py"

    downgrade(database_url, "base")
    tables, indexes, _ = _inspect(database_url)
    assert tables == set()
    assert indexes == set()

    run_migrations(database_url)
    tables, _, diff = _inspect(database_url)
    assert tables == {"grants", "grant_events", "grant_approvals", "notification_outbox"}
    assert diff == []


def test_upgrading_an_up_to_date_database_is_a_no_op(database_url: str) -> None:
    run_migrations(database_url)
    run_migrations(database_url)
    assert _inspect(database_url)[2] == []
