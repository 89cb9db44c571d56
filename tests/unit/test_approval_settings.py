"""A policy's `approval`, `require_reason` and `max_active_grants` keys: loaded as the README
shows them, and every bad value stops startup naming its key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.auth import PolicyEngine, Principal
from app.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("SCANGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def config(tmp_path: Path, **policy: Any) -> Path:
    document = {
        "policies": [
            {
                "name": "payments-ci",
                "subjects": ["apikey:ci"],
                "namespaces": ["payments"],
                "scanners": ["exec"],
                **policy,
            }
        ]
    }
    path = tmp_path / "scangate.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def problems(tmp_path: Path, **policy: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(tmp_path, **policy))
    return dict(caught.value.problems)


def test_the_readme_approval_example_loads(tmp_path: Path) -> None:
    settings = load_settings(
        config(
            tmp_path,
            approval={
                "required": 2,
                "approvers": ["apikey:alice", "oidc:https://issuer.example.com#*@sec.example.com"],
                "timeout_seconds": 1800,
            },
            require_reason=True,
            max_active_grants=3,
        )
    )
    [payments] = settings.policies
    assert payments.approval is not None
    assert (payments.approval.required, payments.approval.allow_self_approval) == (2, False)
    assert payments.approval.timeout_seconds == 1800
    assert (payments.require_reason, payments.max_active_grants) == (True, 3)


def test_without_the_keys_grants_are_immediate_and_unlimited(tmp_path: Path) -> None:
    [payments] = load_settings(config(tmp_path)).policies
    assert (payments.approval, payments.require_reason, payments.max_active_grants) == (
        None,
        False,
        None,
    )


def test_bad_approval_settings_name_their_key(tmp_path: Path) -> None:
    assert "policies[0].approval.approvers" in problems(tmp_path, approval={"approvers": []})
    bad_subject = problems(tmp_path, approval={"approvers": ["alice"]})
    assert "policies[0].approval.approvers[0]" in bad_subject
    too_long = problems(tmp_path, approval={"approvers": ["apikey:a"], "timeout_seconds": 604801})
    assert "policies[0].approval.timeout_seconds" in too_long
    assert "policies[0].approval.required" in problems(
        tmp_path, approval={"approvers": ["apikey:a"], "required": 0}
    )
    assert "policies[0].max_active_grants" in problems(tmp_path, max_active_grants=0)
    assert "policies[0].approval.unknown" in problems(
        tmp_path, approval={"approvers": ["apikey:a"], "unknown": 1}
    )


def test_more_approvals_required_than_approvers_named_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, approval={"required": 3, "approvers": ["apikey:a", "apikey:b"]})
    assert "required is 3 but only 2 approver(s) are named" in str(found)
    # A pattern may match any number of principals: no count to check.
    load_settings(config(tmp_path, approval={"required": 3, "approvers": ["apikey:sec-*"]}))


def test_approvers_match_like_subjects(tmp_path: Path) -> None:
    settings = load_settings(
        config(tmp_path, approval={"approvers": ["apikey:sec-*", "oidc:https://i#*@sec.example"]})
    )
    engine = PolicyEngine(settings)
    assert engine.approves(Principal(id="apikey:sec-anna", kind="apikey"), "payments-ci")
    assert engine.approves(
        Principal(id="oidc:https://i#bo@sec.example", kind="oidc"), "payments-ci"
    )
    assert not engine.approves(Principal(id="apikey:ci", kind="apikey"), "payments-ci")
    assert not engine.approves(Principal(id="apikey:sec-anna", kind="apikey"), "other")
    assert engine.approved_by(Principal(id="apikey:sec-anna", kind="apikey")) == ["payments-ci"]
