"""`helm lint` (real Helm, no cluster needed) passes for every supported shape of the values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm_runner import (
    IMAGE_VALUES,
    LINT_WARNING,
    lint_chart,
    merge_values,
    production_values,
)

SHAPES: dict[str, dict[str, Any]] = {
    "sqlite-single-replica-on-a-volume": {
        "replicaCount": 1,
        "database": {"existingSecret": ""},
    },
    "sqlite-on-an-existing-claim": {
        "replicaCount": 1,
        "database": {"existingSecret": "", "sqlite": {"persistence": {"existingClaim": "data"}}},
    },
    "postgresql-url-in-a-chart-secret": {
        "database": {"existingSecret": "", "url": "postgresql+psycopg://u:p@db:5432/scangate"},
    },
    "cluster-wide-with-every-profile": {
        "targetNamespaces": ["*"],
        "scanners": ["exec", "debug", "sidecar"],
    },
    "existing-grants-namespace-and-api-key-secret": {
        "grantsNamespace": {"create": False, "name": "security-grants"},
        "apiKeys": {"existingSecret": "scangate-keys"},
        "targetNamespaces": ["payments"],
    },
    "a-policy-with-approval-and-limits": {
        "config": {
            "policies": [
                {
                    "name": "payments-prod",
                    "subjects": ["apikey:ci"],
                    "namespaces": ["payments"],
                    "scanners": ["exec"],
                    "approval": {
                        "required": 2,
                        "approvers": ["apikey:sec-a", "apikey:sec-b"],
                        "allow_self_approval": False,
                        "timeout_seconds": 1800,
                    },
                    "require_reason": True,
                    "max_active_grants": 3,
                }
            ]
        },
    },
    "every-optional-object": {
        "networkPolicy": {"enabled": True},
        "serviceMonitor": {"enabled": True},
        "config": {"oidc": [{"issuer": "https://gitlab.example.com", "audience": "scangate"}]},
        "migrations": {"enabled": False},
    },
}


def test_chart_lints_clean_with_default_values(helm_home: Path) -> None:
    # Helm's lint renders `required` values leniently, so the missing image (the one value
    # without a default, tests/chart/test_image.py) does not fail it.
    report = lint_chart(helm_home)
    assert report.paths_with(LINT_WARNING) == set(), report


def test_chart_lints_clean_with_the_production_values_file(helm_home: Path) -> None:
    report = lint_chart(helm_home, production_values())
    assert report.paths_with(LINT_WARNING) == set(), report


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_chart_lints_clean_for_each_supported_shape(helm_home: Path, shape: str) -> None:
    report = lint_chart(helm_home, merge_values(IMAGE_VALUES, SHAPES[shape]))
    assert report.paths_with(LINT_WARNING) == set(), report
