"""`helm install` into kubesim creates every object, as the cluster (not Helm) reports them."""

from __future__ import annotations

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from kubesim.pytest_plugin import KubesimHandle
from tests.chart.helm_runner import production_values
from tests.support.chart import InstallScangateChart

CHART_SELECTOR = "app.kubernetes.io/instance=scangate"


def test_default_install_creates_the_grants_namespace_identity_and_api(
    install_scangate_chart: InstallScangateChart, fresh_cluster: KubesimHandle
) -> None:
    install_scangate_chart(base=None, cluster=fresh_cluster)
    api = fresh_cluster.admin_client()
    core, apps, rbac = k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.RbacAuthorizationV1Api(api)
    policy = k8s.PolicyV1Api(api)

    grants = core.read_namespace("scangate-grants")
    assert grants.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert grants.metadata.annotations["meta.helm.sh/release-name"] == "scangate"
    account = core.read_namespaced_service_account("scangate", "scangate")
    assert account.automount_service_account_token is False
    role = rbac.read_namespaced_role("scangate-grants", "scangate-grants")
    assert {r.resources[0] for r in role.rules} == {"serviceaccounts", "serviceaccounts/token"}
    binding = rbac.read_namespaced_role_binding("scangate-grants", "scangate-grants")
    assert (binding.subjects[0].name, binding.subjects[0].namespace) == ("scangate", "scangate")
    deployment = apps.read_namespaced_deployment("scangate", "scangate")
    assert deployment.spec.replicas == 2
    assert deployment.spec.template.spec.service_account_name == "scangate"
    service = core.read_namespaced_service("scangate", "scangate")
    assert service.spec.ports[0].target_port == "http"
    assert "scangate.yaml" in core.read_namespaced_config_map("scangate-config", "scangate").data
    assert core.read_namespaced_secret("scangate-api-keys", "scangate").type == "Opaque"
    assert policy.read_namespaced_pod_disruption_budget("scangate", "scangate").spec.max_unavailable
    cluster_roles = rbac.list_cluster_role(label_selector=CHART_SELECTOR).items
    assert cluster_roles == []


def test_production_install_creates_roles_in_every_target_namespace(
    install_scangate_chart: InstallScangateChart, fresh_cluster: KubesimHandle
) -> None:
    install_scangate_chart(production_values(), base=None, cluster=fresh_cluster)
    api = fresh_cluster.admin_client()
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    networking = k8s.NetworkingV1Api(api)

    for namespace in ("payments", "orders"):
        role = rbac.read_namespaced_role("scangate-target", namespace)
        resources = {resource for rule in role.rules for resource in rule.resources}
        assert {"pods/exec", "pods/attach", "pods/ephemeralcontainers", "pods/log"} <= resources
        binding = rbac.read_namespaced_role_binding("scangate-target", namespace)
        assert binding.role_ref.name == "scangate-target"
    assert core.read_namespace("scangate-grants").metadata.labels["team"] == "platform-security"
    assert networking.read_namespaced_network_policy("scangate", "scangate").spec.egress
    labelled = rbac.list_role_binding_for_all_namespaces(label_selector=CHART_SELECTOR).items
    assert {(b.metadata.namespace, b.metadata.name) for b in labelled} == {
        ("scangate-grants", "scangate-grants"),
        ("payments", "scangate-target"),
        ("orders", "scangate-target"),
    }


def test_install_into_an_existing_grants_namespace_leaves_it_alone(
    install_scangate_chart: InstallScangateChart, kubesim: KubesimHandle
) -> None:
    installed = install_scangate_chart({"grantsNamespace": {"create": False}})
    assert installed.release.of_kind("Namespace") == []
    namespace = k8s.CoreV1Api(kubesim.admin_client()).read_namespace("scangate-grants")
    assert "meta.helm.sh/release-name" not in (namespace.metadata.annotations or {})


def test_cluster_wide_install_binds_one_cluster_role(
    install_scangate_chart: InstallScangateChart, kubesim: KubesimHandle
) -> None:
    install_scangate_chart({"targetNamespaces": ["*"]})
    rbac = k8s.RbacAuthorizationV1Api(kubesim.admin_client())
    (role,) = rbac.list_cluster_role(label_selector=CHART_SELECTOR).items
    (binding,) = rbac.list_cluster_role_binding(label_selector=CHART_SELECTOR).items
    assert binding.role_ref.name == role.metadata.name
    assert rbac.list_role_for_all_namespaces(label_selector=CHART_SELECTOR).items[
        0
    ].metadata.namespace == ("scangate-grants")


def test_install_over_tls_gives_a_working_identity_for_the_service(
    install_scangate_chart: InstallScangateChart, kubesim_tls: KubesimHandle
) -> None:
    """What a full grant flow run by scangate as the chart's identity starts from."""
    installed = install_scangate_chart(cluster=kubesim_tls)
    config = installed.cluster_config()
    assert config["grants_namespace"] == "scangate-grants"
    api = k8s_config.new_client_from_config(config_file=config["kubeconfig"])
    try:
        core = k8s.CoreV1Api(api)
        assert core.read_namespace("payments").metadata.name == "payments"
        names = {pod.metadata.name for pod in core.list_namespaced_pod("payments").items}
        assert {"web-0", "web-1", "db-0"} <= names
    finally:
        api.close()
