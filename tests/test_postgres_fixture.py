"""The PostgreSQL fixture gives each test a real, empty, writable database."""

from __future__ import annotations

import psycopg


def test_postgres_database_is_fresh_and_writable(postgres_url: str) -> None:
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ).fetchone()
        conn.execute("create table probe (id int primary key)")
        conn.execute("insert into probe values (1)")
        (count,) = conn.execute("select count(*) from probe").fetchone() or (0,)
        (version,) = conn.execute("show server_version").fetchone() or ("",)
    assert tables == (0,)
    assert count == 1
    assert version.split(".")[0].isdigit()
