"""Turning a method and URL into what RBAC authorizes, as kube-apiserver's RequestInfoFactory does.

The details matter for authorization: GET on a collection is `list`, `?watch=` with any value
but `false`/`0` is `watch`, DELETE on a collection is `deletecollection`, `/namespaces/foo` is
resource `namespaces` named `foo` *in namespace* `foo`, and a list with
`fieldSelector=metadata.name=x` carries the name `x` so that a rule with resourceNames can
allow it (the deprecated `/watch/` prefix does not). `/proxy/...` is the verb `proxy`.
`/api/v1` and `/apis/<group>/<version>` themselves are non-resource URLs (discovery).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from kubesim import errors
from kubesim.label_selectors import SelectorSyntaxError, parse_label_selector
from kubesim.rbac import RequestAttributes
from kubesim.selectors import FieldSelectorError, parse_field_selector

_VERBS: Final = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_SPECIAL_VERBS: Final = frozenset({"proxy", "watch"})
_NAMESPACE_SUBRESOURCES: Final = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class RequestInfo:
    path: str
    verb: str
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    # More path segments than Kubernetes URLs have (e.g. /pods/x/log/extra): a 404.
    extra_parts: bool = False

    def attributes(self) -> RequestAttributes:
        return RequestAttributes(
            verb=self.verb,
            api_group=self.api_group,
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
            namespace=self.namespace,
            path=self.path,
            resource_request=self.resource_request,
        )


def _watch_requested(values: list[str]) -> bool:
    # A query bool, as apimachinery converts it: any value but "0" or "false" (any case) is
    # true, the empty one included (`?watch=` watches). The first value counts.
    return bool(values) and values[0] != "0" and values[0].lower() != "false"


def _exact_name(field_selector: str, label_selector: str) -> str | None:
    """The name a field selector pins with `metadata.name=` or `==` (fields.ParseSelector's
    terms and RequiresExactMatch), or None. If the list options do not decode (a field or
    label selector that does not parse), nothing is pinned."""
    try:
        parse_label_selector(label_selector)
    except SelectorSyntaxError:
        return None
    try:
        terms = parse_field_selector(field_selector)
    except FieldSelectorError:
        return None
    # RequiresExactMatch: the first `=`/`==` term on metadata.name (the terms are sorted).
    return next((v for f, op, v in terms if f == "metadata.name" and op != "!="), None)


def _valid_path_segment(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


def parse_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    query_lines: Sequence[tuple[str, str]] | None = None,
) -> RequestInfo:
    """``query_lines`` (every parameter, blanks included, in order) decides `watch` as
    apimachinery does; without it ``query`` stands in."""
    lines = list(query_lines) if query_lines is not None else list(query.items())
    parts = [p for p in path.split("/") if p]
    non_resource = RequestInfo(path=path, verb=method.lower(), resource_request=False)
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    if parts[0] == "api":
        if len(parts) < 3:
            return non_resource
        group, version, current = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return non_resource
        group, version, current = parts[1], parts[2], parts[3:]

    # `/watch/...` and `/proxy/...` (the deprecated prefixes) name the verb themselves,
    # whatever the method; any other method is mapped, and an unknown one is no verb at all.
    if current[0] in _SPECIAL_VERBS:
        if len(current) < 2:
            raise errors.internal_error(
                "failed to create RequestInfo: unable to determine kind and namespace from "
                f"url, {path}"
            )
        verb, current = current[0], current[1:]
    else:
        verb = _VERBS.get(method.upper(), "")

    namespace = ""
    if current[0] == "namespaces" and len(current) > 1:
        namespace = current[1]
        # /namespaces/<ns>/<resource>/...: the namespace prefix, unless what follows is a
        # subresource of the Namespace object itself.
        if len(current) > 2 and current[2] not in _NAMESPACE_SUBRESOURCES:
            current = current[2:]

    resource = current[0]
    name = current[1] if len(current) > 1 else ""
    # A proxy path's remainder is the proxied URL, not a subresource.
    subresource = current[2] if len(current) > 2 and verb != "proxy" else ""

    if not name and verb == "get":
        values = [v for k, v in lines if k == "watch"]
        verb = "watch" if _watch_requested(values) else "list"
        # Only a list or watch turned so from a GET is narrowed by its field selector: the
        # /watch/ prefix sets the verb first and is authorized for the whole collection.
        field_selector = next((v for k, v in lines if k == "fieldSelector"), "")
        label_selector = next((v for k, v in lines if k == "labelSelector"), "")
        pinned = _exact_name(field_selector, label_selector)
        if pinned is not None and _valid_path_segment(pinned):
            name = pinned
    elif not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        path=path,
        verb=verb,
        resource_request=True,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
        # kubesim serves nothing under the proxy prefix: after authorization, a 404.
        extra_parts=len(current) > 3 or verb == "proxy",
    )
