"""The grant guard's registration in the chart, read back from real `helm install` / `helm
upgrade` releases in kubesim: a ValidatingWebhookConfiguration that only grant identities reach,
failing closed, with a serving certificate that works on a fresh install and survives upgrades.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from app.settings import load_settings
from kubesim.pytest_plugin import KubesimHandle
from tests.chart.chart_checks import assert_standard_labels, deployment, rendered_config
from tests.chart.helm_runner import (
    IMAGE_VALUES,
    Release,
    default_values,
    install_then_upgrade_chart,
    merge_values,
)
from tests.support.chart import InstallScangateChart

WEBHOOK_CONFIGURATION = "scangate-guard-scangate"
BASE: dict[str, Any] = {
    "grantsNamespace": {"create": False},
    "targetNamespaces": ["payments"],
    "replicaCount": 1,
    "database": {"existingSecret": "", "sqlite": {"persistence": {"enabled": False}}},
}


def _webhook(release: Release) -> dict[str, Any]:
    configuration = release.get("ValidatingWebhookConfiguration", WEBHOOK_CONFIGURATION)
    [webhook] = configuration["webhooks"]
    return webhook


def _certificate(data: dict[str, str], key: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(data[key]))


def test_the_webhook_is_registered_for_grant_identities_only_and_fails_closed(
    install_scangate_chart: InstallScangateChart,
) -> None:
    release = install_scangate_chart(BASE).release
    assert_standard_labels(release)
    webhook = _webhook(release)
    assert webhook["name"] == "guard.scangate.dev"
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["sideEffects"] == "NoneOnDryRun"
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["timeoutSeconds"] == 5
    assert webhook["matchConditions"] == [
        {
            "name": "grant-identities-only",
            "expression": "request.userInfo.username.startsWith("
            "'system:serviceaccount:scangate-grants:scangate-')",
        }
    ]
    assert webhook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CONNECT"],
            "resources": ["pods/exec", "pods/attach"],
            "scope": "Namespaced",
        },
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["UPDATE"],
            "resources": ["pods/ephemeralcontainers"],
            "scope": "Namespaced",
        },
    ]
    assert webhook["clientConfig"]["service"] == {
        "name": "scangate",
        "namespace": "scangate",
        "path": "/admission/default",
        "port": 443,
    }
    service_ports = {p["name"]: p for p in release.get("Service", "scangate")["spec"]["ports"]}
    assert service_ports["guard"] == {
        "name": "guard", "port": 443, "targetPort": "guard", "protocol": "TCP"
    }  # fmt: skip


def test_a_fresh_install_generates_a_ca_and_a_serving_certificate_for_the_service(
    install_scangate_chart: InstallScangateChart, tmp_path: Path
) -> None:
    release = install_scangate_chart(BASE).release
    secret = release.get("Secret", "scangate-guard-tls")
    assert secret["type"] == "kubernetes.io/tls"
    ca = _certificate(secret["data"], "ca.crt")
    serving = _certificate(secret["data"], "tls.crt")
    # The API server verifies the serving certificate with the caBundle, for the Service name.
    assert _webhook(release)["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    serving.verify_directly_issued_by(ca)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "scangate.scangate.svc" in names.get_values_for_type(x509.DNSName)
    assert serving.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)

    # The pod mounts the serving pair only (never the CA key) where its config points.
    pod = deployment(release)["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "guard-tls"]
    assert volume["secret"] == {
        "secretName": "scangate-guard-tls",
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
    }
    [container] = pod["containers"]
    assert {"name": "guard", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    config_path = tmp_path / "scangate.yaml"
    config_path.write_text(yaml.safe_dump(rendered_config(release)))
    guard = load_settings(config_path).guard
    assert (guard.enabled, guard.port) == (True, 8443)
    assert guard.cert_file == "/etc/scangate-guard-tls/tls.crt"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["guard-tls"]["mountPath"] == "/etc/scangate-guard-tls"


@pytest.fixture
def helm_kubeconfig(kubesim: KubesimHandle, tmp_path: Path) -> Path:
    kubesim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scangate"}})
    # Helm (client-go) sends no bearer token over plain HTTP, like kubectl.
    return kubesim.token_kubeconfig(
        kubesim.admin_token, tmp_path / "helm.kubeconfig", for_kubectl=True
    )


def test_upgrades_keep_the_ca_and_renew_the_serving_certificate_from_it(
    helm_home: Path, helm_kubeconfig: Path
) -> None:
    values = merge_values(merge_values(default_values(), IMAGE_VALUES), BASE)
    # The installed certificate has 365 days left: renewing 400 days early is due now.
    renewing = merge_values(values, {"guard": {"certificate": {"renewBeforeDays": 400}}})
    installed, upgraded, renewed = install_then_upgrade_chart(
        helm_home, kubeconfig=helm_kubeconfig, values=values, upgrades=[values, renewing]
    )
    first = installed.get("Secret", "scangate-guard-tls")["data"]
    # A plain upgrade changes nothing: same CA, same serving pair, same caBundle.
    assert upgraded.get("Secret", "scangate-guard-tls")["data"] == first
    assert _webhook(upgraded)["clientConfig"]["caBundle"] == first["ca.crt"]
    # Within renewBeforeDays of expiry: a new serving certificate from the same CA, so the
    # caBundle the API server holds keeps verifying it.
    third = renewed.get("Secret", "scangate-guard-tls")["data"]
    assert third["ca.crt"] == first["ca.crt"]
    assert third["tls.crt"] != first["tls.crt"]
    _certificate(third, "tls.crt").verify_directly_issued_by(_certificate(first, "ca.crt"))
    assert _webhook(renewed)["clientConfig"]["caBundle"] == first["ca.crt"]


def test_an_existing_secret_and_ca_bundle_replace_the_generated_certificate(
    install_scangate_chart: InstallScangateChart,
) -> None:
    bundle = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    values = merge_values(
        BASE,
        {"guard": {"certificate": {"source": "existingSecret", "existingSecret": "my-guard-tls",
                                    "caBundle": bundle.decode()}}},
    )  # fmt: skip
    release = install_scangate_chart(values).release
    assert not [s for s in release.of_kind("Secret") if "guard" in s["metadata"]["name"]]
    assert _webhook(release)["clientConfig"]["caBundle"] == bundle.decode()
    pod = deployment(release)["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "guard-tls"]
    assert volume["secret"]["secretName"] == "my-guard-tls"


def test_the_guard_can_be_turned_off(install_scangate_chart: InstallScangateChart) -> None:
    release = install_scangate_chart(merge_values(BASE, {"guard": {"enabled": False}})).release
    assert "ValidatingWebhookConfiguration" not in release.kinds()
    assert "guard" not in rendered_config(release)
    ports = [p["name"] for p in release.get("Service", "scangate")["spec"]["ports"]]
    assert ports == ["http"]


def test_the_api_can_serve_https_with_the_guards_certificate(
    install_scangate_chart: InstallScangateChart, tmp_path: Path
) -> None:
    release = install_scangate_chart(merge_values(BASE, {"apiTls": {"enabled": True}})).release
    config_path = tmp_path / "scangate.yaml"
    config_path.write_text(yaml.safe_dump(rendered_config(release)))
    api_tls = load_settings(config_path).api_tls
    assert api_tls is not None
    assert (api_tls.cert_file, api_tls.key_file) == (
        "/etc/scangate-guard-tls/tls.crt",
        "/etc/scangate-guard-tls/tls.key",
    )
    [container] = deployment(release)["spec"]["template"]["spec"]["containers"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"


def test_policies_carry_the_guards_debug_image_rules_into_the_configuration(
    install_scangate_chart: InstallScangateChart, tmp_path: Path
) -> None:
    policy = {
        "name": "payments-ci", "subjects": ["apikey:ci"], "namespaces": ["payments"],
        "scanners": ["debug"], "debug_images": ["busybox:1.36", "registry.example.com/scan/*"],
        "debug_allow_root": False, "allow_pods_with": ["configmap_volumes"],
    }  # fmt: skip
    values = merge_values(BASE, {"scanners": ["debug"], "config": {"policies": [policy]}})
    release = install_scangate_chart(values).release
    config_path = tmp_path / "scangate.yaml"
    config_path.write_text(yaml.safe_dump(rendered_config(release)))
    [loaded] = load_settings(config_path).policies
    assert loaded.debug_images == ["busybox:1.36", "registry.example.com/scan/*"]
    assert loaded.allow_pods_with == ["configmap_volumes"]
