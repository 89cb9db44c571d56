"""The one error handler: every failure is RFC 9457 problem+json, validation errors name the
field, submitted values and credentials are never reflected, and bugs stay 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from app.errors import (
    ConflictError,
    NotFoundError,
    Unauthorized,
    UnprocessableError,
    UpstreamUnavailable,
    install_error_handlers,
)
from app.kube.errors import KubeForbidden, KubeNotFound, KubeUnavailable
from app.main import create_app
from app.settings import load_settings

PROBLEM = "application/problem+json"
SECRET = "sg_DoNotReflectThisKey1234567890abcdefghij"


class GrantNotFound(NotFoundError):
    title = "Grant Not Found"
    type_slug = "grant-not-found"


class Body(BaseModel):
    namespace: str
    ttl_seconds: int = Field(default=900, ge=30)
    pods: list[str] = Field(default_factory=list, max_length=2)


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/grants/{grant_id}")
    async def get_grant(grant_id: str) -> None:
        raise GrantNotFound(f"grant {grant_id} not found")

    @app.post("/grants")
    async def create(body: Body, limit: int = Query(default=10, le=100)) -> dict[str, str]:
        return {"namespace": body.namespace}

    @app.get("/pods")
    async def pods() -> None:
        raise UnprocessableError(
            "pods not found: web-9", field="body.pods", missing=["web-9"], status=200
        )

    @app.get("/conflict")
    async def conflict() -> None:
        raise ConflictError("grant is revoking")

    @app.get("/down")
    async def down() -> None:
        raise UpstreamUnavailable("cluster default is unreachable", retry_after=2.2)

    @app.get("/login")
    async def login() -> None:
        raise Unauthorized("invalid credentials", error="invalid_token")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError(f"internal state leaked: {SECRET}")

    @app.get("/kube/forbidden")
    async def kube_forbidden() -> None:
        raise KubeForbidden(
            "cluster default refused",
            permission='create roles.rbac.authorization.k8s.io in namespace "payments"',
        )

    @app.get("/kube/unavailable")
    async def kube_unavailable() -> None:
        raise KubeUnavailable("cluster default is unreachable", retry_after=7)

    @app.get("/kube/notfound")
    async def kube_not_found() -> None:
        raise KubeNotFound("serviceaccount scangate-x not found")

    return app


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: see the 500 response a caller gets instead of the exception.
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://scangate") as http:
        yield http


async def test_domain_error_is_a_problem_with_its_own_type(client: httpx.AsyncClient) -> None:
    response = await client.get("/grants/abc")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "https://scangate.dev/problems/grant-not-found",
        "title": "Grant Not Found",
        "status": 404,
        "detail": "grant abc not found",
        "instance": "/grants/abc",
    }


async def test_field_and_extension_members_never_override_standard_ones(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/pods")).json()

    assert body["status"] == 422  # the `status=200` extra could not overwrite it
    assert body["missing"] == ["web-9"]
    assert body["errors"] == [{"field": "body.pods", "message": "pods not found: web-9"}]


async def test_validation_errors_name_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/grants?limit=1000", json={"ttl_seconds": 5, "pods": ["a", "b", "c"]}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://scangate.dev/problems/validation"
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"body.namespace", "body.ttl_seconds", "body.pods", "query.limit"}
    assert "body.ttl_seconds" in body["detail"]
    ttl_error = next(e for e in body["errors"] if e["field"] == "body.ttl_seconds")
    assert "30" in ttl_error["message"]


async def test_validation_errors_never_echo_submitted_values(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/grants",
        json={"namespace": "payments", "ttl_seconds": SECRET, "pods": [SECRET, SECRET, SECRET]},
        headers={"Authorization": f"Bearer {SECRET}"},
    )

    assert response.status_code == 422
    assert SECRET not in response.text
    assert {e["field"] for e in response.json()["errors"]} == {"body.ttl_seconds", "body.pods"}


async def test_malformed_json_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/grants",
        content=b'{"namespace": "' + SECRET.encode(),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert SECRET not in response.text


async def test_unauthorized_carries_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/login")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="scangate", error="invalid_token"'
    assert response.json()["type"] == "https://scangate.dev/problems/unauthorized"


async def test_unavailable_rounds_retry_after_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/down")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert response.json()["detail"] == "cluster default is unreachable"


async def test_conflict_is_409_problem(client: httpx.AsyncClient) -> None:
    body = (await client.get("/conflict")).json()

    assert (body["status"], body["title"]) == (409, "Conflict")


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    wrong_method = await client.delete("/grants/abc")

    assert missing.headers["content-type"] == PROBLEM
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
        "instance": "/nowhere",
    }
    assert wrong_method.status_code == 405
    assert wrong_method.json()["title"] == "Method Not Allowed"


async def test_bug_is_a_500_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/bug")

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://scangate.dev/problems/internal"
    assert SECRET not in response.text
    assert "RuntimeError" not in response.text


async def test_untranslated_kube_forbidden_names_the_missing_permission(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/kube/forbidden")

    assert response.status_code == 502
    body = response.json()
    assert body["type"] == "https://scangate.dev/problems/upstream-forbidden"
    assert body["permission"] == 'create roles.rbac.authorization.k8s.io in namespace "payments"'


async def test_untranslated_kube_unavailable_is_503_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/kube/unavailable")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


async def test_other_kube_errors_reaching_the_handler_are_bugs(client: httpx.AsyncClient) -> None:
    response = await client.get("/kube/notfound")

    assert response.status_code == 500
    assert "scangate-x" not in response.text


async def test_unparsable_json_says_where_and_what_to_send(client: httpx.AsyncClient) -> None:
    document = '{\n  "namespace": "payments",\n  "pods": [web-0]\n}'

    response = await client.post(
        "/grants", content=document, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    # Line 3 is `  "pods": [web-0]`; the first bad character is the `w`, column 12.
    assert problem["detail"] == (
        "the request body is not valid JSON: Expecting value at line 3, column 12; "
        "send a JSON object with the header Content-Type: application/json"
    )
    assert problem["errors"] == [
        {"field": "body", "message": problem["detail"], "type": "body_not_json"}
    ]


async def test_unparsable_json_never_echoes_the_document(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/grants",
        content=b'{"namespace": "' + SECRET.encode(),
        headers={"content-type": "application/json"},
    )

    assert "Unterminated string starting at line 1, column 15;" in response.json()["detail"]
    assert SECRET not in response.text


@pytest.mark.parametrize(
    ("headers", "sent"),
    [
        (
            {"content-type": "application/x-www-form-urlencoded"},
            "as application/x-www-form-urlencoded",
        ),
        ({"content-type": "text/plain; charset=utf-8"}, "as text/plain"),
        ({}, "without a Content-Type header"),
        ({"content-type": f"text/{SECRET}"}, "as another type"),
    ],
)
async def test_body_not_sent_as_json_says_to_send_application_json(
    client: httpx.AsyncClient, headers: dict[str, str], sent: str
) -> None:
    # What `curl -d '{...}'` sends when the Content-Type header is forgotten.
    response = await client.post("/grants", content=b'{"namespace": "payments"}', headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"the request body was sent {sent}; "
        "send a JSON object with the header Content-Type: application/json"
    )
    assert SECRET not in response.text


async def test_a_json_body_that_fails_validation_still_names_its_fields(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/grants", json={"ttl_seconds": 5}, headers={"content-type": "application/json"}
    )

    assert response.json()["detail"] == "invalid request: body.namespace, body.ttl_seconds"


@pytest.fixture
async def scangate_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """scangate's real routes (routing answers 405 before any dependency or the lifespan)."""
    config = tmp_path / "scangate.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path / 'unused.db'}\n")
    settings = load_settings(config)
    transport = httpx.ASGITransport(app=create_app(settings, start_reaper=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://scangate") as http:
        yield http


@pytest.mark.parametrize(
    ("method", "path", "allow", "hint"),
    [
        ("DELETE", "/v1/grants/01abc", "GET", "use POST /v1/grants/{grant_id}/revoke"),
        ("PATCH", "/v1/grants/01abc", "GET", "use POST /v1/grants/{grant_id}/renew"),
        ("DELETE", "/v1/grants", "GET, POST", "use POST /v1/grants/{grant_id}/revoke"),
        ("GET", "/v1/grants/01abc/revoke", "POST", None),
    ],
)
async def test_wrong_method_names_the_allowed_ones_and_the_right_endpoint(
    scangate_client: httpx.AsyncClient, method: str, path: str, allow: str, hint: str | None
) -> None:
    response = await scangate_client.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == PROBLEM
    detail = response.json()["detail"]
    assert detail.startswith(f"{method} is not allowed on /v1/grants")
    assert f"allowed: {allow}" in detail
    if hint is not None:
        assert detail.endswith(hint)
