"""Alembic environment for scangate.

Sync on purpose: migrations are short, run once at deploy/start time, and a sync driver
(pysqlite, psycopg) keeps this file free of event-loop plumbing. The URL comes from the Alembic
config's `sqlalchemy.url` (set by `app.db.engine.run_migrations`, or an alembic.ini); async
spellings such as `sqlite+aiosqlite://` are mapped to their sync driver. A caller that already
holds a connection can pass it as `config.attributes["connection"]`.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool

import app.db.models  # noqa: F401  (registers the tables on Base.metadata)
from app.db.base import Base
from app.db.urls import is_sqlite, sync_database_url

config = context.config
target_metadata = Base.metadata

# Only the `alembic` command line has an ini file; `scangate migrate` builds its config in code
# and must not have its process's logging reconfigured.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead, so later
        # revisions written once work on both databases.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = sync_database_url(config.get_main_option("sqlalchemy.url") or "")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=is_sqlite(url),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _configure(given)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set in the Alembic config")
    # NullPool: a migration run must not leave pooled connections behind in a long-lived
    # process (`scangate serve` migrates, then serves with its own engine).
    engine = create_engine(sync_database_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
