"""The manifests of a grant's objects: names, labels, annotations and the binding's subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from kubernetes import client

from app.kube.manifests import (
    rfc3339,
    role_binding_manifest,
    role_manifest,
    service_account_manifest,
)
from app.kube.models import GrantTarget
from app.kube.naming import object_name
from app.kube.profiles import profile_rules

GRANT_ID = "01jb2k3m4n5p6q7r8s9t0v1w2x"
TARGET = GrantTarget(
    grant_id=GRANT_ID,
    namespace="payments",
    scanner="exec",
    requester="oidc:https://token.actions.githubusercontent.com#repo:acme/payments:ref:main",
    expires_at=datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
)


def test_object_name_is_a_dns_label() -> None:
    name = object_name(GRANT_ID)
    assert name == f"scangate-{GRANT_ID}"
    assert len(name) == 35
    with pytest.raises(ValueError, match="too long"):
        object_name("x" * 60)


def test_every_object_is_labelled_and_annotated() -> None:
    for manifest in (
        service_account_manifest(TARGET, "scangate-grants", "team-a"),
        role_manifest(TARGET, profile_rules("exec", ["web-0"]), "team-a"),
        role_binding_manifest(TARGET, "scangate-grants", "team-a"),
    ):
        metadata = manifest["metadata"]
        assert metadata["name"] == f"scangate-{GRANT_ID}"
        assert metadata["labels"] == {
            "app.kubernetes.io/managed-by": "scangate",
            "scangate.dev/grant": GRANT_ID,
            "scangate.dev/installation": "team-a",
        }
        annotations = metadata["annotations"]
        assert annotations["scangate.dev/requester"] == TARGET.requester
        assert annotations["scangate.dev/expires-at"] == "2026-03-01T12:30:05Z"
        assert annotations["scangate.dev/scanner"] == "exec"


def test_service_account_lives_in_the_grants_namespace_and_names_the_target() -> None:
    manifest = service_account_manifest(TARGET, "scangate-grants", "team-a")
    assert manifest["metadata"]["namespace"] == "scangate-grants"
    assert manifest["metadata"]["annotations"]["scangate.dev/target-namespace"] == "payments"
    assert manifest["automountServiceAccountToken"] is False


def test_role_and_binding_live_in_the_target_namespace() -> None:
    assert role_manifest(TARGET, [], "team-a")["metadata"]["namespace"] == "payments"
    binding = role_binding_manifest(TARGET, "scangate-grants", "team-a")
    assert binding["metadata"]["namespace"] == "payments"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": f"scangate-{GRANT_ID}",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"scangate-{GRANT_ID}", "namespace": "scangate-grants"}
    ]


def test_manifests_survive_the_official_clients_models_unchanged() -> None:
    api = client.ApiClient()
    for model, manifest in (
        (client.V1ServiceAccount, service_account_manifest(TARGET, "scangate-grants", "team-a")),
        (
            client.V1Role,
            role_manifest(TARGET, profile_rules("debug", ["web-0", "web-1"]), "team-a"),
        ),
        (client.V1RoleBinding, role_binding_manifest(TARGET, "scangate-grants", "team-a")),
    ):
        serialized = api.sanitize_for_serialization(model.from_dict(manifest))  # type: ignore[no-untyped-call]
        assert serialized == manifest


def test_rfc3339_is_utc_with_z() -> None:
    cet = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 1, 1, 13, 0, tzinfo=cet)) == "2026-01-01T12:00:00Z"
    assert rfc3339(datetime(2026, 1, 1, 12, 0)) == "2026-01-01T12:00:00Z"
