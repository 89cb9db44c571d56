"""Bad values are refused by Helm itself: values.schema.json first, template `fail` checks for
what a schema cannot express (and for installs that skip schema validation).

`helm lint` shows *where* a problem is (values.yaml = the schema, templates/ = rendering) but
helm-sdkpy drops its messages, and lint mode turns template `fail` into a no-op; so every case
also runs `helm install` against kubesim, which fails before creating anything and says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubesim.pytest_plugin import KubesimHandle
from tests.chart.helm_runner import (
    IMAGE_VALUES,
    LINT_ERROR,
    HelmActionFailed,
    lint_chart,
    merge_values,
)
from tests.support.chart import InstallScangateChart

POLICY = {"name": "p", "subjects": ["apikey:ci"], "namespaces": ["payments"]}
HOOK = {
    "name": "siem",
    "url": "https://siem.example.com/hook",
    "secretRef": {"name": "h", "key": "k"},
}
SQLITE = {"existingSecret": "", "url": ""}

# name -> (values over the chart defaults, what Helm's schema error must mention)
SCHEMA_REJECTS: dict[str, tuple[dict[str, Any], str]] = {
    "replica-count-as-string": ({"replicaCount": "two"}, "/replicaCount"),
    "zero-replicas": ({"replicaCount": 0}, "/replicaCount"),
    "target-namespaces-as-string": ({"targetNamespaces": "payments"}, "/targetNamespaces"),
    "create-as-string": ({"grantsNamespace": {"create": "yes"}}, "/grantsNamespace/create"),
    "unknown-scanner-profile": ({"scanners": ["exec", "nmap"]}, "/scanners/1"),
    "no-scanner-profile": ({"scanners": []}, "/scanners"),
    "approval-without-approvers": (
        {"config": {"policies": [{**POLICY, "scanners": ["exec"], "approval": {"required": 1}}]}},
        "/config/policies/0/approval",
    ),
    "unknown-profile-in-a-policy": (
        {"config": {"policies": [{**POLICY, "scanners": ["root-shell"]}]}},
        "/config/policies/0/scanners/0",
    ),
    "sqlite-with-two-replicas": ({"replicaCount": 2, "database": SQLITE}, "/database"),
    "sqlite-with-three-replicas": ({"replicaCount": 3, "database": SQLITE}, "/database"),
    "both-database-sources": (
        {"database": {"url": "postgresql+psycopg://u:p@db/scangate"}},
        "/database",
    ),
    "non-postgresql-url": (
        {"database": {"existingSecret": "", "url": "mysql://db/scangate"}},
        "/database/url",
    ),
    "misspelled-top-level-key": ({"tagetNamespaces": ["payments"]}, "tagetNamespaces"),
    "misspelled-nested-key": ({"database": {"existingSecrets": "x"}}, "existingSecrets"),
    "cluster-wide-mixed-with-names": ({"targetNamespaces": ["*", "payments"]}, "/targetNamespaces"),
    "invalid-namespace-name": ({"targetNamespaces": ["Payments_NS"]}, "/targetNamespaces/0"),
    "writable-root-filesystem": (
        {"securityContext": {"readOnlyRootFilesystem": False}},
        "/securityContext/readOnlyRootFilesystem",
    ),
    "privilege-escalation": (
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "/securityContext/allowPrivilegeEscalation",
    ),
    "capabilities-not-dropped": (
        {"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
        "/securityContext/capabilities/drop",
    ),
    "root-pod": ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext"),
    "unconfined-seccomp": (
        {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
        "/podSecurityContext/seccompProfile/type",
    ),
    "no-memory-limit": ({"resources": {"limits": {"memory": None}}}, "/resources/limits"),
    "api-key-hash-not-hex": (
        {"apiKeys": {"keys": [{"name": "ci", "sha256": "not-a-sha256"}]}},
        "/apiKeys/keys/0/sha256",
    ),
    "plain-http-cluster-server": (
        {"config": {"cluster": {"server": "http://k8s.example.com"}}},
        "/config/cluster/server",
    ),
    "glob-admin": ({"config": {"admins": ["apikey:*"]}}, "/config/admins/0"),
    "unknown-pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "unknown-notification-event": (
        {"config": {"notifications": [{**HOOK, "events": ["requested", "activated"]}]}},
        "at '/config/notifications/0/events/1': value must be one of 'requested', 'approval",
    ),
    "unknown-notification-format": (
        {"config": {"notifications": [{**HOOK, "format": "teams"}]}},
        "at '/config/notifications/0/format': value must be one of 'cloudevents', 'slack'",
    ),
    "notification-secret-in-clear": (
        {"config": {"notifications": [{**HOOK, "secret": "in-the-values"}]}},
        "additional properties 'secret' not allowed",
    ),
    "signed-notification-without-secret-ref": (
        {"config": {"notifications": [{"name": "siem", "url": "https://siem.example.com/h"}]}},
        "at '/config/notifications/0': missing property 'secretRef'",
    ),
    "notification-without-url": (
        {"config": {"notifications": [{"name": "chat", "format": "slack"}]}},
        "missing property 'urlSecretRef'",
    ),
    "notification-egress-without-ports": (
        {"networkPolicy": {"egress": {"notifications": {"cidrs": [], "ports": []}}}},
        "/networkPolicy/egress/notifications/ports",
    ),
}

# name -> (values, what the template's `fail` message must say); the schema accepts these.
TEMPLATE_REFUSES: dict[str, tuple[dict[str, Any], str]] = {
    "grants-namespace-as-target": (
        {"targetNamespaces": ["scangate-grants"]},
        'targetNamespaces contains the grants namespace "scangate-grants"',
    ),
    "release-namespace-as-target": (
        {"targetNamespaces": ["scangate"]},
        'targetNamespaces contains the release namespace "scangate"',
    ),
    "denied-namespace-as-target": (
        {"targetNamespaces": ["kube-system"]},
        'targetNamespaces contains "kube-system"',
    ),
    "grants-namespace-is-the-release-namespace": (
        {"grantsNamespace": {"name": "scangate"}},
        'grantsNamespace.name "scangate" is the release namespace',
    ),
    "policy-uses-a-disabled-profile": (
        {"scanners": ["exec"], "config": {"policies": [{**POLICY, "scanners": ["debug"]}]}},
        'config.policies[0].scanners contains "debug", which is not enabled',
    ),
    "policy-names-an-unknown-cluster": (
        {"config": {"policies": [{**POLICY, "clusters": ["other"], "scanners": ["exec"]}]}},
        'config.policies[0].clusters contains "other"',
    ),
    "two-notification-targets-of-one-name": (
        {"config": {"notifications": [HOOK, HOOK]}},
        'config.notifications[1].name "siem" is used by an earlier target',
    ),
    "policy-grants-the-release-namespace": (
        {"config": {"policies": [{**POLICY, "namespaces": ["scangate"], "scanners": ["exec"]}]}},
        'config.policies[0].namespaces contains "scangate", which is denied',
    ),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_REJECTS))
def test_lint_reports_the_schema_violation_in_values(helm_home: Path, case: str) -> None:
    values, _ = SCHEMA_REJECTS[case]
    report = lint_chart(helm_home, merge_values(IMAGE_VALUES, values))
    assert "values.yaml" in report.paths_with(LINT_ERROR), report


@pytest.mark.parametrize("case", sorted(SCHEMA_REJECTS))
def test_install_is_refused_by_the_schema_naming_the_bad_value(
    install_scangate_chart: InstallScangateChart, case: str
) -> None:
    values, where = SCHEMA_REJECTS[case]
    with pytest.raises(HelmActionFailed) as refused:
        install_scangate_chart(values, base=None)
    assert "don't meet the specifications of the schema" in refused.value.message
    assert where in refused.value.message


@pytest.mark.parametrize("case", sorted(TEMPLATE_REFUSES))
def test_install_is_refused_by_the_chart_with_a_reason(
    install_scangate_chart: InstallScangateChart, case: str
) -> None:
    values, reason = TEMPLATE_REFUSES[case]
    with pytest.raises(HelmActionFailed) as refused:
        install_scangate_chart(values, base=None)
    assert "execution error" in refused.value.message
    assert reason in refused.value.message


def test_sqlite_with_two_replicas_is_refused_even_without_schema_validation(
    install_scangate_chart: InstallScangateChart,
) -> None:
    with pytest.raises(HelmActionFailed) as refused:
        install_scangate_chart(
            {"replicaCount": 2, "database": SQLITE}, base=None, skip_schema_validation=True
        )
    assert "the embedded SQLite database only works with replicaCount 1" in refused.value.message


def test_nothing_is_created_when_the_chart_refuses(
    install_scangate_chart: InstallScangateChart, kubesim: KubesimHandle
) -> None:
    from kubernetes import client as k8s

    with pytest.raises(HelmActionFailed):
        install_scangate_chart({"replicaCount": 2, "database": SQLITE}, base=None)
    core = k8s.CoreV1Api(kubesim.admin_client())
    chart_objects = "app.kubernetes.io/instance=scangate"
    assert (
        core.list_namespaced_service_account("scangate", label_selector=chart_objects).items == []
    )
    assert core.list_namespaced_config_map("scangate", label_selector=chart_objects).items == []
