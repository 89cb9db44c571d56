"""Resource requests: routing an authorized request to the registry or a subresource.

By the time a request gets here it is authenticated and authorized for its verb; what remains
is the work itself, plus RBAC escalation prevention on writes of Roles and bindings, which needs
the object being written.
"""

from __future__ import annotations

from typing import Any, Final

from kubesim import errors
from kubesim.admission import (
    RequestAdmission,
    connect_attributes,
    delete_attributes,
    subresource_create_attributes,
    write_attributes,
)
from kubesim.cluster import Cluster
from kubesim.errors import ApiError
from kubesim.httpio import Request, Response, json_response, warning_headers
from kubesim.patch import MERGE_PATCH, apply_patch
from kubesim.podexec import StreamSession, container_name, open_stream
from kubesim.podexec.authorization import authorize_connect_create
from kubesim.rbac import NOT_FOUND_PREFIX, UserInfo, denial_detail
from kubesim.registry import Admit, AdmitDeletes
from kubesim.requestinfo import RequestInfo
from kubesim.resources import ResourceType, lookup, resource
from kubesim.reviews import review
from kubesim.store import Obj
from kubesim.tables import to_table
from kubesim.tokenrequest import create_token, review_token

_ROLE_KINDS: Final = ("Role", "ClusterRole")
_BINDING_KINDS: Final = ("RoleBinding", "ClusterRoleBinding")
_GC_FIELDS: Final = ("ownerReferences", "finalizers")


def _only_gc_fields_changed(new: Obj, old: Obj) -> bool:
    # Upstream skips escalation checks for writes that only touch garbage-collection fields.
    def strip(obj: Obj) -> Obj:
        meta = {
            k: v for k, v in obj["metadata"].items() if k not in (*_GC_FIELDS, "resourceVersion")
        }
        return {**obj, "metadata": meta}

    return strip(new) == strip(old)


