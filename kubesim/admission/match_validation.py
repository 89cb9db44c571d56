"""The validation rules ValidatingWebhookConfiguration and ValidatingAdmissionPolicy share, once,
as kube-apiserver has them once (pkg/apis/admissionregistration/validation: `validateRule`,
`validateResources`, `validateMatchConditions`, and apimachinery's label selector validation):
what decides whether an admission check applies (rules, selectors, match conditions), and the
compile check every CEL expression gets.

Each caller says what differs: the variables its expressions may name (a webhook's match
conditions have no `params`), and whether a rule also names resources (a policy's
`resourceNames`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kubesim.admission import cel
from kubesim.errors import FieldError
from kubesim.validation import label_key_problems, name_errors

OPERATIONS: Final = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
SCOPES: Final = ("*", "Cluster", "Namespaced")
FAILURE_POLICIES: Final = ("Fail", "Ignore")
MATCH_POLICIES: Final = ("Equivalent", "Exact")
_SELECTOR_OPERATORS: Final = ("DoesNotExist", "Exists", "In", "NotIn")
_MAX_MATCH_CONDITIONS: Final = 64


def unsupported(path: str, value: Any, supported: tuple[str, ...]) -> FieldError:
    listed = ", ".join(f'"{s}"' for s in supported)
    return FieldError(path, f"supported values: {listed}", value, kind="unsupported")


def expression_errors(
    expression: str, path: str, required_detail: str, declared: frozenset[str]
) -> list[FieldError]:
    """Required when blank; otherwise whether it compiles naming only `declared` variables."""
    if not expression.strip():
        return [FieldError(path, required_detail, kind="required")]
    try:
        cel.compile(expression, declared)
    except cel.CelCompileError as exc:
        return [FieldError(path, f"compilation failed: {exc}", expression)]
    return []


def validate_rule(rule: Any, path: str, *, named: bool = False) -> list[FieldError]:
    """A RuleWithOperations (a webhook's `rules[i]`) or, `named`, a NamedRuleWithOperations (a
    policy's `resourceRules[i]`, which may also list `resourceNames`)."""
    if not isinstance(rule, Mapping):
        return [FieldError(path, "must be an object", rule)]
    errors: list[FieldError] = []
    if named:
        seen: set[str] = set()
        for i, name in enumerate(rule.get("resourceNames") or []):
            where = f"{path}.resourceNames[{i}]"
            errors += [FieldError(where, p, name) for p in name_errors("path", str(name))]
            if name in seen:
                errors.append(FieldError(where, "", name, kind="duplicate"))
            seen.add(name)
    operations = rule.get("operations") or []
    if not operations:
        errors.append(FieldError(f"{path}.operations", "", kind="required"))
    if len(operations) > 1 and "*" in operations:
        detail = "if '*' is present, must not specify other operations"
        errors.append(FieldError(f"{path}.operations", detail, operations))
    for i, op in enumerate(operations):
        if op not in OPERATIONS:
            errors.append(unsupported(f"{path}.operations[{i}]", op, OPERATIONS))
    for key, noun in (("apiGroups", "API groups"), ("apiVersions", "API versions")):
        values = rule.get(key) or []
        if not values:
            errors.append(FieldError(f"{path}.{key}", "", kind="required"))
        if len(values) > 1 and "*" in values:
            detail = f"if '*' is present, must not specify other {noun}"
            errors.append(FieldError(f"{path}.{key}", detail, values))
    for i, version in enumerate(rule.get("apiVersions") or []):
        if version == "":
            errors.append(FieldError(f"{path}.apiVersions[{i}]", "", kind="required"))
    errors += _validate_resources(rule.get("resources") or [], f"{path}.resources")
    scope = rule.get("scope")
    if scope is not None and scope not in SCOPES:
        errors.append(unsupported(f"{path}.scope", scope, SCOPES))
    return errors


def _validate_resources(resources: list[Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not resources:
        errors.append(FieldError(path, "", kind="required"))
    wildcard_sub: set[str] = set()  # "x/*"
    wildcard_res: set[str] = set()  # "*/x"
    has_plain = False
    for i, entry in enumerate(resources):
        if entry == "":
            errors.append(FieldError(f"{path}[{i}]", "", kind="required"))
            continue
        res, slash, sub = str(entry).partition("/")
        if not slash:
            has_plain = entry != "*"
            continue
        if res in wildcard_sub:
            detail = f"if '{res}/*' is present, must not specify {entry}"
            errors.append(FieldError(f"{path}[{i}]", detail, entry))
        if sub in wildcard_res:
            detail = f"if '*/{sub}' is present, must not specify {entry}"
            errors.append(FieldError(f"{path}[{i}]", detail, entry))
        if sub == "*":
            wildcard_sub.add(res)
        if res == "*":
            wildcard_res.add(sub)
    if len(resources) > 1 and "*/*" in resources:
        detail = "if '*/*' is present, must not specify other resources"
        errors.append(FieldError(path, detail, resources))
    if "*" in resources and has_plain:
        detail = "if '*' is present, must not specify other resources without subresources"
        errors.append(FieldError(path, detail, resources))
    return errors


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """A namespaceSelector or objectSelector (apimachinery's ValidateLabelSelector)."""
    if selector is None:
        return []
    if not isinstance(selector, Mapping):
        return [FieldError(path, "must be a label selector", selector)]
    errors: list[FieldError] = []
    for i, expression in enumerate(selector.get("matchExpressions") or []):
        where = f"{path}.matchExpressions[{i}]"
        operator = expression.get("operator")
        values = expression.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                detail = "must be specified when `operator` is 'In' or 'NotIn'"
                errors.append(FieldError(f"{where}.values", detail, kind="required"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                errors.append(FieldError(f"{where}.values", detail, kind="forbidden"))
        else:
            errors.append(
                FieldError(f"{where}.operator", "not a valid selector operator", operator)
            )
    return errors


def validate_match_conditions(
    conditions: list[Any], path: str, declared: frozenset[str]
) -> list[FieldError]:
    """At most 64, each with a qualified, unique name and an expression that compiles."""
    errors: list[FieldError] = []
    if len(conditions) > _MAX_MATCH_CONDITIONS:
        detail = f"must have at most {_MAX_MATCH_CONDITIONS} items"
        errors.append(FieldError(path, detail, len(conditions), kind="toomany"))
    names: set[str] = set()
    for i, condition in enumerate(conditions):
        where = f"{path}[{i}]"
        expression = str(condition.get("expression") or "").strip()
        errors += expression_errors(expression, f"{where}.expression", "", declared)
        name = str(condition.get("name") or "")
        if not name:
            errors.append(FieldError(f"{where}.name", "", kind="required"))
            continue
        errors += [FieldError(f"{where}.name", p, name) for p in label_key_problems(name)]
        if name in names:
            errors.append(FieldError(f"{where}.name", "", name, kind="duplicate"))
        names.add(name)
    return errors
