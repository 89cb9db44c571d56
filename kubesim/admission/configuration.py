"""ValidatingWebhookConfiguration: its defaults and its validation, with the apiserver's rules
and wording (pkg/apis/admissionregistration/v1 defaults and .../validation).

What a webhook configuration looks like once stored is what the dispatcher relies on: every
default filled in (failurePolicy Fail, matchPolicy Equivalent, empty selectors, timeout 10 s,
scope "*", service port 443) and every rule checked, so a bad configuration is refused when it
is written, never half-applied when a request arrives.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

from kubesim.admission import cel
from kubesim.admission.match_validation import (
    FAILURE_POLICIES,
    MATCH_POLICIES,
    unsupported,
    validate_label_selector,
    validate_match_conditions,
    validate_rule,
)
from kubesim.errors import FieldError
from kubesim.validation import DNS1035_LABEL_MSG, DNS1035_LABEL_RE, name_errors

_SIDE_EFFECTS: Final = ("None", "NoneOnDryRun")
_REVIEW_VERSIONS: Final = ("v1", "v1beta1")
_URL_FORM: Final = "; desired format: https://host[/path]"


def default_webhook_configuration(obj: dict[str, Any]) -> list[FieldError]:
    for hook in obj.get("webhooks") or []:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        for rule in hook.get("rules") or []:
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)
    return []


def validate_webhook_configuration(obj: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen_names: set[str] = set()
    for i, hook in enumerate(obj.get("webhooks") or []):
        path = f"webhooks[{i}]"
        if not isinstance(hook, Mapping):
            errors.append(FieldError(path, "must be an object", hook))
            continue
        errors += _validate_webhook(hook, path)
        errors += _validate_review_versions(hook.get("admissionReviewVersions"), path)
        name = hook.get("name") or ""
        if name in seen_names:
            errors.append(FieldError(f"{path}.name", "", name, kind="duplicate"))
        elif name:
            seen_names.add(name)
    return errors


def _validate_webhook(hook: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = _fully_qualified_name(hook.get("name") or "", f"{path}.name")
    for i, rule in enumerate(hook.get("rules") or []):
        errors += validate_rule(rule, f"{path}.rules[{i}]")
    for key, allowed in (("failurePolicy", FAILURE_POLICIES), ("matchPolicy", MATCH_POLICIES)):
        if hook.get(key) is not None and hook[key] not in allowed:
            errors.append(unsupported(f"{path}.{key}", hook[key], allowed))
    side_effects = hook.get("sideEffects")
    if side_effects is None:
        detail = "must specify one of " + ", ".join(_SIDE_EFFECTS)
        errors.append(FieldError(f"{path}.sideEffects", detail, kind="required"))
    elif side_effects not in _SIDE_EFFECTS:
        errors.append(unsupported(f"{path}.sideEffects", side_effects, _SIDE_EFFECTS))
    timeout = hook.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, int) or not 1 <= timeout <= 30):
        errors.append(
            FieldError(
                f"{path}.timeoutSeconds",
                "the timeout value must be between 1 and 30 seconds",
                timeout,
            )
        )
    for key in ("namespaceSelector", "objectSelector"):
        errors += validate_label_selector(hook.get(key), f"{path}.{key}")
    errors += _validate_client_config(hook.get("clientConfig") or {}, f"{path}.clientConfig")
    errors += validate_match_conditions(
        hook.get("matchConditions") or [],
        f"{path}.matchConditions",
        cel.WEBHOOK_CONDITION_VARIABLES,
    )
    return errors


def _fully_qualified_name(name: str, path: str) -> list[FieldError]:
    if not name:
        return [FieldError(path, "", kind="required")]
    problems = name_errors("subdomain", name)
    if problems:
        return [FieldError(path, ",".join(problems), name)]
    if len(name.split(".")) < 3:
        return [
            FieldError(
                path, "should be a domain with at least three segments separated by dots", name
            )
        ]
    return []


def _validate_review_versions(versions: Any, path: str) -> list[FieldError]:
    path = f"{path}.admissionReviewVersions"
    if not versions:
        return [
            FieldError(path, "must specify one of " + ", ".join(_REVIEW_VERSIONS), kind="required")
        ]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        if version in seen:
            errors.append(FieldError(f"{path}[{i}]", "duplicate version", version))
            continue
        seen.add(version)
        if not DNS1035_LABEL_RE.match(str(version)):
            errors.append(FieldError(f"{path}[{i}]", DNS1035_LABEL_MSG, version))
    if not seen & set(_REVIEW_VERSIONS):
        detail = "must include at least one of " + ", ".join(_REVIEW_VERSIONS)
        errors.append(FieldError(path, detail, versions))
    return errors


def _validate_client_config(config: Mapping[str, Any], path: str) -> list[FieldError]:
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        return [FieldError(path, "exactly one of url or service is required", kind="required")]
    if url is not None:
        return _validate_url(str(url), f"{path}.url")
    return _validate_service(service, f"{path}.service")


def _validate_url(url: str, path: str) -> list[FieldError]:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        return [FieldError(path, f"url must be a valid URL: {exc}{_URL_FORM}", kind="required")]
    errors: list[FieldError] = []
    if parts.scheme != "https":
        errors.append(
            FieldError(path, "'https' is the only allowed URL scheme" + _URL_FORM, parts.scheme)
        )
    if not parts.netloc:
        errors.append(FieldError(path, "host must be specified" + _URL_FORM, parts.netloc))
    if "@" in parts.netloc:
        user = parts.netloc.rpartition("@")[0]
        errors.append(FieldError(path, "user information is not permitted in the URL", user))
    if parts.fragment:
        errors.append(FieldError(path, "fragments are not permitted in the URL", parts.fragment))
    if parts.query:
        errors.append(
            FieldError(path, "query parameters are not permitted in the URL", parts.query)
        )
    return errors


def _validate_service(service: Any, path: str) -> list[FieldError]:
    if not isinstance(service, Mapping):
        return [FieldError(path, "must be a service reference", service)]
    errors: list[FieldError] = []
    if not service.get("name"):
        errors.append(FieldError(f"{path}.name", "service name is required", kind="required"))
    if not service.get("namespace"):
        errors.append(
            FieldError(f"{path}.namespace", "service namespace is required", kind="required")
        )
    port = service.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        detail = "port is not valid: must be between 1 and 65535, inclusive"
        errors.append(FieldError(f"{path}.port", detail, port))
    url_path = service.get("path")
    if url_path in (None, "", "/"):
        return errors
    if not str(url_path).startswith("/"):
        errors.append(FieldError(f"{path}.path", "must start with a '/'", url_path))
    steps = str(url_path)[1:].removesuffix("/").split("/")
    for i, step in enumerate(steps):
        if not step:
            errors.append(FieldError(f"{path}.path", f"segment[{i}] may not be empty", url_path))
            continue
        for problem in name_errors("subdomain", step):
            errors.append(FieldError(f"{path}.path", f"segment[{i}]: {problem}", url_path))
    return errors
