"""Which database failures are outages (503, retry) and which are bugs (500)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from app.db.errors import database_unavailable


class DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver message that names host db.internal and user scangate")
        self.sqlstate = sqlstate


def operational(sqlstate: str | None) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, DriverError(sqlstate))


@pytest.mark.parametrize(
    "error",
    [
        operational(None),  # connection refused or lost, client side
        operational("08006"),  # connection failure
        operational("57P01"),  # admin shutdown
        operational("57P03"),  # cannot connect now (starting up)
        operational("53300"),  # too many connections
        sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")),
        sa_exc.InterfaceError("SELECT 1", {}, DriverError(None)),
        sa_exc.TimeoutError("QueuePool limit reached"),
        sa_exc.DisconnectionError("gone"),
        sa_exc.DBAPIError("SELECT 1", {}, DriverError("XX000"), connection_invalidated=True),
    ],
)
def test_outages_are_unavailable(error: Exception) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        operational("42P01"),  # undefined table: a migration is missing, a bug to fix
        sa_exc.IntegrityError("INSERT", {}, DriverError("23505")),
        sa_exc.ProgrammingError("SELECT", {}, DriverError("42601")),
        sa_exc.DataError("SELECT", {}, DriverError("22003")),
        sa_exc.InvalidRequestError("misuse"),
        ValueError("not a database error"),
    ],
)
def test_bugs_are_not_unavailable(error: Exception) -> None:
    assert not database_unavailable(error)
