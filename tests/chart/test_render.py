"""What the chart renders (read back from real `helm install` releases in kubesim), for the
default values, the production-like values file and the other supported shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.settings import load_settings
from kubesim.pytest_plugin import KubesimHandle
from tests.chart.chart_checks import (
    assert_hardened_pod,
    assert_probes,
    assert_standard_labels,
    containers,
    deployment,
    env_of,
    rendered_api_keys,
    rendered_config,
    secret_value,
)
from tests.chart.helm_runner import production_values
from tests.support.chart import InstallScangateChart

SQLITE_ON_EMPTYDIR = {
    "replicaCount": 1,
    "database": {"existingSecret": "", "sqlite": {"persistence": {"enabled": False}}},
}


def test_default_values_render_a_postgresql_deployment_with_two_hardened_replicas(
    install_scangate_chart: InstallScangateChart, fresh_cluster: KubesimHandle
) -> None:
    release = install_scangate_chart(base=None, cluster=fresh_cluster).release

    assert release.kinds() == {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        # The grant guard's registration (test_guard_chart.py), on by default.
        "ValidatingWebhookConfiguration",
        # On by default: only the API and the guard's ports are reachable.
        "NetworkPolicy",
    }
    policy = release.get("NetworkPolicy", "scangate")["spec"]
    assert policy["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}]},
        {"ports": [{"port": "guard", "protocol": "TCP"}]},
    ]
    assert_standard_labels(release)
    assert_hardened_pod(release)
    assert_probes(release)
    spec = deployment(release)["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    for container in containers(release):
        database = env_of(container)["SCANGATE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert database == {"name": "scangate-database", "key": "database-url"}
    assert release.get("PodDisruptionBudget", "scangate")["spec"]["maxUnavailable"] == 1
    namespace = release.get("Namespace", "scangate-grants")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert rendered_api_keys(release, "scangate-api-keys") == []


def test_migrations_run_in_an_init_container_before_the_api_starts_without_them(
    install_scangate_chart: InstallScangateChart,
) -> None:
    pod = deployment(install_scangate_chart().release)["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (api,) = pod["containers"]
    assert migrate["args"] == ["migrate"]
    assert migrate["image"] == api["image"]
    assert env_of(migrate) == env_of(api)
    assert api["args"] == ["serve", "--host", "0.0.0.0", "--port", "8080", "--no-migrate"]
    assert "command" not in api, "the image's ENTRYPOINT (scangate) must stay in charge"


def test_configuration_has_the_design_keys_and_the_service_accepts_it(
    install_scangate_chart: InstallScangateChart,
    fresh_cluster: KubesimHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = install_scangate_chart(production_values(), base=None, cluster=fresh_cluster)
    release = installed.release
    config = rendered_config(release)

    assert set(config) == {
        "clusters",
        "policies",
        "oidc",
        "admins",
        "denied_namespaces",
        "sidecar_container",
        "guard",
        "installation_id",
    }
    # The value the chart's admission policy requires on every object scangate writes.
    assert config["installation_id"] == "scangate-grants"
    assert config["clusters"] == [
        {
            "name": "prod-eu1",
            "server": "https://k8s-api.prod-eu1.example.com:6443",
            "grants_namespace": "scangate-grants",
        }
    ]  # no kubeconfig: in-cluster credentials
    assert config["policies"] == production_values()["config"]["policies"]
    assert {"scangate", "scangate-grants", "kube-system"} <= set(config["denied_namespaces"])

    # Feed the rendered file and Secret to the service's own settings loader, as the pod does.
    config_file = tmp_path / "scangate.yaml"
    config_file.write_text(release.get("ConfigMap", "scangate-config")["data"]["scangate.yaml"])
    monkeypatch.setenv(
        "SCANGATE_API_KEYS", secret_value(release, "scangate-api-keys", "api-keys.json")
    )
    monkeypatch.setenv("SCANGATE_DATABASE_URL", "postgresql+psycopg://scangate@db/scangate")
    settings = load_settings(config_file)
    assert [key.name for key in settings.api_keys] == ["ci-payments", "root"]
    assert settings.clusters[0].kubeconfig is None
    assert settings.admins == ["apikey:root"]
    assert settings.policies[1].claims == {
        "ref": ["refs/heads/main"],
        "environment": ["production", "production-*"],
    }
    assert {"scangate", "scangate-grants"} <= settings.never_grantable_namespaces


def test_production_values_render_the_full_deployment(
    install_scangate_chart: InstallScangateChart, fresh_cluster: KubesimHandle
) -> None:
    release = install_scangate_chart(production_values(), base=None, cluster=fresh_cluster).release

    assert_standard_labels(release)
    assert_hardened_pod(release)
    spec = deployment(release)["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    assert pod["containers"][0]["image"] == (
        "registry.example.com/security/scangate@" + production_values()["image"]["digest"]
    )
    assert pod["imagePullSecrets"] == [{"name": "registry-example-com"}]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    env = env_of(pod["containers"][0])
    assert env["SCANGATE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "scangate-postgresql",
        "key": "url",
    }
    assert env["SCANGATE_DEFAULT_TTL_SECONDS"]["value"] == "600"
    assert {
        (r["metadata"]["namespace"], r["metadata"]["name"]) for r in release.of_kind("Role")
    } == {
        ("scangate-grants", "scangate-grants"),
        ("payments", "scangate-target"),
        ("orders", "scangate-target"),
    }
    assert release.of_kind("ClusterRole") == []
    keys = rendered_api_keys(release, "scangate-api-keys")
    assert [k["name"] for k in keys] == ["ci-payments", "root"]
    assert all(len(k["sha256"]) == 64 for k in keys)
    assert release.get("Namespace", "scangate-grants")["metadata"]["labels"]["team"] == (
        "platform-security"
    )


def test_network_policy_allows_only_the_api_port_in_and_the_needed_destinations_out(
    install_scangate_chart: InstallScangateChart, fresh_cluster: KubesimHandle
) -> None:
    release = install_scangate_chart(production_values(), base=None, cluster=fresh_cluster).release
    policy = release.get("NetworkPolicy", "scangate")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    ingress, guard = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(ingress["from"]) == 2
    # The grant guard's port is open to any source: the API server's addresses are unknown.
    assert guard == {"ports": [{"port": "guard", "protocol": "TCP"}]}
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (5432, "TCP")}
    database = next(r for r in policy["egress"] if r["ports"][0]["port"] == 5432)
    assert database["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]


def test_sqlite_mode_runs_one_replica_that_is_replaced_not_rolled(
    install_scangate_chart: InstallScangateChart,
) -> None:
    release = install_scangate_chart(SQLITE_ON_EMPTYDIR).release
    spec = deployment(release)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    for container in containers(release):
        url = env_of(container)["SCANGATE_DATABASE_URL"]["value"]
        assert url == "sqlite:////var/lib/scangate/scangate.db"
        assert {"name": "data", "mountPath": "/var/lib/scangate"} in container["volumeMounts"]
    assert release.of_kind("PodDisruptionBudget") == []  # pointless for one replica
    assert sorted(s["metadata"]["name"] for s in release.of_kind("Secret")) == [
        "scangate-api-keys",
        "scangate-guard-tls",
    ]


def test_a_database_url_value_is_kept_in_a_chart_secret_not_in_the_pod_spec(
    install_scangate_chart: InstallScangateChart,
) -> None:
    url = "postgresql+psycopg://scangate:s3cret@db.example.com:5432/scangate"
    release = install_scangate_chart({"database": {"existingSecret": "", "url": url}}).release
    assert secret_value(release, "scangate-database", "database-url") == url
    assert "s3cret" not in yaml.safe_dump(deployment(release))
    env = env_of(containers(release)[0])
    assert env["SCANGATE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "scangate-database"


def test_existing_api_key_secret_replaces_the_chart_secret(
    install_scangate_chart: InstallScangateChart,
) -> None:
    values = {"apiKeys": {"existingSecret": "ci-keys", "existingSecretKey": "keys.json"}}
    release = install_scangate_chart(values).release
    # Only the grant guard's certificate remains.
    assert [s["metadata"]["name"] for s in release.of_kind("Secret")] == ["scangate-guard-tls"]
    reference = env_of(containers(release)[0])["SCANGATE_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "ci-keys", "key": "keys.json"}


def test_names_follow_the_release(install_scangate_chart: InstallScangateChart) -> None:
    installed = install_scangate_chart(release="ci-gate", namespace="security")
    release = installed.release
    assert installed.service_account == "ci-gate-scangate"
    assert deployment(release)["metadata"]["name"] == "ci-gate-scangate"
    for binding in release.of_kind("RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "ci-gate-scangate", "namespace": "security"}
        ]
    service = release.get("Service", "ci-gate-scangate")
    assert service["spec"]["selector"] == deployment(release)["spec"]["selector"]["matchLabels"]


def test_notes_explain_how_to_reach_the_api_create_a_key_and_request_a_grant(
    install_scangate_chart: InstallScangateChart,
) -> None:
    notes = install_scangate_chart().release.notes
    assert "kubectl -n scangate port-forward svc/scangate 8080:8080" in notes
    assert "scangate keys create" in notes
    assert "curl -s -X POST $SCANGATE_URL/v1/grants" in notes
    assert '"namespace": "payments"' in notes
    assert '"scanner": "exec"' in notes
    assert "/kubeconfig" in notes
    assert "/revoke" in notes
