"""`GET /v1/events?since=...&limit=...&cursor=...`: the audit feed for admins.

The feed is ordered by event id and the cursor is the last id a page returned, so an exporter
that stores the cursor and polls with it never misses or repeats an event. One race needs care:
on PostgreSQL ids are handed out when an event is inserted but become visible when its
transaction commits, so a page could show id 11 while id 10 is still uncommitted and skip it
forever. Events therefore enter the feed only once they are `SETTLE_SECONDS` old; scangate's
transactions that write events are a few statements long, far shorter than that. (This relies
on replicas' clocks agreeing to well under the window, as NTP provides.)
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.auth import AdminDep
from app.docs.openapi import problem_responses
from app.errors import UnprocessableError
from app.grants.clock import utcnow
from app.grants.schemas import GrantEventOut
from app.services import ServicesDep

SETTLE_SECONDS: Final = 2.0
MAX_LIMIT: Final = 1000
MAX_EVENT_ID: Final = 2**63 - 1  # event ids are BIGINT

router = APIRouter(prefix="/v1", tags=["audit"])


class EventPage(BaseModel):
    """One page of the audit feed, oldest event first."""

    items: list[GrantEventOut] = Field(description="Events in id order (the order they happened).")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to continue after this page. Also given when the page is "
        "empty but a cursor was sent, so an exporter can keep polling with it; null only when "
        "nothing has been read yet."
    )
    has_more: bool = Field(description="Whether more events are available right now.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 41,
                            "grant_id": "01jbq3z5ksxn2m8d7c4v6w9e0r",
                            "at": "2025-01-31T12:00:00.123Z",
                            "actor": "apikey:ci-payments",
                            "type": "activated",
                            "detail": {
                                "pods": ["web-0"],
                                "expires_at": "2025-01-31T12:15:00.123Z",
                            },
                        }
                    ],
                    "next_cursor": "41",
                    "has_more": False,
                }
            ]
        }
    )


@router.get(
    "/events",
    response_model=EventPage,
    summary="Export the audit trail of every grant (admins)",
    response_description="Events after the cursor (and at or after `since`), oldest first.",
    responses=problem_responses(403, 422, _403="The caller is not an admin."),
)
async def list_events(
    principal: AdminDep,
    services: ServicesDep,
    since: Annotated[
        AwareDatetime | None,
        Query(
            description="Only events at or after this RFC 3339 time (with a zone, e.g. `Z`).",
            examples=["2025-01-31T00:00:00Z"],
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Events per page (at most 1000).")
    ] = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,19}$",
            description="The `next_cursor` of the previous page.",
            examples=["41"],
        ),
    ] = None,
) -> EventPage:
    """Every grant event of every principal, for export to a SIEM or archive: requests,
    activations, kubeconfig fetches, renewals, revocations, expiries and failures. Events appear
    here a couple of seconds after they happen (see `next_cursor` for polling)."""
    if since is not None:
        try:
            # Stored times are UTC; an offset at the edge of the calendar (9999-12-31T23:59-14:00)
            # has no UTC equivalent and must be the caller's error, not the database's.
            since = since.astimezone(UTC)
        except OverflowError:
            raise UnprocessableError("since is out of range", field="query.since") from None
    after_id = int(cursor) if cursor is not None else None
    if after_id is not None and after_id > MAX_EVENT_ID:
        raise UnprocessableError("not a cursor returned by this API", field="query.cursor")
    events = await services.grants.list_all_events(
        since=since,
        after_id=after_id,
        settled_before=utcnow() - timedelta(seconds=SETTLE_SECONDS),
        limit=limit + 1,
    )
    page = events[:limit]
    next_cursor = str(page[-1].id) if page else cursor
    return EventPage(
        items=[GrantEventOut.of(e) for e in page],
        next_cursor=next_cursor,
        has_more=len(events) > limit,
    )
