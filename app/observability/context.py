"""What the current request is about: its id, and the grant it touched.

A `ContextVar` holds one mutable `RequestContext` per request. It is mutable on purpose: code
deep inside a request (the audit hook, which learns the id of a grant just created) fills it in,
and the middleware reads it after the response. The object is shared even where asyncio or a
thread pool copied the context, so nothing noted is lost on the way back up.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass
class RequestContext:
    request_id: str
    grant_id: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("scangate_request", default=None)


def current_request_id() -> str | None:
    context = _current.get()
    return context.request_id if context is not None else None


def note_grant(grant_id: str) -> None:
    """Tell the access record which grant this request acted on (the first one it touched)."""
    context = _current.get()
    if context is not None and context.grant_id is None:
        context.grant_id = grant_id


RequestToken = Token[RequestContext | None]


def enter_request(context: RequestContext) -> RequestToken:
    """Make `context` current; returns the token `leave_request` needs."""
    return _current.set(context)


def leave_request(token: RequestToken) -> None:
    _current.reset(token)
