"""The HTTP edge: reading ASGI requests, decoding bodies, writing responses.

kubesim speaks JSON (and accepts YAML bodies, as the apiserver does). Protobuf bodies get a 415,
which is what a client that insists on protobuf must be able to cope with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

import yaml

from kubesim import errors, protobuf
from kubesim.errors import ApiError
from kubesim.patch import PATCH_TYPES

JSON: Final = "application/json"
_BODY_TYPES: Final = ("application/json", "application/yaml")
_MAX_BODY: Final = 3 * 1024 * 1024  # etcd's default request limit is about this size


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    # Every header line, for headers that may repeat (Impersonate-Group).
    header_lines: list[tuple[str, str]] = field(default_factory=list)
    # Every query parameter, blanks included: exec's `command` repeats (one per argv element,
    # and an empty argument is a real one).
    query_lines: list[tuple[str, str]] = field(default_factory=list)
    # A WebSocket upgrade (ASGI "websocket" scope) and the subprotocols the client offered.
    websocket: bool = False
    subprotocols: list[str] = field(default_factory=list)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.header_lines if k == name]

    def query_values(self, name: str) -> list[str]:
        return [v for k, v in self.query_lines if k == name]

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def wants_table(self) -> bool:
        """kubectl get asks for server-side printing with `as=Table` in Accept."""
        return "as=table" in self.headers.get("accept", "").lower().replace(" ", "")

    def decode_body(self) -> Any:
        """The body of a create/update request (JSON or YAML)."""
        kind = self.content_type or JSON
        if kind == protobuf.PROTOBUF:
            return protobuf.decode_body(self.body)
        if kind not in _BODY_TYPES:
            raise errors.unsupported_media_type(", ".join(_BODY_TYPES))
        return _parse(self.body, yaml_allowed=kind == "application/yaml")

    def decode_patch(self) -> tuple[str, Any]:
        kind = self.content_type
        if kind not in PATCH_TYPES:
            raise errors.unsupported_media_type(", ".join(PATCH_TYPES))
        return kind, _parse(self.body, yaml_allowed=kind.endswith("yaml"))

    def decode_optional_body(self) -> Any:
        """DELETE bodies (DeleteOptions) are optional."""
        return self.decode_body() if self.body.strip() else None


def _parse(body: bytes, yaml_allowed: bool) -> Any:
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    try:
        return json.loads(body)
    except ValueError:
        if not yaml_allowed:
            raise errors.bad_request("the body of the request is not valid JSON") from None
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"the body of the request is not valid YAML: {exc}") from None


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return Response(status, body, JSON, headers or {})


def warning_headers(warnings: list[str]) -> dict[str, str]:
    """The `Warning` header of an answer (RFC 7234 code 299, no agent, as the apiserver
    writes it; several warnings share one header, comma-separated)."""
    return {"Warning": warning_header(warnings)} if warnings else {}


def warning_header(warnings: list[str]) -> str:
    """`Warning` values as kube-apiserver sends them (`299 - "text"`), joined: client-go and
    kubectl read several comma-separated warnings from one header."""
    quoted = []
    for text in warnings:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        quoted.append(f'299 - "{escaped}"')
    return ", ".join(quoted)


def status_response(error: ApiError) -> Response:
    return json_response(error.status(), error.code, error.headers)


def request_from_scope(scope: dict[str, Any], body: bytes = b"") -> Request:
    lines = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    query_string = scope.get("query_string", b"").decode("latin-1")
    query = dict(parse_qsl(query_string))
    query_lines = parse_qsl(query_string, keep_blank_values=True)
    method = scope.get("method", "GET")  # WebSocket upgrades are GETs
    websocket = scope.get("type") == "websocket"
    return Request(
        method,
        scope["path"],
        query,
        dict(lines),
        body,
        lines,
        query_lines,
        websocket,
        list(scope.get("subprotocols") or []) if websocket else [],
    )


async def read_request(scope: dict[str, Any], receive: Any) -> Request:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    request = request_from_scope(scope, b"".join(chunks))
    if size > _MAX_BODY:
        raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
    return request


async def send_response(send: Any, response: Response) -> None:
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        (b"cache-control", b"no-cache, private"),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
