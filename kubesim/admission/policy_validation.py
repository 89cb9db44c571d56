"""Defaulting and validation of ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding,
with the rules and wording of kube-apiserver's pkg/apis/admissionregistration (v1 defaults,
validation): a policy needs match constraints with resource rules and at least one validation;
every expression must compile; a binding needs a policy name and valid validation actions.
Expressions are compiled by the same CEL environment that evaluates them (kubesim.admission.cel):
syntax, known functions and declared variables are checked, not types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from kubesim.admission import cel
from kubesim.admission.match_validation import (
    FAILURE_POLICIES,
    MATCH_POLICIES,
    expression_errors,
    unsupported,
    validate_label_selector,
    validate_match_conditions,
    validate_rule,
)
from kubesim.errors import FieldError

Obj = dict[str, Any]

_REASONS: Final = ("Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized")
_ACTIONS: Final = ("Audit", "Deny", "Warn")
_CEL_IDENTIFIER: Final = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_CEL_RESERVED: Final = (
    frozenset(
        ("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for"),
    )
    | frozenset(
        ("function", "if", "import", "let", "loop", "package", "namespace", "return", "var"),
    )
    | frozenset(("void", "while"))
)


# --- defaults -------------------------------------------------------------------------------


def default_policy(obj: Obj) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("failurePolicy", "Fail")
        if isinstance(spec.get("matchConstraints"), dict):
            _default_match_resources(spec["matchConstraints"])
    return []


def default_binding(obj: Obj) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict) and isinstance(spec.get("matchResources"), dict):
        _default_match_resources(spec["matchResources"])
    return []


def _default_match_resources(match: Obj) -> None:
    match.setdefault("matchPolicy", "Equivalent")
    match.setdefault("namespaceSelector", {})
    match.setdefault("objectSelector", {})
    for key in ("resourceRules", "excludeResourceRules"):
        for rule in match.get(key) or []:
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")


# --- validation -----------------------------------------------------------------------------


def validate_policy(obj: Mapping[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors: list[FieldError] = []
    failure = spec.get("failurePolicy")
    if failure is None:
        errors.append(FieldError("spec.failurePolicy", "", kind="required"))
    elif failure not in FAILURE_POLICIES:
        errors.append(unsupported("spec.failurePolicy", failure, FAILURE_POLICIES))
    if spec.get("paramKind") is not None:
        param_kind = spec["paramKind"]
        for key in ("apiVersion", "kind"):
            if not (param_kind or {}).get(key):
                errors.append(FieldError(f"spec.paramKind.{key}", "", kind="required"))
    constraints = spec.get("matchConstraints")
    if constraints is None:
        errors.append(FieldError("spec.matchConstraints", "", kind="required"))
    else:
        errors += _match_resources(constraints, "spec.matchConstraints")
        if not constraints.get("resourceRules"):
            errors.append(FieldError("spec.matchConstraints.resourceRules", "", kind="required"))
    errors += validate_match_conditions(
        spec.get("matchConditions") or [], "spec.matchConditions", cel.POLICY_CONDITION_VARIABLES
    )
    for i, variable in enumerate(spec.get("variables") or []):
        errors += _variable(variable, f"spec.variables[{i}]")
    validations = spec.get("validations") or []
    if not validations and not spec.get("auditAnnotations"):
        why = "validations or auditAnnotations must contain at least one item"
        errors.append(FieldError("spec.validations", why, kind="required"))
        errors.append(FieldError("spec.auditAnnotations", why, kind="required"))
    for i, validation in enumerate(validations):
        errors += _validation(validation, f"spec.validations[{i}]")
    return errors


def validate_binding(obj: Mapping[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors: list[FieldError] = []
    if not spec.get("policyName"):
        errors.append(FieldError("spec.policyName", "", kind="required"))
    if spec.get("paramRef") is not None:
        errors += _param_ref(spec["paramRef"], "spec.paramRef")
    if spec.get("matchResources") is not None:
        errors += _match_resources(spec["matchResources"], "spec.matchResources")
    errors += _validation_actions(spec.get("validationActions") or [], "spec.validationActions")
    return errors


def _validation_actions(actions: list[Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, action in enumerate(actions):
        if action not in _ACTIONS:
            errors.append(unsupported(f"{path}[{i}]", action, _ACTIONS))
        if action in seen:
            errors.append(FieldError(f"{path}[{i}]", "", action, kind="duplicate"))
        seen.add(str(action))
    if {"Deny", "Warn"} <= seen:
        errors.append(
            FieldError(
                path,
                "must not contain both Deny and Warn (repeating the same validation failure "
                "information in the API response and headers serves no purpose)",
                actions,
            )
        )
    if not seen:
        why = "at least one validation action is required"
        errors.append(FieldError(path, why, kind="required"))
    return errors


def _param_ref(ref: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    exclusive = "name and selector are mutually exclusive"
    if ref.get("name") and ref.get("selector") is not None:
        errors.append(FieldError(f"{path}.name", exclusive, kind="forbidden"))
        errors.append(FieldError(f"{path}.selector", exclusive, kind="forbidden"))
    if not ref.get("name") and ref.get("selector") is None:
        why = "one of name or selector must be specified"
        errors.append(FieldError(path, why, kind="required"))
    action = ref.get("parameterNotFoundAction")
    if not action:
        errors.append(FieldError(f"{path}.parameterNotFoundAction", "", kind="required"))
    elif action not in ("Deny", "Allow"):
        errors.append(unsupported(f"{path}.parameterNotFoundAction", action, ("Deny", "Allow")))
    return errors


def _match_resources(match: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    policy = match.get("matchPolicy")
    if policy is None:
        errors.append(FieldError(f"{path}.matchPolicy", "", kind="required"))
    elif policy not in MATCH_POLICIES:
        errors.append(unsupported(f"{path}.matchPolicy", policy, MATCH_POLICIES))
    for key in ("namespaceSelector", "objectSelector"):
        if match.get(key) is None:
            errors.append(FieldError(f"{path}.{key}", "", kind="required"))
        else:
            errors += validate_label_selector(match[key], f"{path}.{key}")
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(match.get(key) or []):
            errors += validate_rule(rule, f"{path}.{key}[{i}]", named=True)
    return errors


def _variable(variable: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    name = str(variable.get("name") or "")
    if not name.strip():
        errors.append(FieldError(f"{path}.name", "name is not specified", kind="required"))
    elif not _CEL_IDENTIFIER.match(name) or name in _CEL_RESERVED:
        errors.append(FieldError(f"{path}.name", "name is not a valid CEL identifier", name))
    expression = str(variable.get("expression") or "")
    errors += expression_errors(
        expression,
        f"{path}.expression",
        "expression is not specified",
        cel.POLICY_VALIDATION_VARIABLES,
    )
    return errors


def _validation(validation: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = expression_errors(
        str(validation.get("expression") or ""),
        f"{path}.expression",
        "expression is not specified",
        cel.POLICY_VALIDATION_VARIABLES,
    )
    message_expression = str(validation.get("messageExpression") or "")
    if message_expression and not message_expression.strip():
        why = "must be non-empty if specified"
        errors.append(FieldError(f"{path}.messageExpression", why, message_expression))
    elif message_expression:
        where = f"{path}.messageExpression"
        errors += expression_errors(message_expression, where, "", cel.POLICY_MESSAGE_VARIABLES)
    message = str(validation.get("message") or "")
    if message and not message.strip():
        why = "message must be non-empty if specified"
        errors.append(FieldError(f"{path}.message", why, message))
    elif "\n" in message.strip() or "\r" in message.strip():
        why = "message must not contain line breaks"
        errors.append(FieldError(f"{path}.message", why, message))
    reason = validation.get("reason")
    if reason is not None and reason not in _REASONS:
        errors.append(unsupported(f"{path}.reason", reason, _REASONS))
    return errors