class ResourceHandler:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.registry = cluster.registry

    def handle(
        self, user: UserInfo, info: RequestInfo, request: Request, admission: RequestAdmission
    ) -> Response | StreamSession:
        rt = lookup(info.api_group, info.api_version, info.resource)
        if rt is None or info.extra_parts:
            raise errors.path_not_found()
        if info.namespace and not rt.namespaced and rt.plural != "namespaces":
            raise errors.path_not_found()
        writes = _Admission(admission, user, rt, request)
        if info.subresource:
            return self._subresource(user, info, request, rt, writes)
        if rt.virtual:
            if info.verb != "create":
                raise errors.method_not_allowed()
            return self._review(user, info, request, rt)
        namespace = info.namespace if rt.namespaced else ""
        if rt.namespaced and not namespace and info.verb not in ("list", "watch"):
            raise errors.method_not_allowed()
        verb = info.verb
        if verb == "get":
            return self._respond(rt, request, self.registry.get(rt, namespace, info.name))
        if verb == "list":
            listed = self.registry.list_objects(rt, namespace or None, request.query)
            return self._respond(rt, request, listed, is_list=True)
        if verb == "watch":
            raise ApiError(405, "MethodNotAllowed", "kubesim does not support watch requests", {})
        if verb == "create":
            body = request.decode_body()
            dry_run = bool(request.query.get("dryRun"))
            admit = writes.chain(self._admit(user, rt, namespace), namespace)
            obj = self.registry.create(rt, namespace, body, admit, dry_run)
            return json_response(obj, 201)
        if verb == "update":
            admit = writes.chain(self._admit(user, rt, namespace, info.name), namespace)
            body = request.decode_body()
            obj = self.registry.update(
                rt, namespace, info.name, body, admit, dry_run=writes.dry_run
            )
            return json_response(obj)
        if verb == "patch":
            content_type, patch = request.decode_patch()
            admit = writes.chain(self._admit(user, rt, namespace, info.name), namespace)
            existed = self.cluster.store.exists(rt, namespace, info.name)
            obj = self.registry.patch(
                rt, namespace, info.name, content_type, patch, admit, dry_run=writes.dry_run
            )
            # Server-side apply may create the object, which is a 201 like any create.
            return json_response(obj, 200 if existed else 201)
        if verb == "delete":
            options = request.decode_optional_body()
            admit_deletes = writes.deletes(namespace, options)
            obj = self.registry.delete(rt, namespace, info.name, options, admit_deletes)
            return json_response(obj)
        if verb == "deletecollection":
            admit_deletes = writes.deletes(namespace, None)
            return json_response(
                self.registry.delete_collection(rt, namespace or None, request.query, admit_deletes)
            )
        raise errors.method_not_allowed()

    def _respond(
        self, rt: ResourceType, request: Request, obj: Obj, is_list: bool = False
    ) -> Response:
        if request.wants_table():
            items = obj["items"] if is_list else [obj]
            return json_response(
                to_table(rt, items, obj["metadata"] if is_list else {}, self.cluster.clock.now())
            )
        return json_response(obj)

    # --- escalation prevention -------------------------------------------------------------

    def _admit(self, user: UserInfo, rt: ResourceType, namespace: str, name: str = "") -> Admit:
        scope = namespace if rt.namespaced else None

        def admit(new: Obj, old: Obj | None) -> None:
            if old is not None and _only_gc_fields_changed(new, old):
                return
            object_name = new["metadata"].get("name", "")
            if rt.kind in _ROLE_KINDS:
                decision = self.cluster.authorizer.check_role_escalation(
                    user,
                    scope,
                    new.get("rules") or [],
                    name=name,
                    aggregation_rule=_has_aggregation_rule(new) or _has_aggregation_rule(old),
                )
            elif rt.kind in _BINDING_KINDS:
                decision = self.cluster.authorizer.check_binding(user, new, scope)
            else:
                return
            if decision.allowed:
                return
            if decision.reason.startswith(NOT_FOUND_PREFIX):
                # As kube-apiserver: without `bind`, the role must be resolvable, and its
                # lookup's NotFound is what the client sees.
                ref = new.get("roleRef") or {}
                plural = "roles" if ref.get("kind") == "Role" else "clusterroles"
                role_rt = resource("rbac.authorization.k8s.io", plural)
                raise errors.not_found(role_rt, str(ref.get("name", "")))
            raise errors.forbidden(rt, object_name, denial_detail(decision.reason))

        return admit if rt.kind in (*_ROLE_KINDS, *_BINDING_KINDS) else _admit_all

    # --- subresources and reviews ----------------------------------------------------------

    def _review(
        self, user: UserInfo, info: RequestInfo, request: Request, rt: ResourceType
    ) -> Response:
        body = request.decode_body()
        if rt.kind == "TokenReview":
            return json_response(review_token(self.cluster, body), 201)
        return json_response(review(self.cluster, rt, info.namespace, body, user), 201)

    def _subresource(
        self,
        user: UserInfo,
        info: RequestInfo,
        request: Request,
        rt: ResourceType,
        writes: _Admission,
    ) -> Response | StreamSession:
        sub = rt.subresource(info.subresource)
        if sub is None or info.verb not in sub.verbs:
            if sub is None:
                raise errors.path_not_found()
            raise errors.method_not_allowed()
        namespace = info.namespace if rt.namespaced else ""
        name = info.name
        if sub.name == "token":
            body = request.decode_body()
            if isinstance(body, dict):  # anything else is create_token's 400
                writes.subresource_create(sub.name, namespace, name, body)
            token, warnings = create_token(self.cluster, namespace, name, body)
            return json_response(token, 201, warning_headers(warnings))
        if sub.name in ("exec", "attach"):
            # CONNECT admission comes before the pod is looked up, as in the apiserver.
            writes.connect(sub.name, namespace, name)

            def authorize_connect() -> None:
                authorize_connect_create(self.cluster.authorizer, self.cluster.version, user, info)

            return open_stream(self.registry, sub.name, namespace, name, request, authorize_connect)
        if sub.name == "log":
            return self._log(namespace, name, request)
        if sub.name in ("status", "ephemeralcontainers", "finalize"):
            target = "status" if sub.name == "finalize" else sub.name
            if info.verb == "get":
                return json_response(self.registry.get(rt, namespace, name))
            admit = writes.chain(_admit_all, namespace, sub.name)
            if info.verb == "update":
                body = request.decode_body()
                return json_response(
                    self.registry.update(
                        rt, namespace, name, body, admit, target, dry_run=writes.dry_run
                    )
                )
            content_type, patch = request.decode_patch()
            obj = self.registry.patch(
                rt, namespace, name, content_type, patch, admit, target, dry_run=writes.dry_run
            )
            return json_response(obj)
        if sub.name == "scale":
            return self._scale(rt, namespace, name, info, request)
        raise errors.path_not_found()

    def _log(self, namespace: str, name: str, request: Request) -> Response:
        pod = self.registry.get(resource("", "pods"), namespace, name)
        container_name(pod, request.query.get("container", ""))  # 400 as for exec
        # No container runs, so there is nothing to show; an empty log is the honest answer.
        return Response(200, b"", "text/plain")

    def _scale(
        self, rt: ResourceType, namespace: str, name: str, info: RequestInfo, request: Request
    ) -> Response:
        obj = self.registry.get(rt, namespace, name)
        if info.verb != "get":
            if info.verb == "update":
                scale = request.decode_body()
            else:
                content_type, patch = request.decode_patch()
                scale = apply_patch(content_type, _scale_of(obj), patch)
            replicas = ((scale or {}).get("spec") or {}).get("replicas")
            obj = self.registry.patch(
                rt,
                namespace,
                name,
                MERGE_PATCH,
                {"spec": {"replicas": replicas}},
            )
        return json_response(_scale_of(obj))


