"""What admission sees of one request (k8s.io/apiserver admission.Attributes), and its CEL form.

Built by the request path at each point of admission: CREATE, UPDATE (patches included) and
DELETE of stored objects and their subresources, CONNECT of pods/exec and pods/attach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubesim.rbac import UserInfo
from kubesim.resources import ResourceType

Obj = dict[str, Any]


@dataclass(frozen=True)
class AdmissionAttributes:
    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    resource: ResourceType
    subresource: str
    namespace: str
    name: str
    object: Obj | None
    old_object: Obj | None
    user: UserInfo
    # The kind of `object` (PodExecOptions for pods/exec, TokenRequest for serviceaccounts/token).
    kind_group: str
    kind_version: str
    kind: str
    dry_run: bool = False

    @property
    def group_resource(self) -> str:
        """`roles.rbac.authorization.k8s.io`, as the 403's message names the resource."""
        return self.resource.group_resource

    @property
    def resource_path(self) -> str:
        """`pods/exec`: how admission rules name a subresource."""
        if self.subresource:
            return f"{self.resource.plural}/{self.subresource}"
        return self.resource.plural

    def request_document(self) -> Obj:
        """The AdmissionRequest as CEL's `request` sees it (object and oldObject are their own
        variables, not part of it)."""
        gvk = {"group": self.kind_group, "version": self.kind_version, "kind": self.kind}
        gvr = {
            "group": self.resource.group,
            "version": self.resource.version,
            "resource": self.resource.plural,
        }
        user: Obj = {"username": self.user.name, "groups": list(self.user.groups)}
        if self.user.uid:
            user["uid"] = self.user.uid
        return {
            "uid": "",
            "kind": gvk,
            "resource": gvr,
            "subResource": self.subresource,
            "requestKind": gvk,
            "requestResource": gvr,
            "requestSubResource": self.subresource,
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation,
            "userInfo": user,
            "dryRun": self.dry_run,
        }
