"""The second authorization of a streaming upgrade, from Kubernetes 1.35.

A WebSocket exec/attach/portforward is a GET, so the request filter authorizes it as `get`
(kubernetes/kubernetes#78741). From 1.35 the pod's connect handler also requires `create` on
the subresource before it contacts the kubelet (the `AuthorizePodWebsocketUpgradeCreatePermission`
gate, beta and on by default; kubernetes/kubernetes#134577), so an upgrade needs both verbs there
and `get` alone before. A request already authorized as `create` (SPDY's POST) is not asked
again. The refusal is `NewForbidden(pods, name, reason)`: the message carries the authorizer's
reason, which RBAC leaves empty, not the "User ... cannot" sentence of the request filter.
"""

from __future__ import annotations

import dataclasses

from kubesim import errors
from kubesim.rbac import Authorizer, UserInfo
from kubesim.requestinfo import RequestInfo
from kubesim.resources import resource
from kubesim.versions import KubeVersion


def authorize_connect_create(
    authorizer: Authorizer, version: KubeVersion, user: UserInfo, info: RequestInfo
) -> None:
    """Raise the 403 a 1.35+ apiserver answers when `user` may not `create` the subresource."""
    if not version.websocket_upgrade_needs_create or info.verb == "create":
        return
    as_create = dataclasses.replace(info.attributes(), verb="create")
    decision = authorizer.authorize(user, as_create)
    if not decision.allowed:
        raise errors.forbidden(resource("", "pods"), info.name, decision.reason)
