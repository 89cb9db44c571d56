"""Requests the API cannot read, sent to a running scangate over a socket as a user's curl would
send them: each answer says how to fix the request."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.cli_service import Service


def _curl(*args: str) -> tuple[str, str]:
    """curl's (headers, body) for one request."""
    assert shutil.which("curl"), "curl must be on PATH"
    done = subprocess.run(
        ["curl", "-s", "-D", "-", *args], capture_output=True, text=True, timeout=30, check=True
    )
    # text=True reads the CRLFs as "\n".
    headers, _, body = done.stdout.partition("\n\n")
    return headers, body


def test_curl_without_a_content_type_is_told_to_send_application_json(service: Service) -> None:
    # `curl -d` alone sends application/x-www-form-urlencoded: the classic first mistake.
    headers, body = _curl(
        "-X", "POST", f"{service.url}/v1/grants",
        "-H", f"Authorization: Bearer {service.keys['ci']}",
        "-d", '{"namespace": "payments", "pods": ["web-0"], "scanner": "exec"}',
    )  # fmt: skip

    assert headers.startswith("HTTP/1.1 422")
    assert "content-type: application/problem+json" in headers.lower()
    assert "sent as application/x-www-form-urlencoded" in body
    assert "Content-Type: application/json" in body


def test_broken_json_is_located_by_line_and_column(service: Service) -> None:
    _, body = _curl(
        "-X", "POST", f"{service.url}/v1/grants",
        "-H", f"Authorization: Bearer {service.keys['ci']}",
        "-H", "Content-Type: application/json",
        "-d", '{"namespace": "payments",\n "pods": ["web-0",]}',
    )  # fmt: skip

    assert "is not valid JSON" in body
    assert "at line 2, column 19" in body


@pytest.mark.parametrize(
    ("method", "path", "allow", "meant"),
    [
        (
            "DELETE",
            "/v1/grants/01j00000000000000000000000",
            "GET",
            "POST /v1/grants/{grant_id}/revoke",
        ),
        ("PUT", "/v1/grants/01j00000000000000000000000", "GET", "POST /v1/grants/{grant_id}/renew"),
    ],
)
def test_a_rest_habit_method_is_pointed_to_the_endpoint_meant(
    service: Service, method: str, path: str, allow: str, meant: str
) -> None:
    headers, body = _curl(
        "-X", method, f"{service.url}{path}", "-H", f"Authorization: Bearer {service.keys['ci']}"
    )

    assert headers.startswith("HTTP/1.1 405")
    assert f"\nallow: {allow}\n" in headers.replace("\nAllow:", "\nallow:")
    assert f"use {meant}" in body
