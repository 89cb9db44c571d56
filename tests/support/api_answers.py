"""What the HTTP API answers, checked the same way in every suite: problem+json errors and
RFC 3339 timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://scangate.dev/problems/{slug}", body
    assert body["status"] == status
    return body
