"""Object semantics over the wire: metadata, errors as Status, selectors, patches, cascades."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubesim_clients import raw_http, status_of


def _pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }


def test_created_objects_get_server_metadata(admin_core: client.CoreV1Api) -> None:
    created = admin_core.create_namespaced_config_map("payments", {"metadata": {"name": "cm"}})

    assert created.metadata.uid
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.namespace == "payments"


def test_generate_name_appends_a_random_suffix(admin_core: client.CoreV1Api) -> None:
    body = {"metadata": {"generateName": "scan-"}, "data": {"a": "b"}}

    first = admin_core.create_namespaced_config_map("payments", body)
    second = admin_core.create_namespaced_config_map("payments", body)

    assert first.metadata.name.startswith("scan-")
    assert len(first.metadata.name) == len("scan-") + 5
    assert first.metadata.name != second.metadata.name


def test_duplicate_create_is_already_exists(admin_core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as rejected:
        admin_core.create_namespaced_pod("payments", _pod("web-0"))

    assert rejected.value.status == 409
    assert status_of(rejected.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "web-0" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "web-0", "kind": "pods"},
        "code": 409,
    }


def test_missing_object_is_not_found_with_group(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api, pytest.raises(ApiException) as rejected:
        client.RbacAuthorizationV1Api(api).read_namespaced_role("nope", "payments")

    assert rejected.value.status == 404
    status = status_of(rejected.value)
    assert status["message"] == 'roles.rbac.authorization.k8s.io "nope" not found'
    assert status["details"] == {
        "name": "nope",
        "group": "rbac.authorization.k8s.io",
        "kind": "roles",
    }


def test_create_in_missing_namespace_is_not_found(admin_core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as rejected:
        admin_core.create_namespaced_pod("nowhere", _pod("p"))

    assert rejected.value.status == 404
    assert status_of(rejected.value)["message"] == 'namespaces "nowhere" not found'


def test_invalid_name_is_rejected_with_causes(admin_core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as rejected:
        admin_core.create_namespaced_pod("payments", _pod("Bad_Name"))

    assert rejected.value.status == 422
    status = status_of(rejected.value)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(
        'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase '
        "RFC 1123 subdomain must consist of"
    )
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    assert status["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_label_keys_and_values_are_judged_as_apimachinery_does(
    admin_core: client.CoreV1Api,
) -> None:
    """ValidateLabels: every problem of every key and value is its own cause, in key order; a
    long invalid value is both too long and malformed, and a prefix may hold one '/'."""
    pod = _pod("web-9")
    pod["metadata"]["labels"] = {"a/b/c": "v", "ok": "x" * 63 + "-", "example.com/fine": "yes"}
    with pytest.raises(ApiException) as rejected:
        admin_core.create_namespaced_pod("payments", pod)

    assert rejected.value.status == 422
    causes = status_of(rejected.value)["details"]["causes"]
    messages = [c["message"] for c in causes]
    assert [c["field"] for c in causes] == ["metadata.labels"] * 3
    assert messages[0].startswith('Invalid value: "a/b/c": a qualified name must consist of')
    assert messages[0].endswith(
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    )
    assert messages[1] == f'Invalid value: "{"x" * 63}-": must be no more than 63 characters'
    assert messages[2].startswith(f'Invalid value: "{"x" * 63}-": a valid label must be an empty')


def test_namespace_names_are_dns_labels(admin_core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as rejected:
        admin_core.create_namespace({"metadata": {"name": "a.b"}})

    assert rejected.value.status == 422
    assert "RFC 1123 label" in status_of(rejected.value)["message"]


def test_pod_without_containers_is_invalid(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        response = http.post(
            "/api/v1/namespaces/payments/pods", json={"metadata": {"name": "empty"}, "spec": {}}
        )

    assert response.status_code == 422
    assert response.json()["message"] == ('Pod "empty" is invalid: spec.containers: Required value')


def test_stale_resource_version_is_a_conflict(admin_core: client.CoreV1Api) -> None:
    original = admin_core.read_namespaced_pod("web-0", "payments")
    original.metadata.labels["rev"] = "1"
    admin_core.replace_namespaced_pod("web-0", "payments", original)

    original.metadata.labels["rev"] = "2"  # still carries the old resourceVersion
    with pytest.raises(ApiException) as rejected:
        admin_core.replace_namespaced_pod("web-0", "payments", original)

    assert rejected.value.status == 409
    assert status_of(rejected.value)["message"] == (
        'Operation cannot be fulfilled on pods "web-0": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )


def test_update_keeps_uid_and_moves_resource_version(admin_core: client.CoreV1Api) -> None:
    before = admin_core.read_namespaced_pod("web-0", "payments")
    before.metadata.labels["scanned"] = "yes"

    after = admin_core.replace_namespaced_pod("web-0", "payments", before)

    assert after.metadata.uid == before.metadata.uid
    assert int(after.metadata.resource_version) > int(before.metadata.resource_version)
    assert after.status.phase == "Running"


def test_list_pods_by_label_selector(admin_core: client.CoreV1Api) -> None:
    names = lambda selector: [  # noqa: E731
        p.metadata.name
        for p in admin_core.list_namespaced_pod("payments", label_selector=selector).items
    ]

    assert names("app=web") == ["web-0", "web-1", "web-2"]
    assert names("app=web,tier=frontend") == ["web-0", "web-1"]
    assert names("app in (db, api)") == ["db-0"]
    assert names("app!=web") == ["db-0"]
    assert names("!tier") == ["db-0", "web-2"]


def test_list_pods_by_field_selector(admin_core: client.CoreV1Api) -> None:
    running = admin_core.list_namespaced_pod(
        "payments", label_selector="app=web", field_selector="status.phase=Running"
    )
    named = admin_core.list_namespaced_pod("payments", field_selector="metadata.name=db-0")

    assert [p.metadata.name for p in running.items] == ["web-0", "web-1"]
    assert [p.metadata.name for p in named.items] == ["db-0"]


def test_unsupported_field_selector_is_bad_request(admin_core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as rejected:
        admin_core.list_namespaced_pod("payments", field_selector="spec.image=nginx")

    assert rejected.value.status == 400
    assert status_of(rejected.value)["message"] == "field label not supported: spec.image"


def test_list_across_namespaces(admin_core: client.CoreV1Api) -> None:
    pods = admin_core.list_pod_for_all_namespaces(label_selector="app=api")

    assert [(p.metadata.namespace, p.metadata.name) for p in pods.items] == [("orders", "api-0")]


def test_merge_and_strategic_patches(admin_core: client.CoreV1Api) -> None:
    admin_core.patch_namespaced_pod("web-0", "payments", {"metadata": {"labels": {"x": "1"}}})
    strategic = {"spec": {"containers": [{"name": "scanner", "image": "scanner:3"}]}}
    patched = admin_core.patch_namespaced_pod("web-0", "payments", strategic)

    assert patched.metadata.labels["x"] == "1"
    images = {c.name: c.image for c in patched.spec.containers}
    assert images == {"app": "registry.example/web:1.4.2", "scanner": "scanner:3"}


def test_json_patch(admin_core: client.CoreV1Api) -> None:
    operations = [{"op": "add", "path": "/metadata/labels/patched", "value": "yes"}]

    patched = admin_core.patch_namespaced_pod("db-0", "payments", operations)

    assert patched.metadata.labels == {"app": "db", "patched": "yes"}


def test_deleting_a_namespace_deletes_its_contents(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api:
        core = client.CoreV1Api(api)
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role("payments", {"metadata": {"name": "r"}, "rules": []})
        core.delete_namespace("payments")

        assert core.list_pod_for_all_namespaces(label_selector="app=web").items == []
        assert rbac.list_role_for_all_namespaces().items == []
        with pytest.raises(ApiException) as gone:
            core.read_namespace("payments")
        assert gone.value.status == 404
        assert [p.metadata.name for p in core.list_namespaced_pod("orders").items] == ["api-0"]


def test_every_namespace_gets_a_default_service_account(admin_core: client.CoreV1Api) -> None:
    admin_core.create_namespace({"metadata": {"name": "fresh"}})

    accounts = admin_core.list_namespaced_service_account("fresh").items

    assert [sa.metadata.name for sa in accounts] == ["default"]


def test_secret_string_data_is_stored_as_data(admin_core: client.CoreV1Api) -> None:
    secret = admin_core.read_namespaced_secret("db-credentials", "payments")

    assert secret.type == "Opaque"
    assert secret.data["username"] == "cGF5bWVudHM="


def test_other_resource_types_round_trip(kubesim: KubesimHandle) -> None:
    labels = {"app": "web"}
    with kubesim.admin_client() as api:
        apps = client.AppsV1Api(api)
        deployment = apps.create_namespaced_deployment(
            "payments",
            {
                "metadata": {"name": "web"},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
                    },
                },
            },
        )
        service = client.CoreV1Api(api).create_namespaced_service(
            "payments", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
        )
        policy = client.NetworkingV1Api(api).create_namespaced_network_policy(
            "payments", {"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}
        )
        budget = client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
            "payments",
            {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {}}},
        )

    assert deployment.spec.replicas == 1
    assert deployment.metadata.generation == 1
    assert service.spec.cluster_ip
    assert policy.metadata.uid
    assert budget.spec.min_available == 1


def test_protobuf_body_is_unsupported_media_type(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        response = http.post(
            "/api/v1/namespaces/payments/configmaps",
            content=b"k8s\x00\x0a\x00",
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )

    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def test_discovery_lists_served_groups(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api:
        groups = client.ApisApi(api).get_api_versions()
        version = client.VersionApi(api).get_code()
        core = client.CoreV1Api(api).get_api_resources()

    names = {g.name for g in groups.groups}
    assert {"apps", "rbac.authorization.k8s.io", "authorization.k8s.io", "policy"} <= names
    assert version.git_version.startswith("v1.")
    assert "pods/exec" in {r.name for r in core.resources}


def test_list_pages_with_limit_and_continue(admin_core: client.CoreV1Api) -> None:
    first = admin_core.list_namespaced_pod("payments", limit=3)
    rest = admin_core.list_namespaced_pod("payments", limit=3, _continue=first.metadata._continue)

    assert [p.metadata.name for p in first.items] == ["db-0", "web-0", "web-1"]
    assert first.metadata.remaining_item_count == 1
    assert [p.metadata.name for p in rest.items] == ["web-2"]
    assert rest.metadata._continue is None


def test_delete_collection_by_label(admin_core: client.CoreV1Api) -> None:
    admin_core.delete_collection_namespaced_pod("payments", label_selector="app=web")

    assert [p.metadata.name for p in admin_core.list_namespaced_pod("payments").items] == ["db-0"]


def test_delete_precondition_on_uid_is_a_conflict(admin_core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as rejected:
        admin_core.delete_namespaced_pod(
            "web-0", "payments", body={"preconditions": {"uid": "not-the-uid"}}
        )

    assert rejected.value.status == 409
    assert (
        "Precondition failed: UID in precondition: not-the-uid"
        in (status_of(rejected.value)["message"])
    )


def test_server_side_apply_creates_then_merges(kubesim: KubesimHandle) -> None:
    path = "/api/v1/namespaces/payments/configmaps/applied?fieldManager=test"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    with raw_http(kubesim) as http:
        created = http.patch(
            path,
            content=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {a: '1'}\n",
            headers=headers,
        )
        merged = http.patch(
            path,
            content=b'{"apiVersion": "v1", "kind": "ConfigMap", "data": {"b": "2"}}',
            headers=headers,
        )

    assert created.status_code == 201
    assert merged.json()["data"] == {"a": "1", "b": "2"}


def test_unknown_patch_type_is_unsupported_media_type(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        response = http.patch(
            "/api/v1/namespaces/payments/pods/web-0",
            content=b"{}",
            headers={"Content-Type": "application/json"},
        )

    assert response.status_code == 415
    assert "application/strategic-merge-patch+json" in response.json()["message"]


def test_status_subresource_changes_only_status(admin_core: client.CoreV1Api) -> None:
    patched = admin_core.patch_namespaced_pod_status(
        "web-2", "payments", {"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}}
    )

    assert patched.status.phase == "Running"
    assert "x" not in patched.metadata.labels
