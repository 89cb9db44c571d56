"""ValidatingAdmissionPolicy evaluation, as kube-apiserver's validating policy plugin does it.

`evaluate_policies(attributes, store)` runs at every point of admission: for each policy whose
`matchConstraints` select the request and each of its bindings whose `matchResources` (if any)
select it too, the policy's `matchConditions` decide whether it applies, its `variables` are
bound, and every `validations` entry is evaluated. A failed validation is acted on as the
binding's `validationActions` say: Deny refuses the request (the first denial is the answer,
with the policy's `reason`, default Invalid → 422), Warn becomes a `Warning` header, Audit
leaves nothing a client can see (kubesim keeps no audit log). Evaluation errors follow the
policy's `failurePolicy` (default Fail: the request is denied with the error).
Texts and codes are those of apiserver/pkg/admission/plugin/policy/validating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from celpy import celtypes
from celpy.evaluation import CELEvalError

from kubesim.admission.attributes import AdmissionAttributes, Obj
from kubesim.admission.policy_authorizer import Authorizer, authorizer_value
from kubesim.admission.policy_cel import (
    CelCompileError,
    CelEvalError,
    compile_expression,
    evaluate,
    to_cel,
)
from kubesim.admission.policy_matching import matches_resources, namespace_object
from kubesim.errors import ApiError
from kubesim.resources import resource
from kubesim.store import Store

POLICIES: Final = resource("admissionregistration.k8s.io", "validatingadmissionpolicies")
BINDINGS: Final = resource("admissionregistration.k8s.io", "validatingadmissionpolicybindings")

_CODES: Final = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}
_MAX_MESSAGE_BYTES: Final = 5 * 1024


@dataclass(frozen=True)
class _Denial:
    policy: str
    binding: str | None
    message: str
    reason: str = ""


class _PolicyRun:
    """One policy evaluated for one request under one binding."""

    def __init__(
        self,
        policy: Mapping[str, Any],
        attributes: AdmissionAttributes,
        store: Store,
        authorizer: Authorizer | None,
    ):
        self.spec = policy.get("spec") or {}
        self.fail_closed = self.spec.get("failurePolicy", "Fail") != "Ignore"
        self.activation: dict[str, Any] = {
            "object": to_cel(attributes.object),
            "oldObject": to_cel(attributes.old_object),
            "request": to_cel(request_document(attributes)),
            "params": None,
            "namespaceObject": to_cel(namespace_object(attributes, store)),
        }
        if authorizer is not None:
            self.activation["authorizer"] = authorizer_value(authorizer, attributes)

    def applies(self) -> tuple[bool, str]:
        """(applies, error): the matchConditions; an error is reported only when failing
        closed (with Ignore, an erroring condition makes the policy not apply)."""
        errors: list[str] = []
        for condition in self.spec.get("matchConditions") or []:
            expression = str(condition.get("expression", ""))
            try:
                result = evaluate(compile_expression(expression), self.activation)
            except CelCompileError as exc:
                errors.append(f"compilation error: {exc}")
                continue
            except CelEvalError as exc:
                errors.append(f"expression '{expression}' resulted in error: {exc}")
                continue
            if result is False:
                return False, ""
            if result is not True:
                errors.append(f"expression '{expression}' resulted in error: no such overload")
        if errors:
            message = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
            return (True, message) if self.fail_closed else (False, "")
        return True, ""

    def bind_variables(self) -> None:
        # Bound in order, each seeing the ones before it; a failing variable is an error only
        # for the expressions that read it, as with cel-go's lazy composition.
        bound: dict[str, Any] = {}
        for variable in self.spec.get("variables") or []:
            name, expression = str(variable.get("name", "")), str(variable.get("expression", ""))
            scope = {**self.activation, "variables": _cel_map(bound)}
            try:
                bound[name] = to_cel(evaluate(compile_expression(expression), scope))
            except (CelCompileError, CelEvalError) as exc:
                bound[name] = CELEvalError(f"variables.{name}: {exc}")
        self.activation["variables"] = _cel_map(bound)

    def failures(self) -> list[tuple[str, str]]:
        """(message, reason) of every validation that did not hold; errors count as failures
        only when failing closed."""
        found: list[tuple[str, str]] = []
        for validation in self.spec.get("validations") or []:
            expression = str(validation.get("expression", ""))
            try:
                result = evaluate(compile_expression(expression), self.activation)
            except CelCompileError as exc:
                if self.fail_closed:
                    found.append((f"compilation error: {exc}", ""))
                continue
            except CelEvalError as exc:
                if self.fail_closed:
                    found.append((f"expression '{expression}' resulted in error: {exc}", ""))
                continue
            if result is not True:
                found.append((self._message(validation), validation.get("reason") or "Invalid"))
        return found

    def _message(self, validation: Mapping[str, Any]) -> str:
        message = ""
        if validation.get("messageExpression"):
            try:
                value = evaluate(
                    compile_expression(str(validation["messageExpression"])), self.activation
                )
            except (CelCompileError, CelEvalError):
                value = None  # as upstream: logged, then the fallbacks below
            if isinstance(value, str):
                message = value.strip()
                if len(message.encode()) > _MAX_MESSAGE_BYTES or "\n" in message:
                    message = ""
        if not message:
            message = str(validation.get("message") or "").strip()
        if not message:
            message = f"failed expression: {str(validation.get('expression', '')).strip()}"
        return message


def configured(cluster: Any) -> bool:
    """Whether any binding exists: without one, no policy is ever evaluated."""
    return next(iter(cluster.store.iter(BINDINGS)), None) is not None


def validate(cluster: Any, attributes: AdmissionAttributes) -> list[str]:
    """The admission chain's entry point (kubesim.admission.admit)."""
    return evaluate_policies(attributes, cluster.store, cluster.authorizer)


