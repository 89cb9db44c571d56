"""Refuses request bodies larger than `max_request_body_bytes` with 413 problem+json.

Every body this API accepts is a small JSON document (a grant request naming 20 pods is under
2 KiB), so a much larger one is a mistake or an attack on memory and CPU (JSON parsing,
validation). Checked in two places, because a client need not announce the size: a
`Content-Length` over the limit is refused before a byte is read, and a body without one
(chunked) is read up to the limit and refused as soon as it passes it. The accepted body is
then replayed to the app unchanged. The default (64 KiB) fits a grant naming a few hundred
pods; `max_request_body_bytes` raises it.

A plain ASGI middleware (like the observability one) so that nothing runs in another task.
"""

from __future__ import annotations

import json
from typing import Final

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, safe_path

MIN_BODY_LIMIT_BYTES: Final = 1024


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < MIN_BODY_LIMIT_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_BODY_LIMIT_BYTES}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # a disconnect: the app learns of it from the replay
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(received, receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body: dict[str, object] = {
            "type": PROBLEM_TYPE_BASE + "content-too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"the request body exceeds the limit of {self.max_bytes} bytes",
        }
        instance = safe_path(Request(scope))
        if instance is not None:
            body["instance"] = instance
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    # The unread rest of the body makes the connection unusable for a next
                    # request; say so rather than let the client find out.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length before we see it
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        # Past the body: a later receive() waits for the disconnect, as the server's would.
        return await receive()

    return replayed
