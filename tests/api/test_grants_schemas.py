"""Request validation and grant ids: what is refused before anything touches a database."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.grants.clock import format_rfc3339, utcnow
from app.grants.ids import is_grant_id, new_grant_id
from app.grants.schemas import GrantCreate, GrantRenew, ScannerName
from app.grants.selectors import label_selector_problem
from app.kube.naming import object_name
from app.kube.profiles import SCANNER_PROFILES


def test_grant_ids_are_26_lowercase_crockford_characters() -> None:
    for _ in range(1000):
        grant_id = new_grant_id()
        assert len(grant_id) == 26
        assert is_grant_id(grant_id)
        assert set(grant_id) <= set("0123456789abcdefghjkmnpqrstvwxyz")


def test_grant_ids_are_strictly_increasing_in_creation_order() -> None:
    ids = [new_grant_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_grant_ids_sort_by_time_across_milliseconds() -> None:
    first = new_grant_id()
    time.sleep(0.002)
    assert new_grant_id()[:10] > first[:10]


def test_grant_id_makes_a_valid_object_name() -> None:
    name = object_name(new_grant_id())
    assert len(name) == 35
    assert name.startswith("scangate-")


@pytest.mark.parametrize("value", ["", "x" * 26 + "0", "0" * 25, "0" * 25 + "U", "0" * 25 + "I"])
def test_malformed_grant_ids_are_recognised(value: str) -> None:
    assert not is_grant_id(value)


def test_scanner_names_match_the_kube_profiles() -> None:
    assert set(ScannerName.__args__) == set(SCANNER_PROFILES)


def test_times_are_rendered_rfc3339_utc_with_z() -> None:
    moment = datetime(2025, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)
    assert format_rfc3339(moment) == "2025-01-31T12:00:00.123Z"
    assert utcnow().microsecond % 1000 == 0


def _create(**body: object) -> GrantCreate:
    return GrantCreate.model_validate({"namespace": "payments", "scanner": "exec", **body})


def test_containers_are_optional_deduplicated_and_sorted() -> None:
    assert _create(pods=["web-0"]).containers is None
    assert _create(pods=["web-0"], containers=["scanner", "app", "app"]).containers == [
        "app",
        "scanner",
    ]


def test_pods_are_deduplicated_and_sorted() -> None:
    assert _create(pods=["web-1", "web-0", "web-1"]).pods == ["web-0", "web-1"]


def _error_fields(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in error["loc"]) for error in exc.errors()]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pods": ["web-0"], "selector": "app=web"}, ""),
        ({}, ""),
        ({"pods": []}, "pods"),
        ({"pods": ["Web_0"]}, "pods.0"),
        ({"pods": ["web-0"], "namespace": "Payments"}, "namespace"),
        ({"pods": ["web-0"], "namespace": "a" * 64}, "namespace"),
        ({"pods": ["web-0"], "scanner": "shell"}, "scanner"),
        ({"pods": ["web-0"], "ttl_seconds": 29}, "ttl_seconds"),
        ({"pods": ["web-0"], "cluster": "Not A Name"}, "cluster"),
        ({"pods": ["web-0"], "pod": ["web-1"]}, "pod"),
        ({"selector": ""}, "selector"),
        ({"selector": "app in (web"}, "selector"),
        ({"pods": ["web-0"], "containers": []}, "containers"),
        ({"pods": ["web-0"], "containers": ["App"]}, "containers.0"),
        ({"pods": ["web-0"], "containers": ["app"], "scanner": "sidecar"}, ""),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _create(**body)
    fields = _error_fields(caught.value)
    assert any(f == field or (field == "" and f == "") for f in fields), fields


@pytest.mark.parametrize(
    "selector",
    [
        "app=web",
        "app==web",
        "app!=web",
        "app",
        "!canary",
        "app in (web, api)",
        "tier notin (backend)",
        "app=web,tier=frontend",
        "example.com/team=payments",
        "app.kubernetes.io/name=web, environment in (prod,staging), !canary",
        "app=",
    ],
)
def test_valid_label_selectors_are_accepted(selector: str) -> None:
    assert label_selector_problem(selector) is None


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "   ",
        "app=web,",
        ",app=web",
        "app in ()",
        "app in (web",
        "app=web)",
        "-app=web",
        "app=we b",
        "app=" + "x" * 64,
        "Example.com/team=payments",
        "/team=payments",
        "app>1",
        "app = (web)",
    ],
)
def test_invalid_label_selectors_are_refused(selector: str) -> None:
    assert label_selector_problem(selector) is not None


def test_renew_needs_a_ttl_of_at_least_30_seconds() -> None:
    with pytest.raises(ValidationError):
        GrantRenew.model_validate({"ttl_seconds": 10})
    assert GrantRenew.model_validate({"ttl_seconds": 30}).ttl_seconds == 30
