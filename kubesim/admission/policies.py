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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubesim.admission import cel
from kubesim.admission.attributes import AdmissionAttributes, Obj
from kubesim.admission.cel_authorizer import CelAuthorizer
from kubesim.admission.matching import POLICY_RESOURCES, ConditionError, match_conditions_result
from kubesim.admission.policy_matching import matches_resources, namespace_object
from kubesim.errors import ApiError
from kubesim.rbac import RequestAttributes
from kubesim.resources import resource
from kubesim.store import Store

POLICIES: Final = resource("admissionregistration.k8s.io", "validatingadmissionpolicies")
BINDINGS: Final = resource("admissionregistration.k8s.io", "validatingadmissionpolicybindings")


_CODES: Final = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}
_MAX_MESSAGE_BYTES: Final = 5 * 1024
_NO_SUCH_MEMBER: Final = re.compile(r"no such member in mapping: '([^']*)'")


@dataclass(frozen=True)
class _Denial:
    policy: str
    binding: str | None
    message: str
    reason: str = ""


class _Failed(Exception):
    """An expression could not be evaluated; `str()` is the apiserver's text for it."""


class _PolicyRun:
    """One policy evaluated for one request under one binding."""

    def __init__(
        self,
        policy: Mapping[str, Any],
        attributes: AdmissionAttributes,
        store: Store,
        authorize: Any,
    ):
        self.spec = policy.get("spec") or {}
        self.fail_closed = self.spec.get("failurePolicy", "Fail") != "Ignore"
        self.activation: dict[str, Any] = {
            "object": attributes.object,
            "oldObject": attributes.old_object,
            "request": request_document(attributes),
            "params": None,
            "namespaceObject": namespace_object(attributes, store),
            "variables": {},
        }
        if authorize is not None:
            gvr = attributes.resource
            own = RequestAttributes(
                verb="",
                api_group=gvr.group,
                resource=gvr.resource,
                subresource=attributes.subresource,
                name=attributes.name,
                namespace=attributes.namespace,
            )
            self.activation["authorizer"] = CelAuthorizer(authorize, attributes.user, own)
        # Variables that failed, by name, with the error each reader of them gets.
        self.broken: dict[str, str] = {}

    def evaluate(self, expression: str, declared: frozenset[str]) -> Any:
        for name, error in self.broken.items():
            # cel-go binds variables lazily: a failed one fails only the expressions reading it.
            if re.search(rf"\bvariables\.{re.escape(name)}\b", expression):
                raise _Failed(f"expression '{expression}' resulted in error: {error}")
        try:
            program = cel.compile(expression, declared)
        except cel.CelCompileError as exc:
            raise _Failed(f"compilation error: {exc}") from None
        try:
            return cel.evaluate(program, self.activation)
        except cel.CelEvaluationError as exc:
            raise _Failed(
                f"expression '{expression}' resulted in error: {_go_wording(str(exc))}"
            ) from None

    def applies(self) -> tuple[bool, str]:
        """(applies, error): the matchConditions; an error is reported only when failing
        closed (with Ignore, an erroring condition makes the policy not apply)."""

        def evaluate(expression: str) -> Any:
            try:
                return self.evaluate(expression, cel.POLICY_CONDITION_VARIABLES)
            except _Failed as exc:
                raise ConditionError(str(exc)) from None

        matched, error = match_conditions_result(self.spec.get("matchConditions") or [], evaluate)
        if error:
            return (True, error) if self.fail_closed else (False, "")
        return matched, ""

    def bind_variables(self) -> None:
        # Bound in order, each seeing the ones before it.
        bound: dict[str, Any] = self.activation["variables"]
        for variable in self.spec.get("variables") or []:
            name, expression = str(variable.get("name", "")), str(variable.get("expression", ""))
            try:
                bound[name] = self.evaluate(expression, cel.POLICY_VALIDATION_VARIABLES)
            except _Failed as exc:
                self.broken[name] = str(exc).rsplit(" resulted in error: ", 1)[-1]

    def failures(self) -> list[tuple[str, str]]:
        """(message, reason) of every validation that did not hold; errors count as failures
        only when failing closed."""
        found: list[tuple[str, str]] = []
        for validation in self.spec.get("validations") or []:
            expression = str(validation.get("expression", ""))
            try:
                result = self.evaluate(expression, cel.POLICY_VALIDATION_VARIABLES)
            except _Failed as exc:
                if self.fail_closed:
                    found.append((str(exc), ""))
                continue
            if result is not True:
                found.append((self._message(validation), validation.get("reason") or "Invalid"))
        return found

    def _message(self, validation: Mapping[str, Any]) -> str:
        message = ""
        if validation.get("messageExpression"):
            try:
                value = self.evaluate(
                    str(validation["messageExpression"]), cel.POLICY_MESSAGE_VARIABLES
                )
            except _Failed:
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
    return evaluate_policies(attributes, cluster.store, cluster.authorizer.authorize)


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
    attributes: AdmissionAttributes, store: Store, authorize: Any = None
) -> list[str]:
    """Warnings to send with the response; raises the first denial as an ApiError.
    `authorize` (kubesim's RBAC check) backs CEL's `authorizer`; without it, it is unbound."""
    gvr = attributes.resource
    if gvr.group == POLICIES.group and gvr.resource in POLICY_RESOURCES:
        # As upstream: policies never judge policies or bindings (no lock-out by a bad one).
        return []
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
            run = _PolicyRun(policy, attributes, store, authorize)
            applies, error = run.applies()
            if not applies:
                continue
            if error:
                # A failing matchCondition is a decision like any other: the actions apply.
                failures = [(error, "")]
            else:
                run.bind_variables()
                failures = run.failures()
            actions = binding_spec.get("validationActions") or []
            for message, reason in failures:
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


def _go_wording(message: str) -> str:
    """celpy's phrasing of the common errors in cel-go's, which is what users compare."""
    if match := _NO_SUCH_MEMBER.search(message):
        return f"no such key: {match.group(1)}"
    if message.startswith("found no matching overload"):
        return "no such overload"
    return message
