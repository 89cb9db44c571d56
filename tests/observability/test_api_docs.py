"""/docs and /redoc are served from files inside the package, and the OpenAPI document describes
every operation, request and response, with examples, problem+json errors and the bearer scheme.
(tests/browser renders the pages in a real browser.)"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.docs.pages import ASSETS_DIR
from app.main import create_app
from app.settings import load_settings

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    # No lifespan needed: the pages and the OpenAPI document depend on the routes only.
    config = tmp_path / "scangate.yaml"
    config.write_text("{}\n")
    return create_app(load_settings(config))


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://scangate.test") as client:
        yield client


def local_references(page: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url|data-openapi-url)="([^"]+)"', page)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_assets_served_by_scangate(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = local_references(response.text)
    assert references, "the page links its scripts"
    for reference in references:
        assert reference.startswith("/"), f"{reference} is not served by scangate"
        asset = await http.get(reference)
        assert asset.status_code == 200, reference
        assert len(asset.content) > 0
    assert "cdn" not in response.text.lower()
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp


async def test_assets_have_browser_content_types(http: httpx.AsyncClient) -> None:
    types = {
        "swagger-ui-bundle.js": "javascript",
        "swagger-init.js": "javascript",
        "redoc.standalone.js": "javascript",
        "swagger-ui.css": "text/css",
        "favicon-32x32.png": "image/png",
    }
    for name, media in types.items():
        response = await http.get(f"/docs/assets/{name}")
        assert response.status_code == 200
        assert media in response.headers["content-type"], name


async def test_fastapi_cdn_pages_are_not_registered(app: FastAPI) -> None:
    assert app.docs_url is None
    assert app.redoc_url is None
    paths = {getattr(route, "path", None) for route in app.routes}
    assert "/docs/oauth2-redirect" not in paths


def test_vendored_assets_are_the_published_files_with_their_licenses() -> None:
    manifest = json.loads((ASSETS_DIR / "manifest.json").read_text())
    assert manifest["swagger-ui-dist"]["license"] == "Apache-2.0"
    assert manifest["redoc"]["license"] == "MIT"
    for package in manifest.values():
        for name, digest in package["files"].items():
            data = (ASSETS_DIR / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{name} differs from manifest"
    assert (ASSETS_DIR / "swagger-ui.LICENSE").is_file()
    assert (ASSETS_DIR / "redoc.LICENSE").is_file()
    # The one patch: ReDoc's footer logo would otherwise come from its CDN.
    assert "cdn.redoc.ly" not in (ASSETS_DIR / "redoc.standalone.js").read_text()


def test_wheel_ships_the_docs_assets(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("app", "kubesim"):
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("scangate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js",
                  "redoc.standalone.js", "favicon-32x32.png", "swagger-ui.LICENSE",
                  "redoc.LICENSE"):  # fmt: skip
        assert f"app/docs/assets/{asset}" in names


# -- the OpenAPI document -----------------------------------------------------------------------


@pytest.fixture
def openapi(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = resolve(document, media.get("schema", {}))
    return bool(schema.get("examples") or schema.get("example"))


def test_every_operation_is_described(openapi: dict[str, Any]) -> None:
    for method, path, operation in operations(openapi):
        where = f"{method} {path}"
        assert operation.get("summary"), f"{where} has no summary"
        assert operation.get("description"), f"{where} has no description"
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), f"{where}: parameter {parameter['name']}"


def test_every_request_body_has_examples(openapi: dict[str, Any]) -> None:
    bodies = 0
    for method, path, operation in operations(openapi):
        body = operation.get("requestBody")
        if body is None:
            continue
        bodies += 1
        for media_type, media in body["content"].items():
            assert has_example(openapi, media), f"{method} {path} {media_type} has no example"
    assert bodies >= 3  # create, renew, revoke


def test_every_response_is_described_with_an_example(openapi: dict[str, Any]) -> None:
    for method, path, operation in operations(openapi):
        for status, response in operation["responses"].items():
            where = f"{method} {path} -> {status}"
            assert response.get("description"), where
            assert response["description"] != "Successful Response", f"{where}: generic"
            for media_type, media in response.get("content", {}).items():
                assert has_example(openapi, media), f"{where} {media_type} has no example"


def test_errors_are_problem_json_with_the_problem_schema(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert {"type", "title", "status", "detail"} <= set(schemas["Problem"]["properties"])
    assert "HTTPValidationError" not in schemas
    for method, path, operation in operations(openapi):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert set(response["content"]) == {PROBLEM}, f"{method} {path} -> {status}"
                schema = response["content"][PROBLEM]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}


def test_v1_operations_require_the_bearer_scheme(openapi: dict[str, Any]) -> None:
    (scheme_name, scheme), *_ = openapi["components"]["securitySchemes"].items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert scheme.get("description")
    assert scheme.get("bearerFormat")
    for method, path, operation in operations(openapi):
        if path.startswith("/v1/"):
            assert operation.get("security") == [{scheme_name: []}], f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path}"
        else:
            assert not operation.get("security"), f"{method} {path} is an open endpoint"


def test_operation_ids_are_the_endpoint_names(openapi: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(openapi)]
    assert len(ids) == len(set(ids))
    assert "create_grant" in ids
    assert "list_events" in ids


def test_request_examples_are_valid_requests() -> None:
    from app.grants import examples
    from app.grants.schemas import GrantCreate, GrantRenew, GrantRevoke

    for example in examples.CREATE.values():
        GrantCreate.model_validate(example["value"])
    for example in examples.RENEW.values():
        GrantRenew.model_validate(example["value"])
    for example in examples.REVOKE.values():
        GrantRevoke.model_validate(example["value"])