def request_document(attributes: AdmissionAttributes) -> Obj:
    """The AdmissionRequest as CEL's `request` sees it: the webhook's AdmissionRequest without
    the objects (they are the `object` and `oldObject` variables)."""
    document = attributes.review_request(uid="")
    for key in ("object", "oldObject"):
        document.pop(key, None)
    # Upstream reflects the Go struct, where an empty string field is still there ("").
    for key in ("name", "namespace", "subResource", "requestSubResource"):
        document.setdefault(key, "")
    return document


def evaluate_policies(
    attributes: AdmissionAttributes, store: Store, authorizer: Authorizer | None = None
) -> list[str]:
    """Warnings to send with the response; raises the first denial as an ApiError.
    `authorizer` (kubesim's RBAC) backs CEL's `authorizer`; without it, it is unbound."""
    bindings_by_policy: dict[str, list[Mapping[str, Any]]] = {}
    for binding in store.iter(BINDINGS):
        policy_name = str((binding.get("spec") or {}).get("policyName", ""))
        bindings_by_policy.setdefault(policy_name, []).append(binding)
    denials: list[_Denial] = []
    warnings: list[str] = []
    for policy in sorted(store.iter(POLICIES), key=lambda p: str(p["metadata"]["name"])):
        name = str(policy["metadata"]["name"])
        bindings = sorted(
            bindings_by_policy.get(name, []), key=lambda b: str(b["metadata"]["name"])
        )
        spec = policy.get("spec") or {}
        if not bindings or not matches_resources(
            spec.get("matchConstraints") or {}, attributes, store
        ):
            continue
        for binding in bindings:
            binding_spec = binding.get("spec") or {}
            narrowing = binding_spec.get("matchResources")
            if narrowing and not matches_resources(narrowing, attributes, store):
                continue
            binding_name = str(binding["metadata"]["name"])
            if spec.get("paramKind"):
                # Documented difference: kubesim does not resolve params.
                if spec.get("failurePolicy", "Fail") != "Ignore":
                    message = "failed to configure binding: kubesim does not support paramKind"
                    denials.append(_Denial(name, binding_name, message))
                continue
            run = _PolicyRun(policy, attributes, store, authorizer)
            applies, error = run.applies()
            if error:
                denials.append(_Denial(name, binding_name, error))
            if not applies or error:
                continue
            run.bind_variables()
            actions = binding_spec.get("validationActions") or []
            for message, reason in run.failures():
                if "Deny" in actions:
                    denials.append(_Denial(name, binding_name, message, reason))
                if "Warn" in actions:
                    warnings.append(
                        f"Validation failed for ValidatingAdmissionPolicy '{name}' with binding "
                        f"'{binding_name}': {message}"
                    )
    if denials:
        raise _denied(attributes, denials[0])
    return warnings


def _denied(attributes: AdmissionAttributes, denial: _Denial) -> ApiError:
    if denial.binding is not None:
        why = (
            f"ValidatingAdmissionPolicy '{denial.policy}' with binding '{denial.binding}' "
            f"denied request: {denial.message}"
        )
    else:
        why = f"ValidatingAdmissionPolicy '{denial.policy}' denied request: {denial.message}"
    name = attributes.name or _object_name(attributes.object or attributes.old_object)
    gvr = attributes.resource
    group_resource = f"{gvr.resource}.{gvr.group}" if gvr.group else gvr.resource
    subject = f'{group_resource} "{name}"' if name else group_resource
    details: dict[str, Any] = {"name": name} if name else {}
    if gvr.group:
        details["group"] = gvr.group
    details["kind"] = gvr.resource
    details["causes"] = [{"message": why}]
    reason = denial.reason or "Invalid"
    return ApiError(_CODES.get(reason, 422), reason, f"{subject} is forbidden: {why}", details)


def _object_name(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("name", ""))


def _cel_map(values: dict[str, Any]) -> Any:
    return celtypes.MapType({celtypes.StringType(k): v for k, v in values.items()})
