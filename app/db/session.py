"""The request-scoped session: the one transaction owner of an HTTP request.

Endpoints take `session: SessionDep`. The session commits after the endpoint returns and
*before* the response is sent (dependency scope "function"), so a 201 is only ever sent for
committed state; any exception rolls everything back and then reaches the error handler.
Services never call `commit()` themselves (the grant lifecycle's `provisioning` row is the one
documented exception and uses its own unit of work).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import Database


def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).session() as session:
        yield session


DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
