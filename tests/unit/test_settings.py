"""Configuration: the README's keys load, and every bad value stops startup naming its key."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import ConfigError, Settings, load_settings

HASH = hashlib.sha256(b"sg_example").hexdigest()

DESIGN_EXAMPLE = f"""
database_url: sqlite:///scangate.db
clusters:
  - name: default
    kubeconfig: /path/admin.kubeconfig
    context: null
    server: null
    grants_namespace: scangate-grants
api_keys:
  - {{name: ci-payments, sha256: "{HASH}"}}
oidc:
  - {{issuer: "https://token.actions.githubusercontent.com", audience: scangate}}
admins: ["apikey:root"]
policies:
  - name: payments-ci
    subjects: ["apikey:ci-payments", "oidc:https://token.actions.githubusercontent.com#repo:acme/payments:*"]
    clusters: [default]
    namespaces: [payments, "payments-*"]
    scanners: [exec, debug]
    max_ttl_seconds: 3600
    max_pods: 20
denied_namespaces: [kube-system, kube-public, kube-node-lease]
sidecar_container: scanner
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own SCANGATE_* variables must not leak into these tests, and a
    # scangate.yaml in the working directory must not be picked up.
    import os

    for name in list(os.environ):
        if name.startswith("SCANGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def policy(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "p",
        "subjects": ["apikey:ci"],
        "namespaces": ["payments"],
        "scanners": ["exec"],
    }
    base.update(overrides)
    return base


def problems_of(tmp_path: Path, data: dict[str, Any] | str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, data))
    return dict(caught.value.problems)


def test_design_md_example_loads_with_every_key(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, DESIGN_EXAMPLE))

    assert settings.database_url == "sqlite:///scangate.db"
    assert settings.clusters[0].kubeconfig == "/path/admin.kubeconfig"
    assert settings.api_keys[0].name == "ci-payments"
    assert settings.api_keys[0].sha256 == HASH
    assert settings.oidc[0].audience == "scangate"
    assert settings.admins == ["apikey:root"]
    assert settings.policies[0].namespaces == ["payments", "payments-*"]
    assert settings.policies[0].max_lifetime_seconds == 3600  # defaults to max_ttl_seconds
    assert settings.sidecar_container == "scanner"
    assert settings.never_grantable_namespaces == {
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "scangate-grants",
    }


def test_missing_default_file_gives_a_working_embedded_default() -> None:
    settings = load_settings()

    assert settings.database_url == "sqlite:///scangate.db"
    assert [c.name for c in settings.clusters] == ["default"]
    assert settings.clusters[0].kubeconfig is None  # in-cluster config
    assert settings.policies == []  # deny by default
    assert settings.default_ttl_seconds == 900


def test_explicitly_named_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(tmp_path / "absent.yaml")


def test_config_file_is_found_through_scangate_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, {"sidecar_container": "auditor"})
    monkeypatch.setenv("SCANGATE_CONFIG", str(path))

    assert load_settings().sidecar_container == "auditor"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"database_url": "sqlite:///from-file.db"})
    monkeypatch.setenv("SCANGATE_DATABASE_URL", "postgresql+psycopg://scangate@db/scangate")
    monkeypatch.setenv("SCANGATE_REAPER__ENABLED", "false")

    settings = load_settings(path)

    assert settings.database_url == "postgresql+psycopg://scangate@db/scangate"
    assert settings.reaper.enabled is False


def test_keyword_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANGATE_DEFAULT_TTL_SECONDS", "600")

    assert load_settings(default_ttl_seconds=120).default_ttl_seconds == 120


def test_unknown_scanner_names_the_policy_entry(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"policies": [policy(scanners=["exec", "nmap"])]})

    assert "unknown scanner 'nmap'" in problems["policies[0].scanners[1]"]


def test_duplicate_cluster_names_are_rejected(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"clusters": [{"name": "default"}, {"name": "default"}]})

    assert problems == {"clusters[1].name": "duplicate cluster name 'default'"}


def test_bad_sha256_hex_names_the_key(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"api_keys": [{"name": "ci", "sha256": "not-hex"}]})

    assert "sha256" in problems["api_keys[0].sha256"]


def test_uppercase_sha256_is_normalised(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"api_keys": [{"name": "ci", "sha256": HASH.upper()}]})

    assert load_settings(path).api_keys[0].sha256 == HASH


def test_policy_naming_an_unknown_cluster_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"policies": [policy(clusters=["default", "prod"])]})

    assert problems == {"policies[0].clusters[1]": "unknown cluster 'prod'"}


