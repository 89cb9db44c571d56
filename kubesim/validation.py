"""Object validation with the apiserver's rules and wording.

Only what clients of kubesim can trip over is checked: object names (DNS-1123 and friends),
labels, and the fields whose absence would make an object meaningless (a Pod without
containers, a Role rule without verbs, a binding without a usable roleRef). Error messages are
the apiserver's, because tests and people compare them with real clusters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from kubesim.errors import FieldError
from kubesim.resources import ResourceType

DNS1123_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_RE: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
DNS1035_LABEL_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME_RE: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

DNS1123_LABEL_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_QUALIFIED_NAME_PART_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def name_errors(rule: str, name: str) -> list[str]:
    """Why `name` is not a valid object name under `rule`; empty when it is valid."""
    if rule == "path":
        # RBAC objects only need to be a usable path segment ("system:basic-user" is fine).
        if name in (".", ".."):
            return [f"may not be '{name}'"]
        return [f"may not contain '{c}'" for c in ("/", "%") if c in name]
    if rule == "label":
        problems = [] if DNS1123_LABEL_RE.match(name) else [DNS1123_LABEL_MSG]
        return (["must be no more than 63 characters"] if len(name) > 63 else []) + problems
    if rule == "dns1035":
        problems = [] if DNS1035_LABEL_RE.match(name) else [DNS1035_LABEL_MSG]
        return (["must be no more than 63 characters"] if len(name) > 63 else []) + problems
    problems = [] if DNS1123_SUBDOMAIN_RE.match(name) else [DNS1123_SUBDOMAIN_MSG]
    return (["must be no more than 253 characters"] if len(name) > 253 else []) + problems


def label_key_problems(key: str) -> list[str]:
    """apimachinery IsQualifiedName: why `key` is not a valid label key (empty when valid)."""
    parts = key.split("/")
    problems: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name " + _QUALIFIED_NAME_PART_MSG + " with an optional DNS subdomain "
            "prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                problems.append("prefix part must be no more than 253 characters")
            if not DNS1123_SUBDOMAIN_RE.match(prefix):
                problems.append("prefix part " + DNS1123_SUBDOMAIN_MSG)
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME_RE.match(name):
        problems.append("name part " + _QUALIFIED_NAME_PART_MSG)
    return problems


def label_value_problems(value: str) -> list[str]:
    problems = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        problems.append(_LABEL_VALUE_MSG)
    return problems


def _label_errors(labels: Any, path: str) -> list[FieldError]:
    """apimachinery ValidateLabels: each key a qualified name, each value a label value."""
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return [FieldError(path, "must be a map of strings", labels)]
    errors: list[FieldError] = []
    for key, value in labels.items():
        errors += [FieldError(path, problem, key) for problem in label_key_problems(key)]
        if not isinstance(value, str):
            errors.append(FieldError(f"{path}.{key}", "must be a string", value))
        else:
            errors += [FieldError(path, problem, value) for problem in label_value_problems(value)]
    return errors


def validate_metadata(rt: ResourceType, obj: Mapping[str, Any]) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    errors: list[FieldError] = []
    name = meta.get("name", "")
    if not name:
        errors.append(
            FieldError("metadata.name", "name or generateName is required", kind="required")
        )
    else:
        errors += [
            FieldError("metadata.name", why, name) for why in name_errors(rt.name_rule, name)
        ]
    errors += _label_errors(meta.get("labels"), "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None and (
        not isinstance(annotations, Mapping)
        or not all(isinstance(v, str) for v in annotations.values())
    ):
        errors.append(FieldError("metadata.annotations", "must be a map of strings", annotations))
    return errors


def validate_object(rt: ResourceType, obj: Mapping[str, Any]) -> list[FieldError]:
    """Metadata plus the kind-specific checks below."""
    errors = validate_metadata(rt, obj)
    check = _KIND_CHECKS.get(rt.kind)
    if check is not None:
        errors += check(obj)
    return errors


def _validate_pod(obj: Mapping[str, Any]) -> list[FieldError]:
    containers = (obj.get("spec") or {}).get("containers")
    if not containers:
        return [FieldError("spec.containers", "", kind="required")]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        name = container.get("name", "") if isinstance(container, Mapping) else ""
        if not name:
            errors.append(FieldError(f"spec.containers[{i}].name", "", kind="required"))
            continue
        if not DNS1123_LABEL_RE.match(name):
            errors.append(FieldError(f"spec.containers[{i}].name", DNS1123_LABEL_MSG, name))
        if name in seen:
            errors.append(FieldError(f"spec.containers[{i}].name", "", name, kind="duplicate"))
        seen.add(name)
        if not container.get("image"):
            errors.append(FieldError(f"spec.containers[{i}].image", "", kind="required"))
    return errors


def validate_rules(rules: Any, field: str = "rules") -> list[FieldError]:
    if rules is None:
        return []
    if not isinstance(rules, list):
        return [FieldError(field, "must be a list of PolicyRules", rules)]
    errors: list[FieldError] = []
    for i, rule in enumerate(rules):
        path = f"{field}[{i}]"
        if not isinstance(rule, Mapping):
            errors.append(FieldError(path, "must be a PolicyRule", rule))
            continue
        if not rule.get("verbs"):
            errors.append(
                FieldError(
                    f"{path}.verbs", "verbs must contain at least one value", kind="required"
                )
            )
        urls = rule.get("nonResourceURLs") or []
        has_resources = bool(rule.get("resources") or rule.get("apiGroups"))
        if urls and has_resources:
            errors.append(
                FieldError(
                    f"{path}.nonResourceURLs",
                    "rules cannot apply to both regular resources and non-resource URLs",
                    urls,
                )
            )
        elif not urls:
            if not rule.get("apiGroups"):
                errors.append(
                    FieldError(
                        f"{path}.apiGroups",
                        "resource rules must supply at least one api group",
                        kind="required",
                    )
                )
            if not rule.get("resources"):
                errors.append(
                    FieldError(
                        f"{path}.resources",
                        "resource rules must supply at least one resource",
                        kind="required",
                    )
                )
    return errors


def _validate_role(obj: Mapping[str, Any]) -> list[FieldError]:
    errors = validate_rules(obj.get("rules"))
    for i, rule in enumerate(obj.get("rules") or []):
        urls = rule.get("nonResourceURLs") if isinstance(rule, Mapping) else None
        if urls:
            why = "namespaced rules cannot apply to non-resource URLs"
            errors.append(FieldError(f"rules[{i}].nonResourceURLs", why, urls))
    return errors


def _validate_cluster_role(obj: Mapping[str, Any]) -> list[FieldError]:
    return validate_rules(obj.get("rules"))


def _validate_binding(obj: Mapping[str, Any], cluster_scoped: bool) -> list[FieldError]:
    """upstream ValidateRoleBinding / ValidateClusterRoleBinding (after defaulting)."""
    errors: list[FieldError] = []
    ref = obj.get("roleRef") or {}
    kinds = ["ClusterRole"] if cluster_scoped else ["Role", "ClusterRole"]
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        supported = '"rbac.authorization.k8s.io"'
        errors.append(
            FieldError(
                "roleRef.apiGroup",
                f"supported values: {supported}",
                ref.get("apiGroup", ""),
                kind="unsupported",
            )
        )
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        errors.append(
            FieldError(
                "roleRef.kind",
                f"supported values: {supported}",
                ref.get("kind", ""),
                kind="unsupported",
            )
        )
    if not ref.get("name"):
        errors.append(FieldError("roleRef.name", "", kind="required"))
    else:
        errors += [
            FieldError("roleRef.name", why, ref["name"]) for why in name_errors("path", ref["name"])
        ]
    for i, subject in enumerate(obj.get("subjects") or []):
        errors += _validate_subject(subject, f"subjects[{i}]", cluster_scoped)
    return errors


def _validate_subject(
    subject: Mapping[str, Any], path: str, cluster_scoped: bool
) -> list[FieldError]:
    """upstream validateRoleBindingSubject."""
    errors: list[FieldError] = []
    kind = subject.get("kind")
    name = subject.get("name") or ""
    if not name:
        errors.append(FieldError(f"{path}.name", "", kind="required"))
    if kind == "ServiceAccount":
        # A ServiceAccount's name is a DNS-1123 subdomain; a subject naming anything else
        # could never match a token's identity.
        if name and not (len(name) <= 253 and DNS1123_SUBDOMAIN_RE.match(name)):
            errors.append(FieldError(f"{path}.name", DNS1123_SUBDOMAIN_MSG, name))
        if subject.get("apiGroup"):
            errors.append(
                FieldError(
                    f"{path}.apiGroup", 'supported values: ""', subject["apiGroup"], "unsupported"
                )
            )
        # In a RoleBinding an SA subject without a namespace means the binding's own.
        if cluster_scoped and not subject.get("namespace"):
            errors.append(FieldError(f"{path}.namespace", "", kind="required"))
    elif kind in ("User", "Group"):
        if not name:
            why = f"{str(kind).lower()} name cannot be empty"
            errors.append(FieldError(f"{path}.name", why, name))
        if subject.get("apiGroup") != "rbac.authorization.k8s.io":
            errors.append(
                FieldError(
                    f"{path}.apiGroup",
                    'supported values: "rbac.authorization.k8s.io"',
                    subject.get("apiGroup", ""),
                    "unsupported",
                )
            )
    else:
        errors.append(
            FieldError(
                f"{path}.kind",
                'supported values: "ServiceAccount", "User", "Group"',
                kind or "",
                "unsupported",
            )
        )
    return errors


def _validate_deployment(obj: Mapping[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not spec.get("selector"):
        return [FieldError("spec.selector", "", kind="required")]
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    errors = []
    if any(template_labels.get(k) != v for k, v in selector.items()):
        errors.append(
            FieldError(
                "spec.template.metadata.labels",
                "`selector` does not match template `labels`",
                template_labels,
            )
        )
    pod = {"spec": (spec.get("template") or {}).get("spec") or {}}
    errors += [
        FieldError(f"spec.template.{e.field}", e.detail, e.value, e.kind)
        for e in _validate_pod(pod)
    ]
    return errors


_ACCESS_MODES: Final = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_QUANTITY_RE: Final = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


def _validate_persistent_volume_claim(obj: Mapping[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors: list[FieldError] = []
    modes = spec.get("accessModes") or []
    if not modes:
        errors.append(
            FieldError("spec.accessModes", "at least 1 access mode is required", kind="required")
        )
    supported = ", ".join(f'"{m}"' for m in _ACCESS_MODES)
    errors += [
        FieldError("spec.accessModes", f"supported values: {supported}", mode, "unsupported")
        for mode in modes
        if mode not in _ACCESS_MODES
    ]
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        errors.append(FieldError("spec.resources[storage]", "", kind="required"))
    elif not _QUANTITY_RE.match(str(storage)):
        why = f"quantities must match the regular expression '{_QUANTITY_RE.pattern}'"
        errors.append(FieldError("spec.resources.requests[storage]", why, str(storage)))
    return errors


def _admission_check(kind: str) -> Callable[[Mapping[str, Any]], list[FieldError]]:
    def check(obj: Mapping[str, Any]) -> list[FieldError]:
        # Imported here: the admission package builds on this module's name rules.
        from kubesim.admission import configuration, policy_validation

        checks = {
            "ValidatingWebhookConfiguration": configuration.validate_webhook_configuration,
            "ValidatingAdmissionPolicy": policy_validation.validate_policy,
            "ValidatingAdmissionPolicyBinding": policy_validation.validate_binding,
        }
        return checks[kind](obj)

    return check


_KIND_CHECKS: Final = {
    "ValidatingWebhookConfiguration": _admission_check("ValidatingWebhookConfiguration"),
    "ValidatingAdmissionPolicy": _admission_check("ValidatingAdmissionPolicy"),
    "ValidatingAdmissionPolicyBinding": _admission_check("ValidatingAdmissionPolicyBinding"),
    "Pod": _validate_pod,
    "Role": _validate_role,
    "ClusterRole": _validate_cluster_role,
    "RoleBinding": lambda o: _validate_binding(o, cluster_scoped=False),
    "ClusterRoleBinding": lambda o: _validate_binding(o, cluster_scoped=True),
    "Deployment": _validate_deployment,
    "PersistentVolumeClaim": _validate_persistent_volume_claim,
}
