"""Policies: deny by default, `*` globs on subjects and namespaces, and namespaces no policy can
ever open (denied_namespaces and every cluster's grants namespace)."""

from __future__ import annotations

from typing import Any

import pytest

from app.auth import PolicyDenied, PolicyEngine, Principal
from app.settings import Settings

GITHUB = "https://token.actions.githubusercontent.com"
CI = Principal.for_api_key("ci-payments")
OTHER = Principal.for_api_key("ci-orders")


def engine(*policies: dict[str, Any], **settings: Any) -> PolicyEngine:
    settings.setdefault("clusters", [{"name": "default"}])
    return PolicyEngine(Settings(policies=list(policies), **settings))


def policy(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "payments-ci",
        "subjects": ["apikey:ci-payments"],
        "namespaces": ["payments", "payments-*"],
        "scanners": ["exec", "debug"],
    }
    base.update(overrides)
    return base


def denial(
    policies: PolicyEngine,
    principal: Principal,
    *,
    cluster: str = "default",
    namespace: str = "payments",
    scanner: str = "exec",
) -> PolicyDenied:
    with pytest.raises(PolicyDenied) as caught:
        policies.authorize(principal, cluster=cluster, namespace=namespace, scanner=scanner)
    return caught.value


def test_without_policies_everything_is_denied() -> None:
    denied = denial(engine(), CI)

    assert denied.status == 403
    assert denied.extra["denied"] == "principal"
    assert "no policy applies to apikey:ci-payments" in denied.detail


def test_exact_subject_is_allowed_and_gets_its_policy() -> None:
    allowed = engine(policy()).authorize(
        CI, cluster="default", namespace="payments", scanner="exec"
    )

    assert allowed.name == "payments-ci"
    assert allowed.max_ttl_seconds == 3600
    assert allowed.max_pods == 20


def test_other_principals_are_denied() -> None:
    assert denial(engine(policy()), OTHER).extra["denied"] == "principal"


def test_subject_glob_matches_oidc_subjects_of_one_repository() -> None:
    policies = engine(policy(subjects=[f"oidc:{GITHUB}#repo:acme/payments:*"]))
    main_branch = Principal.for_oidc(GITHUB, "repo:acme/payments:ref:refs/heads/main", {})
    other_repo = Principal.for_oidc(GITHUB, "repo:acme/paymentsx:ref:refs/heads/main", {})

    allowed = policies.authorize(
        main_branch, cluster="default", namespace="payments", scanner="exec"
    )
    assert allowed.name == "payments-ci"
    assert denial(policies, other_repo).extra["denied"] == "principal"


def test_glob_treats_only_star_as_special() -> None:
    policies = engine(policy(subjects=["apikey:ci.payments?"]))

    assert denial(policies, Principal.for_api_key("ciXpaymentsZ")).extra["denied"] == "principal"
    allowed = policies.authorize(
        Principal.for_api_key("ci.payments?"),
        cluster="default",
        namespace="payments",
        scanner="exec",
    )
    assert allowed.name == "payments-ci"


def test_namespace_glob_allows_matching_namespaces_only() -> None:
    policies = engine(policy())

    for namespace in ("payments", "payments-eu", "payments-"):
        allowed = policies.authorize(CI, cluster="default", namespace=namespace, scanner="exec")
        assert allowed.name == "payments-ci"
    for namespace in ("orders", "paymentsx", "xpayments"):
        denied = denial(policies, CI, namespace=namespace)
        assert denied.extra["denied"] == "namespace"
        assert repr(namespace) in denied.detail


def test_scanner_outside_the_policy_is_denied_by_name() -> None:
    denied = denial(engine(policy()), CI, scanner="sidecar")

    assert denied.extra == {
        "denied": "scanner",
        "cluster": "default",
        "namespace": "payments",
        "scanner": "sidecar",
    }
    assert "scanner 'sidecar'" in denied.detail


def test_cluster_outside_the_policy_is_denied() -> None:
    policies = engine(
        policy(clusters=["staging"]), clusters=[{"name": "staging"}, {"name": "prod"}]
    )

    assert policies.authorize(CI, cluster="staging", namespace="payments", scanner="exec")
    assert denial(policies, CI, cluster="prod").extra["denied"] == "cluster"


def test_star_cluster_means_every_cluster() -> None:
    policies = engine(policy(clusters=["*"]), clusters=[{"name": "staging"}, {"name": "prod"}])

    assert policies.authorize(CI, cluster="prod", namespace="payments", scanner="exec")


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease"])
def test_denied_namespaces_are_never_grantable_even_with_star(namespace: str) -> None:
    denied = denial(engine(policy(namespaces=["*"])), CI, namespace=namespace)

    assert denied.extra["denied"] == "namespace"
    assert "never grantable" in denied.detail


def test_every_clusters_grants_namespace_is_never_grantable() -> None:
    policies = engine(
        policy(namespaces=["*"], clusters=["*"]),
        clusters=[{"name": "a"}, {"name": "b", "grants_namespace": "sg-b"}],
    )

    assert denial(policies, CI, cluster="a", namespace="scangate-grants").extra["denied"] == (
        "namespace"
    )
    # Cluster b's grants namespace is also refused on cluster a: it is never a target anywhere.
    assert denial(policies, CI, cluster="a", namespace="sg-b").extra["denied"] == "namespace"


def test_custom_denied_namespaces_replace_the_defaults() -> None:
    policies = engine(policy(namespaces=["*"]), denied_namespaces=["vault"])

    assert denial(policies, CI, namespace="vault").extra["denied"] == "namespace"


def test_first_matching_policy_wins() -> None:
    policies = engine(
        policy(name="narrow", scanners=["exec"], max_ttl_seconds=300),
        policy(name="broad", scanners=["exec", "debug"], max_ttl_seconds=3600),
    )

    assert policies.authorize(CI, cluster="default", namespace="payments", scanner="exec").name == (
        "narrow"
    )
    assert policies.authorize(
        CI, cluster="default", namespace="payments", scanner="debug"
    ).name == ("broad")


def test_policies_for_lists_only_the_principals_policies() -> None:
    policies = engine(
        policy(name="mine"),
        policy(name="theirs", subjects=["apikey:ci-orders"]),
        policy(name="everyone", subjects=["apikey:*"]),
    )

    assert [p.name for p in policies.policies_for(CI)] == ["mine", "everyone"]
    assert policies.get("theirs") is not None
    assert policies.get("absent") is None
