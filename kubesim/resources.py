"""The resource types kubesim serves, and what discovery says about them.

One table drives everything that depends on "which resources exist": URL parsing, discovery
documents, kind lookup for manifests, and the name rules used by validation. Adding a resource
here makes it reachable through the generic create/get/list/update/patch/delete handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

STANDARD_VERBS: Final = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
CREATE_ONLY: Final = ("create",)


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""
    version: str = ""


STATUS_SUBRESOURCE: Final = Subresource("status", "", ("get", "patch", "update"))


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str
    # How metadata.name is validated: "subdomain" (most objects), "label" (namespaces),
    # "dns1035" (services) or "path" (RBAC objects, which allow ':' as in "system:basic-user").
    name_rule: str = "subdomain"
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    subresources: tuple[Subresource, ...] = ()
    categories: tuple[str, ...] = ()
    # Review objects (SubjectAccessReview, TokenReview...) are answered, never stored.
    virtual: bool = False
    has_generation: bool = False
    # The field whose changes move metadata.generation (webhook configurations have no spec).
    generation_of: str = "spec"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`pods` or `roles.rbac.authorization.k8s.io`, as error messages spell it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def collection_path(self, namespace: str | None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


_RBAC = "rbac.authorization.k8s.io"
_AUTHZ = "authorization.k8s.io"
_AUTHN = "authentication.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"

RESOURCE_TYPES: Final[tuple[ResourceType, ...]] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        singular="namespace",
        name_rule="label",
        short_names=("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        subresources=(
            Subresource("finalize", "Namespace", ("update",)),
            Subresource("status", "Namespace", ("get", "patch", "update")),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        namespaced=True,
        singular="pod",
        short_names=("po",),
        categories=("all",),
        subresources=(
            Subresource("attach", "PodAttachOptions", ("create", "get")),
            Subresource("ephemeralcontainers", "Pod", ("get", "patch", "update")),
            Subresource("exec", "PodExecOptions", ("create", "get")),
            Subresource("log", "Pod", ("get",)),
            Subresource("status", "Pod", ("get", "patch", "update")),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        namespaced=True,
        singular="serviceaccount",
        short_names=("sa",),
        subresources=(
            Subresource("token", "TokenRequest", ("create",), group=_AUTHN, version="v1"),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        namespaced=True,
        singular="persistentvolumeclaim",
        short_names=("pvc",),
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        subresources=(Subresource("status", "PersistentVolumeClaim", ("get", "patch", "update")),),
    ),
    ResourceType("", "v1", "secrets", "Secret", namespaced=True, singular="secret"),
    ResourceType(
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        namespaced=True,
        singular="configmap",
        short_names=("cm",),
    ),
    ResourceType(
        "",
        "v1",
        "services",
        "Service",
        namespaced=True,
        singular="service",
        name_rule="dns1035",
        short_names=("svc",),
        categories=("all",),
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        subresources=(Subresource("status", "Service", ("get", "patch", "update")),),
    ),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        namespaced=True,
        singular="deployment",
        short_names=("deploy",),
        categories=("all",),
        has_generation=True,
        subresources=(
            Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1"),
            Subresource("status", "Deployment", ("get", "patch", "update")),
        ),
    ),
    ResourceType(
        _RBAC,
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
        singular="clusterrolebinding",
        name_rule="path",
    ),
    ResourceType(
        _RBAC,
        "v1",
        "clusterroles",
        "ClusterRole",
        namespaced=False,
        singular="clusterrole",
        name_rule="path",
    ),
    ResourceType(
        _RBAC,
        "v1",
        "rolebindings",
        "RoleBinding",
        namespaced=True,
        singular="rolebinding",
        name_rule="path",
    ),
    ResourceType(_RBAC, "v1", "roles", "Role", namespaced=True, singular="role", name_rule="path"),
    ResourceType(
        _AUTHZ,
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        namespaced=True,
        singular="localsubjectaccessreview",
        verbs=CREATE_ONLY,
        virtual=True,
    ),
    ResourceType(
        _AUTHZ,
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        singular="selfsubjectaccessreview",
        verbs=CREATE_ONLY,
        virtual=True,
    ),
    ResourceType(
        _AUTHZ,
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        namespaced=False,
        singular="selfsubjectrulesreview",
        verbs=CREATE_ONLY,
        virtual=True,
    ),
    ResourceType(
        _AUTHZ,
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        namespaced=False,
        singular="subjectaccessreview",
        verbs=CREATE_ONLY,
        virtual=True,
    ),
    ResourceType(
        _AUTHN,
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        namespaced=False,
        singular="selfsubjectreview",
        verbs=CREATE_ONLY,
        virtual=True,
    ),
    ResourceType(
        _AUTHN,
        "v1",
        "tokenreviews",
        "TokenReview",
        namespaced=False,
        singular="tokenreview",
        verbs=CREATE_ONLY,
        virtual=True,
    ),
    ResourceType(
        _ADMISSION,
        "v1",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        namespaced=False,
        singular="validatingadmissionpolicy",
        categories=("api-extensions",),
        has_generation=True,
        subresources=(
            Subresource("status", "ValidatingAdmissionPolicy", ("get", "patch", "update")),
        ),
    ),
    ResourceType(
        _ADMISSION,
        "v1",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        namespaced=False,
        singular="validatingadmissionpolicybinding",
        categories=("api-extensions",),
        has_generation=True,
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        namespaced=True,
        singular="networkpolicy",
        short_names=("netpol",),
        has_generation=True,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
        singular="validatingwebhookconfiguration",
        categories=("api-extensions",),
        has_generation=True,
        generation_of="webhooks",
    ),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        namespaced=True,
        singular="poddisruptionbudget",
        short_names=("pdb",),
        has_generation=True,
        subresources=(Subresource("status", "PodDisruptionBudget", ("get", "patch", "update")),),
    ),
)

_BY_PATH: Final = {(r.group, r.version, r.plural): r for r in RESOURCE_TYPES}
_BY_KIND: Final = {(r.api_version, r.kind): r for r in RESOURCE_TYPES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def lookup_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def resource(group: str, plural: str) -> ResourceType:
    """The resource type for code that names one directly (always served in v1)."""
    return _BY_PATH[(group, "v1", plural)]


def group_versions() -> dict[str, list[str]]:
    """Served API groups (excluding the core group) with their versions, in discovery order."""
    groups: dict[str, list[str]] = {}
    for r in RESOURCE_TYPES:
        if r.group and r.version not in groups.setdefault(r.group, []):
            groups[r.group].append(r.version)
    return groups
