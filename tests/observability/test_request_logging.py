"""One access record per request, as a JSON line, carrying the request id (taken from or
returned in X-Request-ID), the route template, the principal and the grant."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from app.grants.service import GrantService
from app.observability.logs import JsonFormatter, TextFormatter, logging_config
from tests.support.logs import LogCapture
from tests.support.scangate import Scangate

pytestmark = pytest.mark.anyio


async def test_a_well_formed_request_id_is_kept_and_returned(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    response = await scangate.http.get(
        "/v1/whoami",
        headers={**scangate.auth("alice"), "X-Request-ID": "ci-run-4711-step-3"},
    )

    assert response.headers["x-request-id"] == "ci-run-4711-step-3"
    (record,) = json_logs.by_logger("scangate.access")
    assert record["request_id"] == "ci-run-4711-step-3"
    assert record["http"] == {
        "method": "GET",
        "route": "/v1/whoami",
        "status": 200,
        "duration_ms": record["http"]["duration_ms"],
    }
    assert record["principal"] == "apikey:alice"
    assert record["level"] == "INFO"


@pytest.mark.parametrize(
    "offered",
    [
        "",
        "has space",
        "x" * 65,
        "sg_looks-like-an-api-key",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "id\u00e9",
    ],
)
async def test_a_malformed_request_id_is_replaced_and_never_logged(
    scangate: Scangate, json_logs: LogCapture, offered: str
) -> None:
    response = await scangate.http.get(
        "/healthz", headers={"X-Request-ID": offered.encode("utf-8")}
    )

    returned = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", returned)
    (record,) = json_logs.by_logger("scangate.access")
    assert record["request_id"] == returned
    if offered:
        assert offered not in json_logs.text


async def test_without_a_request_id_one_is_made_per_request(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    first = await scangate.http.get("/healthz")
    second = await scangate.http.get("/healthz")

    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert [r["request_id"] for r in json_logs.by_logger("scangate.access")] == [
        first.headers["x-request-id"],
        second.headers["x-request-id"],
    ]


async def test_access_record_names_the_route_template_principal_and_grant(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    grant = await scangate.grant()
    await scangate.get(grant["id"])
    await scangate.request("GET", "/v1/grants/not-a-grant-id-at-all")

    create, get, missing = json_logs.by_logger("scangate.access")
    assert (create["http"]["route"], create["http"]["status"]) == ("/v1/grants", 201)
    assert create["grant_id"] == grant["id"]
    assert create["principal"] == "apikey:alice"
    assert (get["http"]["route"], get["grant_id"]) == ("/v1/grants/{grant_id}", grant["id"])
    # A path segment that is not a grant id is not logged: it could hold anything.
    assert missing["http"]["route"] == "/v1/grants/{grant_id}"
    assert missing["grant_id"] is None
    assert "not-a-grant-id-at-all" not in json_logs.text


async def test_every_line_a_request_causes_carries_its_request_id(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    response = await scangate.http.post(
        "/v1/grants",
        json={"namespace": "payments", "pods": ["web-0"], "scanner": "exec"},
        headers={**scangate.auth("alice"), "X-Request-ID": "grant-request-1"},
    )

    assert response.status_code == 201
    during = [r for r in json_logs.records() if r.get("request_id") == "grant-request-1"]
    # The audit records (written by the grant writer, outside the request's task, but logged
    # by the request) and the access record, all tied together.
    audit = [r["audit"]["type"] for r in during if r["logger"] == "scangate.audit"]
    assert audit == ["requested", "activated"]
    assert [r["logger"] for r in during][-1] == "scangate.access"


async def test_concurrent_grants_audit_records_carry_their_own_request_ids(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    # Concurrent creations share the grant writer's transactions; each request still logs
    # its own audit records, under its own request id.
    responses = await asyncio.gather(
        *(
            scangate.http.post(
                "/v1/grants",
                json={"namespace": "payments", "pods": ["web-0"], "scanner": "exec"},
                headers={**scangate.auth("alice"), "X-Request-ID": f"concurrent-{i}"},
            )
            for i in range(6)
        )
    )
    assert [r.status_code for r in responses] == [201] * 6
    for i, response in enumerate(responses):
        records = [
            r for r in json_logs.by_logger("scangate.audit") if r["request_id"] == f"concurrent-{i}"
        ]
        assert [(r["audit"]["type"], r["audit"]["grant_id"]) for r in records] == [
            ("requested", response.json()["id"]),
            ("activated", response.json()["id"]),
        ]


async def test_a_bug_answers_500_with_the_request_id_and_logs_it_once(
    scangate: Scangate, json_logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug with a secret-looking detail")

    monkeypatch.setattr(GrantService, "list_grants", broken)
    response = await scangate.http.get(
        "/v1/grants", headers={**scangate.auth("alice"), "X-Request-ID": "bug-report-1"}
    )

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-report-1"
    assert response.json()["type"] == "https://scangate.dev/problems/internal"
    assert "secret-looking" not in response.text
    [error] = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert error["request_id"] == "bug-report-1"
    assert "RuntimeError" in error["exception"]
    (access,) = json_logs.by_logger("scangate.access")
    assert (access["request_id"], access["http"]["status"]) == ("bug-report-1", 500)


async def test_unmatched_paths_are_logged_without_the_path(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    response = await scangate.http.get("/some/typed/secretish/path?token=abc123")

    assert response.status_code == 404
    (record,) = json_logs.by_logger("scangate.access")
    assert record["http"]["route"] == "unmatched"
    assert "secretish" not in json_logs.text
    assert "abc123" not in json_logs.text


async def test_probe_and_scrape_records_are_debug_unless_they_fail(
    scangate: Scangate, json_logs: LogCapture
) -> None:
    await scangate.http.get("/healthz")
    await scangate.http.get("/metrics")

    levels = {r["http"]["route"]: r["level"] for r in json_logs.by_logger("scangate.access")}
    assert levels == {"/healthz": "DEBUG", "/metrics": "DEBUG"}


def make_record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("scangate.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_hold_extra_fields_as_json() -> None:
    line = JsonFormatter().format(make_record("grant %s", "abc", audit={"type": "activated"}))

    document = json.loads(line)
    assert document["message"] == "grant abc"
    assert document["audit"] == {"type": "activated"}
    assert document["time"].endswith("Z")
    assert "\n" not in line


def test_text_format_is_one_readable_line() -> None:
    record = make_record("GET %s %d", "/healthz", 200, request_id="r-1", http={"status": 200})

    line = TextFormatter().format(record)

    assert ' INFO scangate.test [req r-1] GET /healthz 200 http={"status": 200}' in line


def test_formatters_mask_credential_shaped_strings_whoever_logged_them() -> None:
    api_key = "sg_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXBhcnQ"
    record = make_record("sent %s and Bearer %s", api_key, jwt, detail={"token": jwt})

    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert api_key not in line
        assert jwt not in line
        assert "REDACTED" in line


def test_logging_config_is_a_valid_dict_config_for_both_formats() -> None:
    for log_format in ("json", "text"):
        config = logging_config(log_format, "debug")  # type: ignore[arg-type]
        assert config["root"]["level"] == "DEBUG"
        assert config["loggers"]["uvicorn.access"]["propagate"] is False
        formatter = config["formatters"]["scangate"]
        built = formatter["()"](log_format=formatter["log_format"])
        assert isinstance(built, JsonFormatter if log_format == "json" else TextFormatter)
