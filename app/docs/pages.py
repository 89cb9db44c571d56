"""`/docs` (Swagger UI) and `/redoc` (ReDoc), with their assets served from the package.

Each page carries a Content-Security-Policy that only allows scangate's own origin (plus the
inline styles and blob: workers the two UIs need). The browser itself then refuses any request
to a CDN or font service, so an asset that tried to phone home would fail loudly in the browser
test instead of silently breaking the page in an air-gapped cluster.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR: Final = Path(__file__).parent / "assets"
ASSETS_PATH: Final = "/docs/assets"

_CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        # Both UIs set inline style attributes; ReDoc injects <style> elements (styled-components).
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        # ReDoc runs its search index in a worker built from a blob: URL.
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS: Final = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"}

_SWAGGER_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""

_REDOC_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{openapi_url}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def _render(template: str, request: Request) -> HTMLResponse:
    app = request.app
    # Behind a reverse proxy that mounts scangate under a prefix, links must carry it.
    root = str(request.scope.get("root_path", "")).rstrip("/")
    page = template.format(
        title=html.escape(app.title),
        assets=html.escape(root + ASSETS_PATH),
        openapi_url=html.escape(root + (app.openapi_url or "/openapi.json")),
    )
    return HTMLResponse(page, headers=_HEADERS)


def install_docs_pages(app: FastAPI) -> None:
    """Serve `/docs`, `/redoc` and their assets (the app must be built with docs_url=None,
    redoc_url=None so FastAPI's CDN-based pages are not registered)."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return _render(_SWAGGER_PAGE, request)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return _render(_REDOC_PAGE, request)

    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
