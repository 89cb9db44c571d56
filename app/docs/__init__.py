"""API documentation that works offline: Swagger UI at `/docs`, ReDoc at `/redoc`, served from
files inside the package (`assets/`, vendored by `scripts/update_docs_assets.py`), and the
OpenAPI document's enrichment (`openapi`): problem+json errors, the bearer scheme, examples.

Clusters are often air-gapped; FastAPI's default pages load Swagger UI and ReDoc from a CDN and
show a blank page there.
"""
