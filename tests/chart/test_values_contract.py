"""The values are a closed, documented contract: the schema describes every value and refuses
unknown keys at every level, and no value is dead (every one is read by some template)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.kube.profiles import SCANNER_PROFILES
from app.settings_notifications import NOTIFICATION_EVENTS, NotificationConfig
from tests.chart.helm_runner import CHART_DIR, default_values, production_values

SCHEMA: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
# Kubernetes types passed through verbatim (their full schemas belong to the API server).
FREE_FORM = {
    "global",
    "affinity",
    "tolerations[]",
    "topologySpreadConstraints[]",
    "extraEnv[].valueFrom",
    "networkPolicy.extraEgress[]",
    "networkPolicy.ingressFrom[].podSelector",
    "networkPolicy.ingressFrom[].namespaceSelector",
}


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")


def value_paths(values: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every key path in a values document (list items as `[]`)."""
    if isinstance(values, dict):
        for key, value in values.items():
            child = f"{path}.{key}" if path else key
            yield child, value
            yield from value_paths(value, child)
    elif isinstance(values, list):
        for item in values:
            yield from value_paths(item, f"{path}[]")


def schema_at(path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = SCHEMA
    for part in re.findall(r"[^.\[\]]+|\[\]", path):
        if node is None:
            return None
        node = node.get("items") if part == "[]" else node.get("properties", {}).get(part)
    return node


def test_every_object_in_the_schema_refuses_unknown_keys() -> None:
    for path, node in schema_nodes(SCHEMA):
        if node.get("type") == "object" and path not in FREE_FORM:
            assert node.get("additionalProperties") is not True, path
            assert "additionalProperties" in node, f"{path or '<root>'} accepts unknown keys"


@pytest.mark.parametrize("source", ["values.yaml", "ci/production-values.yaml"])
def test_every_value_is_described_by_the_schema(source: str) -> None:
    values = default_values() if source == "values.yaml" else production_values()
    for path, _ in value_paths(values):
        if any(path == free or path.startswith(free + ".") for free in FREE_FORM):
            continue
        if any(path.startswith(f"{label}.") for label in _string_maps()):
            continue
        node = schema_at(path)
        assert node is not None, f"{path} is not in values.schema.json"
        assert node.get("description") or node.get("type") or node.get("anyOf") or "const" in node


def _string_maps() -> set[str]:
    return {
        path
        for path, node in schema_nodes(SCHEMA)
        # Maps with free keys whose values have a schema: labels (strings), OIDC claims
        # (a pattern or a list of patterns).
        if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict)
    }


def test_schema_profiles_are_the_service_profiles() -> None:
    assert SCHEMA["properties"]["scanners"]["items"]["enum"] == list(SCANNER_PROFILES)
    policy = SCHEMA["properties"]["config"]["properties"]["policies"]["items"]
    assert policy["properties"]["scanners"]["items"]["enum"] == list(SCANNER_PROFILES)


def test_schema_notification_keys_are_the_service_keys() -> None:
    """The values' targets take the settings' keys, except that secrets and secret URLs are
    references to Secrets (the chart renders them as secret_file and url_file)."""
    target = SCHEMA["properties"]["config"]["properties"]["notifications"]["items"]
    assert target["properties"]["events"]["items"]["enum"] == list(NOTIFICATION_EVENTS)
    assert target["properties"]["format"]["enum"] == ["cloudevents", "slack"]
    from_secrets = {"secret", "secret_file", "secret_env", "url_file", "url_env"}
    assert set(target["properties"]) == (set(NotificationConfig.model_fields) - from_secrets) | {
        "secretRef",
        "urlSecretRef",
    }


def _template_value_references() -> set[str]:
    """Dotted `.Values` paths the templates read, following `$x := .Values...` aliases."""
    references: set[str] = set()
    for template in (CHART_DIR / "templates").glob("*"):
        text = template.read_text()
        assignment = r"\$(\w+) := \.Values((?:\.\w+)+)"
        # An alias only reads what is later taken from it, not its whole subtree.
        references.update(re.findall(r"\.Values((?:\.\w+)+)", re.sub(assignment, "", text)))
        for alias, target in re.findall(assignment, text):
            references.update(target + rest for rest in re.findall(rf"\${alias}((?:\.\w+)+)", text))
    return {ref.lstrip(".") for ref in references}


def test_no_value_is_left_unread_by_the_templates() -> None:
    references = _template_value_references()
    top_level = set(default_values())
    unread = []
    for path, value in value_paths(default_values()):
        if "[]" in path or (isinstance(value, dict) and value):
            continue  # list items are read with their list; maps through their leaves
        parts = path.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if not prefixes & references:
            unread.append(path)
    assert unread == [], f"values no template reads: {unread}"
    assert top_level <= {ref.split(".")[0] for ref in references}
