"""Policies for OIDC principals: the subject glob and the `claims:` map must both match, claim
values match as exact strings or `*` globs, and the matched claims are what the audit records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.auth import PolicyDenied, PolicyEngine, Principal
from app.settings import ConfigError, Settings, load_settings

GITHUB = "https://token.actions.githubusercontent.com"
GITLAB = "https://gitlab.example.com"


def github(sub: str = "repo:acme/payments:environment:production", **claims: Any) -> Principal:
    base: dict[str, Any] = {
        "sub": sub,
        "repository": "acme/payments",
        "ref": "refs/heads/main",
        "environment": "production",
        "job_workflow_ref": "acme/workflows/.github/workflows/scan.yml@refs/heads/main",
    }
    base.update(claims)
    return Principal.for_oidc(GITHUB, sub, {k: v for k, v in base.items() if v is not None})


def engine(
    *claims_maps: dict[str, Any], subject: str = f"oidc:{GITHUB}#repo:acme/*"
) -> PolicyEngine:
    policies = [
        {
            "name": f"policy-{i}",
            "subjects": [subject],
            "namespaces": ["payments"],
            "scanners": ["exec"],
            "claims": claims,
        }
        for i, claims in enumerate(claims_maps)
    ]
    return PolicyEngine(Settings(clusters=[{"name": "default"}], policies=policies))


def allowed(policies: PolicyEngine, principal: Principal) -> str | None:
    try:
        policy = policies.authorize(
            principal, cluster="default", namespace="payments", scanner="exec"
        )
    except PolicyDenied:
        return None
    return policy.name


def test_exact_claim_values_must_match() -> None:
    policies = engine({"repository": "acme/payments", "environment": "production"})

    assert allowed(policies, github()) == "policy-0"
    assert allowed(policies, github(environment="staging")) is None
    assert allowed(policies, github(repository="acme/payments-fork")) is None


def test_claim_values_may_be_globs_or_lists_of_globs() -> None:
    policies = engine({"ref": ["refs/heads/main", "refs/tags/v*"]})

    assert allowed(policies, github(ref="refs/heads/main")) == "policy-0"
    assert allowed(policies, github(ref="refs/tags/v1.2.3")) == "policy-0"
    assert allowed(policies, github(ref="refs/heads/feature")) is None
    assert allowed(policies, github(ref="refs/heads/main-evil")) is None


def test_a_required_claim_missing_from_the_token_denies() -> None:
    policies = engine({"environment": "*"})

    assert allowed(policies, github()) == "policy-0"
    assert allowed(policies, github(environment=None)) is None


def test_subject_glob_still_applies_when_claims_match() -> None:
    policies = engine(
        {"repository": "acme/payments"}, subject=f"oidc:{GITHUB}#repo:acme/payments:*"
    )

    assert allowed(policies, github(sub="repo:acme/orders:ref:refs/heads/main")) is None


def test_gitlab_boolean_style_claims_match_yaml_booleans(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(
        f"""
oidc: [{{issuer: "{GITLAB}", audience: scangate}}]
policies:
  - name: gitlab-protected
    subjects: ["oidc:{GITLAB}#project_path:acme/payments:*"]
    namespaces: [payments]
    scanners: [exec]
    claims:
      project_path: acme/payments
      ref_protected: true
"""
    )
    policies = PolicyEngine(load_settings(config))
    sub = "project_path:acme/payments:ref_type:branch:ref:main"

    protected = Principal.for_oidc(
        GITLAB, sub, {"project_path": "acme/payments", "ref_protected": "true"}
    )
    unprotected = Principal.for_oidc(
        GITLAB, sub, {"project_path": "acme/payments", "ref_protected": "false"}
    )
    json_boolean = Principal.for_oidc(
        GITLAB, sub, {"project_path": "acme/payments", "ref_protected": True}
    )

    assert allowed(policies, protected) == "gitlab-protected"
    assert allowed(policies, unprotected) is None
    assert allowed(policies, json_boolean) == "gitlab-protected"


def test_list_valued_claims_match_when_any_element_does() -> None:
    policies = engine({"groups": "scanners"})

    assert allowed(policies, github(groups=["devs", "scanners"])) == "policy-0"
    assert allowed(policies, github(groups=["devs"])) is None
    assert allowed(policies, github(groups={"scanners": True})) is None  # objects never match


def test_api_keys_never_satisfy_a_claims_policy() -> None:
    settings = Settings(
        clusters=[{"name": "default"}],
        policies=[
            {
                "name": "mixed",
                "subjects": ["apikey:ci", f"oidc:{GITHUB}#*"],
                "namespaces": ["payments"],
                "scanners": ["exec"],
                "claims": {"repository": "*"},
            }
        ],
    )

    assert allowed(PolicyEngine(settings), Principal.for_api_key("ci")) is None


def test_denial_names_the_unmatched_claims_but_not_their_patterns() -> None:
    policies = engine({"environment": "production-secret-pattern"})

    with pytest.raises(PolicyDenied) as caught:
        policies.authorize(
            github(environment="dev"), cluster="default", namespace="payments", scanner="exec"
        )

    assert "environment" in caught.value.detail
    assert "production-secret-pattern" not in caught.value.detail


def test_policies_for_only_lists_policies_whose_claims_match() -> None:
    policies = engine({"environment": "production"}, {"environment": "staging"})

    assert [p.name for p in policies.policies_for(github())] == ["policy-0"]


def test_matched_claims_are_the_tokens_values_of_the_required_claims() -> None:
    policies = engine({"repository": "acme/*", "ref": "refs/heads/*"})
    principal = github()
    policy = policies.authorize(principal, cluster="default", namespace="payments", scanner="exec")

    assert policies.matched_claims(principal, policy) == {
        "repository": "acme/payments",
        "ref": "refs/heads/main",
    }


def test_claims_on_a_policy_without_oidc_subjects_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(
        """
policies:
  - {name: p, subjects: ["apikey:ci"], namespaces: [payments], scanners: [exec],
     claims: {repository: acme/payments}}
"""
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    assert "policies[0]" in str(caught.value)
    assert "oidc" in str(caught.value)


def test_empty_claim_patterns_are_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text(
        f"""
policies:
  - {{name: p, subjects: ["oidc:{GITHUB}#*"], namespaces: [payments], scanners: [exec],
     claims: {{repository: []}}}}
"""
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    assert "policies[0].claims.repository" in str(caught.value)


@pytest.mark.parametrize(
    "issuer", ["http://idp.example.com", "ftp://idp", "https://", "http://10.0.0.1:8080"]
)
def test_oidc_issuers_must_be_https_except_on_loopback(tmp_path: Path, issuer: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings_from(tmp_path, {"oidc": [{"issuer": issuer, "audience": "scangate"}]})

    assert "oidc[0].issuer" in str(caught.value)


def test_loopback_http_issuers_are_allowed_for_local_identity_providers(tmp_path: Path) -> None:
    settings = load_settings_from(
        tmp_path, {"oidc": [{"issuer": "http://127.0.0.1:5556/dex/", "audience": "scangate"}]}
    )

    assert settings.oidc[0].issuer == "http://127.0.0.1:5556/dex"


def load_settings_from(tmp_path: Path, document: dict[str, Any]) -> Settings:
    config = tmp_path / "scangate.yaml"
    config.write_text(yaml.safe_dump(document))
    return load_settings(config)
