"""ValidatingAdmissionWebhook: which webhooks a request reaches, calling them, and their verdict.

Follows k8s.io/apiserver's webhook plugin: configurations in name order, a webhook is called
when a rule matches (group, version, resource/subresource, operation, scope), its
namespaceSelector and objectSelector match, and its matchConditions (CEL) all hold; matching
webhooks are called concurrently with an admission.k8s.io/v1 AdmissionReview (POST to
`clientConfig.url`, or to the service, which kubesim maps to an address with
`--service-address NS/NAME=HOST:PORT`), over HTTPS verified against `caBundle`, within
`timeoutSeconds`. A denial or a failure under `failurePolicy: Fail` refuses the request with
the apiserver's Status; under `Ignore` a failure lets it through.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from kubesim import errors
from kubesim.admission import cel
from kubesim.admission.attributes import AdmissionAttributes
from kubesim.admission.cel_authorizer import Authorize, CelAuthorizer
from kubesim.admission.matching import (
    POLICY_RESOURCES,
    ConditionError,
    label_selector_matches,
    labels_of,
    match_conditions_result,
    object_selector_matches,
    rule_matches,
    selects_everything,
)
from kubesim.errors import ApiError
from kubesim.rbac import RequestAttributes
from kubesim.resources import lookup, resource
from kubesim.store import Store

WEBHOOK_CONFIGURATIONS: Final = resource(
    "admissionregistration.k8s.io", "validatingwebhookconfigurations"
)
NAMESPACES: Final = resource("", "namespaces")
SERVICES: Final = resource("", "services")
# Admission never consults webhooks about admission configuration itself, so a broken webhook
# can always be removed (rules.IsExemptAdmissionConfigurationResource).
_EXEMPT_RESOURCES: Final = POLICY_RESOURCES | {
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
}
_REVIEW_API_VERSION: Final = "admission.k8s.io/v1"
_MAX_CLIENTS: Final = 16


class WebhookCallError(Exception):
    """The webhook could not give a verdict (webhookutil.ErrCallingWebhook's reason)."""


@dataclass(frozen=True)
class Webhook:
    configuration: str
    spec: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def ignores_failures(self) -> bool:
        return self.spec.get("failurePolicy") == "Ignore"


class WebhookDispatcher:
    """The validating webhooks of one simulated cluster."""

    def __init__(
        self, store: Store, service_addresses: Mapping[str, str], authorize: Authorize
    ) -> None:
        self.store = store
        self.authorize = authorize  # for CEL's `authorizer`
        # "NAMESPACE/NAME" -> "HOST:PORT": where a clientConfig.service is reachable from here.
        self.service_addresses = dict(service_addresses)
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def configured(self) -> bool:
        return any(True for _ in self.store.iter(WEBHOOK_CONFIGURATIONS))

    async def dispatch(self, attributes: AdmissionAttributes) -> list[str]:
        """The warnings of the webhooks that allowed the request; raises the refusal."""
        if attributes.resource.group == "admissionregistration.k8s.io" and (
            attributes.resource.resource in _EXEMPT_RESOURCES
        ):
            return []
        hooks = [hook for hook in self._webhooks() if self._should_call(hook, attributes)]
        if not hooks:
            return []
        outcomes = await asyncio.gather(*(self._verdict(hook, attributes) for hook in hooks))
        # The apiserver returns the first error its goroutines report; kubesim takes the
        # first in configuration order, so a test sees the same error every run.
        for outcome in outcomes:
            if isinstance(outcome, ApiError):
                raise outcome
        return [w for outcome in outcomes if isinstance(outcome, list) for w in outcome]

    def _webhooks(self) -> list[Webhook]:
        configurations = sorted(
            self.store.iter(WEBHOOK_CONFIGURATIONS), key=lambda c: c["metadata"]["name"]
        )
        return [
            Webhook(c["metadata"]["name"], hook)
            for c in configurations
            for hook in c.get("webhooks") or []
        ]

    # --- matching ----------------------------------------------------------------------------

    def _should_call(self, hook: Webhook, attributes: AdmissionAttributes) -> bool:
        if not any(rule_matches(rule, attributes) for rule in hook.spec.get("rules") or []):
            return False
        if not self._namespace_matches(hook.spec.get("namespaceSelector") or {}, attributes):
            return False
        if not object_selector_matches(hook.spec.get("objectSelector") or {}, attributes):
            return False
        return self._conditions_hold(hook, attributes)

    def _namespace_matches(
        self, selector: Mapping[str, Any], attributes: AdmissionAttributes
    ) -> bool:
        if selects_everything(selector):
            return True
        if attributes.resource.resource == "namespaces" and attributes.resource.group == "":
            # A Namespace is matched on its own labels.
            namespace = attributes.object or attributes.old_object or {}
        elif not attributes.namespace:
            return True  # other cluster-scoped objects are never filtered by namespace
        else:
            namespace = dict(self.store.peek(NAMESPACES, "", attributes.namespace) or {})
        return label_selector_matches(selector, labels_of(namespace))

    def _conditions_hold(self, hook: Webhook, attributes: AdmissionAttributes) -> bool:
        conditions = hook.spec.get("matchConditions") or []
        if not conditions:
            return True
        activation = {
            "object": attributes.object,
            "oldObject": attributes.old_object,
            "request": attributes.cel_request(),
            "authorizer": CelAuthorizer(
                self.authorize,
                attributes.user,
                RequestAttributes(
                    verb="",
                    api_group=attributes.resource.group,
                    resource=attributes.resource.resource,
                    subresource=attributes.subresource,
                    name=attributes.name,
                    namespace=attributes.namespace,
                ),
            ),
        }

        def evaluate(expression: str) -> Any:
            try:
                program = cel.compile(expression, cel.WEBHOOK_CONDITION_VARIABLES)
                return cel.evaluate(program, activation)
            except (cel.CelCompileError, cel.CelEvaluationError) as exc:
                raise ConditionError(
                    f"expression '{expression}' resulted in error: {exc}"
                ) from None

        matched, error = match_conditions_result(conditions, evaluate)
        if error and not hook.ignores_failures:
            rt = lookup(
                attributes.resource.group, attributes.resource.version, attributes.resource.resource
            )
            raise errors.forbidden(rt, attributes.name, error)
        return matched and not error

    # --- calling -----------------------------------------------------------------------------

    async def _verdict(
        self, hook: Webhook, attributes: AdmissionAttributes
    ) -> ApiError | list[str]:
        """The error that refuses the request, or the webhook's warnings when it allows it
        (none when it failed under failurePolicy Ignore)."""
        if attributes.dry_run and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            return errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            response = await self._call(hook, attributes)
        except WebhookCallError as exc:
            if hook.ignores_failures:
                return []
            return errors.internal_error(f'failed calling webhook "{hook.name}": {exc}')
        if response.get("allowed") is True:
            return [str(w) for w in response.get("warnings") or []]
        return denial(hook.name, response.get("status"))

    async def _call(self, hook: Webhook, attributes: AdmissionAttributes) -> Mapping[str, Any]:
        uid = str(uuid.uuid4())
        review = {
            "kind": "AdmissionReview",
            "apiVersion": _REVIEW_API_VERSION,
            "request": attributes.review_request(uid),
        }
        timeout = int(hook.spec.get("timeoutSeconds") or 10)
        # The apiserver tells the webhook its deadline in the query.
        query = f"?timeout={timeout}s"
        target = self._target(hook.spec.get("clientConfig") or {}, query)
        url = target.url + query
        client = self._client(str((hook.spec.get("clientConfig") or {}).get("caBundle") or ""))
        try:
            reply = await client.post(
                target.connect_url + query,
                content=json.dumps(review).encode(),
                headers={
                    "User-Agent": "kube-apiserver-admission",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "Host": target.host,
                },
                timeout=timeout,
                extensions={"sni_hostname": target.server_name},
            )
        except httpx.TimeoutException:
            raise WebhookCallError(
                f'failed to call webhook: Post "{url}": context deadline exceeded'
            ) from None
        except httpx.HTTPError as exc:
            raise WebhookCallError(
                f'failed to call webhook: Post "{url}": {_go_transport_error(exc, target)}'
            ) from None
        if reply.status_code >= 300:
            raise WebhookCallError(f"failed to call webhook: {_go_status_error(reply)}")
        try:
            body = reply.json()
        except ValueError as exc:
            raise WebhookCallError(
                f"failed to call webhook: couldn't get version/kind; json parse error: {exc}"
            ) from None
        return verified_response(uid, body)

    def _target(self, config: Mapping[str, Any], query: str) -> _Target:
        if config.get("url"):
            url = str(config["url"])
            parsed = httpx.URL(url)
            host = parsed.host
            return _Target(url, url, parsed.netloc.decode(), host)
        service = config.get("service") or {}
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        port = int(service.get("port") or 443)
        path = str(service.get("path") or "")
        server_name = f"{name}.{namespace}.svc"
        url = f"https://{server_name}:{port}{path}"
        if self.store.peek(SERVICES, namespace, name) is None:
            raise WebhookCallError(
                f'failed to call webhook: Post "{url}{query}": service "{name}" not found'
            )
        address = self.service_addresses.get(f"{namespace}/{name}")
        if address is None:
            raise WebhookCallError(
                f'failed to call webhook: Post "{url}{query}": kubesim has no address for service '
                f"{namespace}/{name} (start it with --service-address {namespace}/{name}=HOST:PORT)"
            )
        return _Target(url, f"https://{address}{path}", f"{server_name}:{port}", server_name)

    def _client(self, ca_bundle: str) -> httpx.AsyncClient:
        """One keep-alive client per CA bundle, as the apiserver caches its webhook clients."""
        client = self._clients.pop(ca_bundle, None)
        if client is None:
            client = httpx.AsyncClient(verify=_tls_context(ca_bundle), trust_env=False)
            if len(self._clients) >= _MAX_CLIENTS:
                # Tests register a webhook with a fresh CA each time: drop the oldest client.
                oldest = self._clients.pop(next(iter(self._clients)))
                self._closing.add(asyncio.ensure_future(oldest.aclose()))
                self._closing = {task for task in self._closing if not task.done()}
        self._clients[ca_bundle] = client  # most recently used last
        return client


@dataclass(frozen=True)
class _Target:
    url: str  # as the apiserver names it in errors
    connect_url: str  # where kubesim sends it
    host: str  # the Host header
    server_name: str  # TLS server name the certificate must be valid for


def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    if not ca_bundle:
        return ssl.create_default_context()  # no caBundle: the system's roots, as upstream
    # Trust only the bundle, as the apiserver does when a caBundle is given.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=base64.b64decode(ca_bundle).decode())
    except (ValueError, ssl.SSLError):
        raise WebhookCallError(
            "unable to load root certificates: unable to parse bytes as PEM block"
        ) from None
    return context


def _go_transport_error(exc: httpx.HTTPError, target: _Target) -> str:
    """Transport failures worded as Go's net/http reports them."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            if "Hostname mismatch" in str(cause) or "IP address mismatch" in str(cause):
                why = f"x509: certificate is not valid for {target.server_name}"
                return f"tls: failed to verify certificate: {why}"
            return (
                "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            )
        if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(cause):
            address = httpx.URL(target.connect_url).netloc.decode()
            return f"dial tcp {address}: connect: connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _go_status_error(reply: httpx.Response) -> str:
    if reply.status_code == 404:
        return "the server could not find the requested resource"
    text = reply.text.strip()
    return f'an error on the server ("{text}") has prevented the request from succeeding'


def verified_response(uid: str, review: Any) -> Mapping[str, Any]:
    """The response of a webhook's AdmissionReview, checked as VerifyAdmissionResponse does."""
    if not isinstance(review, Mapping):
        raise WebhookCallError(
            "failed to call webhook: couldn't get version/kind; json parse error"
        )
    kind = f"{review.get('apiVersion', '')}, Kind={review.get('kind', '')}"
    if review.get("apiVersion") != _REVIEW_API_VERSION or review.get("kind") != "AdmissionReview":
        raise WebhookCallError(
            f"expected webhook response of {_REVIEW_API_VERSION}, Kind=AdmissionReview, got {kind}"
        )
    response = review.get("response")
    if not isinstance(response, Mapping):
        raise WebhookCallError("webhook response was absent")
    if response.get("uid") != uid:
        raise WebhookCallError(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    if response.get("patch"):
        raise WebhookCallError("validating webhook may not return response.patch")
    if response.get("patchType"):
        raise WebhookCallError("validating webhook may not return response.patchType")
    return response


def denial(webhook: str, result: Any) -> ApiError:
    """webhookerrors.ToStatusErr: the webhook's own Status, its message prefixed."""
    status = dict(result) if isinstance(result, Mapping) else {}
    code = int(status.get("code") or 0)
    denied_by = f'admission webhook "{webhook}" denied the request'
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return ApiError(max(code, 400), str(status.get("reason") or ""), message, details)