def test_max_ttl_below_30_seconds_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"policies": [policy(max_ttl_seconds=10)]})

    assert "30" in problems["policies[0].max_ttl_seconds"]


def test_lifetime_cap_below_max_ttl_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path, {"policies": [policy(max_ttl_seconds=600, max_lifetime_seconds=300)]}
    )

    assert "max_lifetime_seconds" in problems["policies[0]"]


def test_unknown_key_is_named_instead_of_ignored(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"polices": []})

    assert problems == {"polices": "unknown key"}


def test_policy_without_clusters_applies_to_the_only_cluster(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"clusters": [{"name": "east"}], "policies": [policy()]})

    assert load_settings(path).policies[0].clusters == ["east"]


def test_policy_without_clusters_is_ambiguous_with_several_clusters(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path, {"clusters": [{"name": "east"}, {"name": "west"}], "policies": [policy()]}
    )

    assert problems == {"policies[0].clusters": "required when more than one cluster is configured"}


def test_policy_naming_a_denied_namespace_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path, {"policies": [policy(namespaces=["payments", "kube-system", "scangate-grants"])]}
    )

    assert set(problems) == {"policies[0].namespaces[1]", "policies[0].namespaces[2]"}
    assert "can never be granted" in problems["policies[0].namespaces[1]"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        {
            "sidecar_container": "Not A Name",
            "policies": [policy(subjects=["ci"], max_pods=0)],
        },
    )

    assert set(problems) == {
        "sidecar_container",
        "policies[0].subjects[0]",
        "policies[0].max_pods",
    }


def test_message_lists_file_and_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, {"policies": [policy(max_ttl_seconds=5)]}))

    message = str(caught.value)
    assert str(tmp_path / "config.yaml") in message
    assert "policies[0].max_ttl_seconds:" in message


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "clusters:\n  - name: [unclosed\n")

    assert "line" in problems[""]


def test_database_password_never_appears_in_errors_or_repr(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, {"database_url": "mysql://u:hunter2@db/x"}))
    assert "hunter2" not in str(caught.value)
    assert "unsupported scheme 'mysql'" in dict(caught.value.problems)["database_url"]

    settings = Settings(database_url="postgresql+psycopg://u:hunter2@db/x")
    assert "hunter2" not in repr(settings)


def test_submitted_values_are_not_echoed_in_type_errors(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"default_ttl_seconds": "sg_secret-looking-value"})

    assert "sg_secret" not in str(problems)
    assert "default_ttl_seconds" in problems


def test_bad_environment_json_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANGATE_CLUSTERS", "not json")

    with pytest.raises(ConfigError, match="clusters"):
        load_settings()


def test_trusted_proxies_default_to_none_and_must_be_addresses() -> None:
    assert load_settings().trusted_proxies == []
    with pytest.raises(ConfigError, match=r"trusted_proxies: 'proxy\.local' is not an IP"):
        load_settings(trusted_proxies=["10.0.0.0/8", "proxy.local"])


def test_installation_id_defaults_to_each_clusters_grants_namespace() -> None:
    settings = load_settings(
        clusters=[{"name": "a", "grants_namespace": "sg-a"}, {"name": "b"}],
    )
    assert [settings.installation_id_for(c) for c in settings.clusters] == [
        "sg-a",
        "scangate-grants",
    ]
    named = load_settings(installation_id="payments-scangate")
    assert named.installation_id_for(named.clusters[0]) == "payments-scangate"


def test_installation_id_must_be_a_label_value() -> None:
    with pytest.raises(ConfigError, match="installation_id: must be a Kubernetes label value"):
        load_settings(installation_id="not/a label")


def test_allow_pods_with_defaults_to_everything_so_old_policies_keep_working(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_config(tmp_path, {"policies": [policy()]}))

    assert settings.policies[0].allow_pods_with == [
        "service_account_token", "secret_volumes", "secret_env",
        "configmap_volumes", "configmap_env",
    ]  # fmt: skip


def test_allow_pods_with_takes_only_its_vocabulary_and_names_the_entry(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path, {"policies": [policy(allow_pods_with=["secret_env", "secrets"])]}
    )

    assert list(problems) == ["policies[0].allow_pods_with[1]"]
    assert "service_account_token" in problems["policies[0].allow_pods_with[1]"]
    strict = load_settings(write_config(tmp_path, {"policies": [policy(allow_pods_with=[])]}))
    assert strict.policies[0].allow_pods_with == []