def _scale_of(obj: Obj) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
    }


def _has_aggregation_rule(role: Obj | None) -> bool:
    rule = (role or {}).get("aggregationRule") or {}
    return bool(isinstance(rule, dict) and rule.get("clusterRoleSelectors"))


def _admit_all(new: Obj, old: Obj | None) -> None:
    return None


class _Admission:
    """The request's points of admission (kubesim.admission), bound to its user and resource."""

    def __init__(
        self, admission: RequestAdmission, user: UserInfo, rt: ResourceType, request: Request
    ) -> None:
        self.admission = admission
        self.user = user
        self.rt = rt
        self.request = request
        # ?dryRun=All: admitted (and validated) as a real write, never stored.
        self.dry_run = bool(request.query.get("dryRun"))

    def chain(self, first: Admit, namespace: str, subresource: str = "") -> Admit:
        """`first` (escalation checks), then validating admission of the final object."""

        def admit(new: Obj, old: Obj | None) -> None:
            first(new, old)
            attributes = write_attributes(
                self.rt, subresource, namespace, new, old, self.request.query, self.user
            )
            self.admission.check(attributes, target=new if old is None else None)

        return admit

    def deletes(self, namespace: str, options: Any) -> AdmitDeletes:
        def admit(objects: list[Obj]) -> None:
            self.admission.check_all(
                [
                    delete_attributes(
                        self.rt,
                        str(obj["metadata"].get("namespace", namespace)),
                        obj,
                        options if isinstance(options, dict) else None,
                        self.request.query,
                        self.user,
                    )
                    for obj in objects
                ]
            )

        return admit

    def subresource_create(
        self, subresource: str, namespace: str, name: str, body: dict[str, Any]
    ) -> None:
        self.admission.check(
            subresource_create_attributes(
                self.rt, subresource, namespace, name, body, self.request.query, self.user
            )
        )

    def connect(self, subresource: str, namespace: str, name: str) -> None:
        self.admission.check(
            connect_attributes(
                self.rt, subresource, namespace, name, self.request.query_lines, self.user
            )
        )
