"""The guard's rules as a table: (AdmissionReview, grant, policy) -> verdict and reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.guard.decisions import GrantView, grant_id_of, judge
from app.guard.review import parse_review
from app.settings_sections import PolicyConfig
from tests.guard.admission_reviews import (
    connect_review,
    ephemeral_review,
    grant_username,
    pod,
    restricted_debug_container,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
GRANT_ID = "01jbq3z5ksxn2m8d7c4v6w9e0r"
USER = grant_username(GRANT_ID)
POLICY = PolicyConfig(
    name="payments-ci",
    subjects=["apikey:ci"],
    namespaces=["payments"],
    scanners=["exec", "debug"],
    debug_images=["busybox:1.36", "registry.example.com/scanners/*"],
)
GRANT = GrantView(
    id=GRANT_ID,
    status="active",
    cluster="default",
    namespace="payments",
    scanner="debug",
    pods=("web-0",),
    containers=None,
    service_account=USER,
    policy="payments-ci",
    expires_at=NOW + timedelta(minutes=10),
)
LIMITED = replace(GRANT, containers=("app",))


def verdict(review: dict[str, Any], grant: GrantView | None = GRANT, policy: Any = POLICY) -> Any:
    return judge(parse_review(review), grant, policy, cluster="default", now=NOW)


def test_grant_id_is_read_only_from_grant_service_accounts_of_the_grants_namespace() -> None:
    assert grant_id_of(USER, "scangate-grants") == GRANT_ID
    assert grant_id_of(USER, "other-grants") is None
    assert grant_id_of("system:serviceaccount:scangate-grants:default", "scangate-grants") is None
    assert grant_id_of("alice@example.com", "scangate-grants") is None
    assert grant_id_of("system:serviceaccount:scangate-grants:scangate-", "scangate-grants") is None


@pytest.mark.parametrize(
    ("review", "grant", "reason_part"),
    [
        (connect_review("exec", USER), replace(GRANT, status="revoked"), "is revoked, not active"),
        (connect_review("exec", USER), replace(GRANT, status="revoking"), "is revoking"),
        (
            connect_review("exec", USER),
            replace(GRANT, expires_at=NOW - timedelta(seconds=1)),
            "expired at 2026-12-04T11:59:59.000Z",
        ),
        (connect_review("exec", USER, pod="web-1"), GRANT, "pod 'web-1' is not one of grant"),
        (connect_review("exec", USER, namespace="orders"), GRANT, "namespace 'orders' is not"),
        (connect_review("attach", USER), replace(GRANT, scanner="exec"), "does not include attach"),
        (connect_review("exec", USER), replace(GRANT, scanner="sidecar"), "does not include exec"),
        (
            connect_review("exec", USER),
            replace(GRANT, cluster="other"),
            "belongs to another cluster",
        ),
        (connect_review("exec", USER), replace(GRANT, policy="gone"), "'gone' is no longer"),
        (connect_review("exec", USER), None, "belongs to no grant scangate knows"),
    ],
)
def test_requests_outside_the_grant_are_refused(
    review: dict[str, Any], grant: GrantView | None, reason_part: str
) -> None:
    policy = POLICY if grant is None or grant.policy == "payments-ci" else None
    decision = verdict(review, grant, policy)
    assert not decision.allowed
    assert reason_part in decision.reason


def test_exec_into_any_container_is_allowed_when_the_grant_names_none() -> None:
    decision = verdict(connect_review("exec", USER, container="db-proxy", command=["id", "-u"]))
    assert decision.allowed
    [record] = decision.records
    assert record.type == "exec"
    assert record.detail["argv"] == ["id", "-u"]
    assert record.detail["container"] == "db-proxy"
    assert record.detail["verdict"] == "allowed"


@pytest.mark.parametrize("sub_resource", ["exec", "attach"])
def test_a_container_the_grant_does_not_name_is_refused_with_the_allowed_ones(
    sub_resource: str,
) -> None:
    decision = verdict(connect_review(sub_resource, USER, container="db-proxy"), LIMITED)
    assert not decision.allowed
    assert decision.reason == (
        f"container 'db-proxy' of pod 'web-0' is not allowed: grant {GRANT_ID} allows only app"
    )
    assert decision.records[0].detail["verdict"] == "denied"
    assert decision.records[0].type == sub_resource


def test_an_unnamed_container_is_refused_when_the_grant_names_containers() -> None:
    decision = verdict(connect_review("exec", USER, container=None), LIMITED)
    assert not decision.allowed
    assert "name the container (kubectl exec -c NAME)" in decision.reason


def test_attach_reaches_the_debug_containers_the_grant_created() -> None:
    grant = replace(LIMITED, debug_containers=frozenset({("web-0", "debugger-x7k2p")}))
    assert verdict(connect_review("attach", USER, container="debugger-x7k2p"), grant).allowed
    # ... on that pod only.
    other = replace(grant, pods=("web-0", "web-1"))
    refused = verdict(
        connect_review("attach", USER, pod="web-1", container="debugger-x7k2p"), other
    )
    assert not refused.allowed


def test_exec_argv_credentials_are_masked_in_the_record() -> None:
    command = ["curl", "-H", "Authorization: Bearer abcdefghijklmnop", "http://x"]
    decision = verdict(connect_review("exec", USER, command=command))
    assert decision.records[0].detail["argv"][2] == "Authorization: Bearer [REDACTED]"


def test_restricted_debug_container_with_an_allowed_image_is_allowed() -> None:
    decision = verdict(ephemeral_review(USER, restricted_debug_container()))
    assert decision.allowed, decision.reason
    [record] = decision.records
    assert record.type == "debug_container"
    assert record.detail["image"] == "busybox:1.36"
    assert record.detail["container"] == "debugger-x7k2p"
    assert record.detail["security"]["runAsNonRoot"] is True
    assert record.detail["verdict"] == "allowed"


def _security(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"allowPrivilegeEscalation": False, "runAsNonRoot": True}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"image": "alpine:3.20"},
            "image 'alpine:3.20' is not allowed by policy 'payments-ci' "
            "(debug_images: busybox:1.36, registry.example.com/scanners/*)",
        ),
        ({"image": "registry.example.com/scanners"}, "is not allowed by policy"),
        ({"image": "registry.example.com/scanners-evil/x:1"}, "is not allowed by policy"),
        (
            {"securityContext": _security(privileged=True)},
            "securityContext.privileged is true; debug containers are never privileged",
        ),
        (
            {"securityContext": _security(allowPrivilegeEscalation=None)},
            "securityContext.allowPrivilegeEscalation must be false",
        ),
        (
            {"securityContext": _security(capabilities={"add": ["SYS_PTRACE", "NET_ADMIN"]})},
            "securityContext.capabilities.add SYS_PTRACE, NET_ADMIN",
        ),
        (
            {"securityContext": _security(procMount="Unmasked")},
            "securityContext.procMount is Unmasked",
        ),
        ({"securityContext": _security(runAsNonRoot=None)}, "the container would run as root"),
        (
            {"securityContext": _security(runAsNonRoot=True, runAsUser=0)},
            "the container would run as root",
        ),
        (
            {"env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]},
            "env[0] (PW) takes its value from Secret 'db' (valueFrom.secretKeyRef)",
        ),
        (
            {"env": [{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
            "from ConfigMap 'cfg'",
        ),
        ({"envFrom": [{"secretRef": {"name": "db"}}]}, "envFrom[0] takes Secret 'db' (secretRef)"),
        ({"envFrom": [{"configMapRef": {"name": "cfg"}}]}, "envFrom[0] takes ConfigMap 'cfg'"),
        (
            {"volumeMounts": [{"name": "kube-api-access", "mountPath": "/t"}]},
            "mounts projected volume 'kube-api-access'",
        ),
    ],
)
def test_unsafe_debug_containers_are_refused_with_the_rule_and_value(
    fields: dict[str, Any], reason: str
) -> None:
    old = pod(volumes=[{"name": "kube-api-access", "projected": {"sources": []}}])
    decision = verdict(ephemeral_review(USER, restricted_debug_container(**fields), old_pod=old))
    assert not decision.allowed
    assert decision.reason.startswith("debug container 'debugger-x7k2p': ")
    assert reason in decision.reason
    assert decision.records[0].detail["verdict"] == "denied"


def test_every_problem_of_a_debug_container_is_listed_at_once() -> None:
    container = restricted_debug_container(
        image="alpine:3.20", securityContext={"privileged": True}
    )
    decision = verdict(ephemeral_review(USER, container))
    for part in ("image 'alpine:3.20'", "privileged is true", "allowPrivilegeEscalation", "root"):
        assert part in decision.reason


@pytest.mark.parametrize(
    ("pod_security", "container_security", "allowed"),
    [
        ({"runAsNonRoot": True}, {"allowPrivilegeEscalation": False}, True),
        ({"runAsUser": 1000}, {"allowPrivilegeEscalation": False}, True),
        # The container's setting wins over the pod's, as in the kubelet.
        ({"runAsUser": 1000}, {"allowPrivilegeEscalation": False, "runAsUser": 0}, False),
        ({"runAsNonRoot": True}, {"allowPrivilegeEscalation": False, "runAsNonRoot": False}, False),
        ({}, {"allowPrivilegeEscalation": False}, False),
    ],
)
def test_root_is_judged_with_the_pod_security_context(
    pod_security: dict[str, Any], container_security: dict[str, Any], allowed: bool
) -> None:
    old = pod(securityContext=pod_security)
    container = restricted_debug_container(securityContext=container_security)
    assert verdict(ephemeral_review(USER, container, old_pod=old)).allowed is allowed


def test_root_is_allowed_when_the_policy_says_so() -> None:
    container = restricted_debug_container(securityContext={"allowPrivilegeEscalation": False})
    policy = POLICY.model_copy(update={"debug_allow_root": True})
    assert verdict(ephemeral_review(USER, container), GRANT, policy).allowed


def test_an_empty_debug_images_list_refuses_every_debug_container() -> None:
    policy = POLICY.model_copy(update={"debug_images": []})
    decision = verdict(ephemeral_review(USER, restricted_debug_container()), GRANT, policy)
    assert not decision.allowed
    assert "allows no debug images (its debug_images list is empty)" in decision.reason


@pytest.mark.parametrize(
    "image",
    [
        "busybox:1.36",
        "registry.example.com/scanners/trivy:0.50",
        "registry.example.com/scanners/cinc@sha256:" + "a" * 64,
    ],
)
def test_images_matching_an_exact_reference_or_a_prefix_glob_are_allowed(image: str) -> None:
    assert verdict(ephemeral_review(USER, restricted_debug_container(image=image))).allowed


def test_a_digest_pinned_pattern_admits_only_that_digest() -> None:
    pinned = "busybox@sha256:" + "b" * 64
    policy = POLICY.model_copy(update={"debug_images": [pinned]})
    assert verdict(ephemeral_review(USER, restricted_debug_container(image=pinned)), GRANT, policy)
    other = "busybox@sha256:" + "c" * 64
    refused = verdict(
        ephemeral_review(USER, restricted_debug_container(image=other)), GRANT, policy
    )
    assert not refused.allowed


def test_the_target_container_must_be_one_the_grant_names() -> None:
    container = restricted_debug_container(targetContainerName="db-proxy")
    decision = verdict(ephemeral_review(USER, container), LIMITED)
    assert not decision.allowed
    assert "targetContainerName 'db-proxy' is not one of the grant's containers (app)" in (
        decision.reason
    )
    assert verdict(ephemeral_review(USER, restricted_debug_container()), LIMITED).allowed


def test_a_limited_grant_cannot_debug_a_pod_sharing_its_process_namespace() -> None:
    old = pod(shareProcessNamespace=True)
    decision = verdict(ephemeral_review(USER, restricted_debug_container(), old_pod=old), LIMITED)
    assert not decision.allowed
    assert "shares one process namespace" in decision.reason


def test_existing_ephemeral_containers_are_never_judged_again() -> None:
    privileged = restricted_debug_container(name="old-one", securityContext={"privileged": True})
    old = pod(ephemeralContainers=[privileged])
    decision = verdict(ephemeral_review(USER, restricted_debug_container(), old_pod=old))
    assert decision.allowed, decision.reason
    assert [r.detail["container"] for r in decision.records] == ["debugger-x7k2p"]


def test_a_debug_grant_is_needed_for_debug_containers() -> None:
    decision = verdict(
        ephemeral_review(USER, restricted_debug_container()), replace(GRANT, scanner="exec")
    )
    assert not decision.allowed
    assert "does not include ephemeralcontainers" in decision.reason


def test_other_requests_by_a_grant_identity_are_refused() -> None:
    review = ephemeral_review(USER, restricted_debug_container())
    review["request"]["subResource"] = "status"
    decision = verdict(review)
    assert not decision.allowed
    assert "not UPDATE pods/status" in decision.reason
