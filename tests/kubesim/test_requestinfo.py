"""Request attributes as kube-apiserver's RequestInfoFactory derives them.

The tables are apiserver's requestinfo_test.go (TestGetAPIRequestInfo, TestGetNonAPIRequestInfo,
TestFieldSelectorParsing) plus the query-bool rule for `watch`; the wire tests show what they
mean for authorization.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from kubesim.errors import ApiError
from kubesim.pytest_plugin import KubesimHandle
from kubesim.requestinfo import RequestInfo, parse_request


def _info(method: str, url: str) -> RequestInfo:
    parts = urlsplit(url)
    lines = parse_qsl(parts.query, keep_blank_values=True)
    return parse_request(method, parts.path, dict(lines), lines)


# method, url, verb, group, version, namespace, resource, subresource, name
_RESOURCE_CASES = [
    ("GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", ""),
    ("GET", "/api/v1/namespaces/other", "get", "", "v1", "other", "namespaces", "", "other"),
    ("GET", "/api/v1/namespaces/other/pods", "list", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo"),
    ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo"),
    ("GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""),
    ("HEAD", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""),
    ("PATCH", "/api/v1/namespaces/new-namespace", "patch", "", "v1", "new-namespace",
     "namespaces", "", "new-namespace"),
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "", "v1", "other", "pods", "",
     "foo"),
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "",
     "v1", "other", "pods", "", "foo"),
    ("GET", "/api/v1/watch/pods", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=true", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=false", "list", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "", "v1", "other", "pods",
     "status", "foo"),
    ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "", "v1", "other", "pods",
     "proxy", "foo"),
    ("PUT", "/api/v1/namespaces/other/finalize", "update", "", "v1", "other", "namespaces",
     "finalize", "other"),
    ("PUT", "/api/v1/namespaces/other/status", "update", "", "v1", "other", "namespaces",
     "status", "other"),
    ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "", "v1", "other", "pods", "", "foo"),
    ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "", "v1", "other", "pods", "",
     "foo"),
    ("POST", "/api/v1/namespaces/other/pods", "create", "", "v1", "other", "pods", "", ""),
    ("DELETE", "/api/v1/nodes", "deletecollection", "", "v1", "", "nodes", "", ""),
    ("DELETE", "/api/v1/namespaces", "deletecollection", "", "v1", "", "namespaces", "", ""),
    ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "", "v1", "other", "pods",
     "", ""),
    ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "extensions",
     "v1", "other", "pods", "", ""),
    ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "extensions", "v1", "other",
     "pods", "", ""),
    ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "extensions", "v1beta3",
     "other", "pods", "", ""),
    # A query bool: every value but 0/false (any case) is true, the empty one too.
    ("GET", "/api/v1/pods?watch=", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=yes", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=FALSE", "list", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=0&watch=1", "list", "", "v1", "", "pods", "", ""),
    # A named GET stays a get whatever `watch` says.
    ("GET", "/api/v1/namespaces/other/pods/foo?watch=true", "get", "", "v1", "other", "pods", "",
     "foo"),
    # An unknown method is no verb at all.
    ("OPTIONS", "/api/v1/namespaces/other/pods", "", "", "v1", "other", "pods", "", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "url", "verb", "group", "version", "namespace", "resource", "sub", "name"),
    _RESOURCE_CASES,
)
def test_upstream_request_info(
    method: str,
    url: str,
    verb: str,
    group: str,
    version: str,
    namespace: str,
    resource: str,
    sub: str,
    name: str,
) -> None:
    info = _info(method, url)

    assert info.resource_request
    assert (info.verb, info.api_group, info.api_version) == (verb, group, version)
    assert (info.namespace, info.resource, info.subresource, info.name) == (
        namespace,
        resource,
        sub,
        name,
    )


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/api/version/",
        "/apis/group/version/",
        "/badprefix/version/resource",
        "/apis/version/resource",
        "/not-api/version/resource",
        "/apis/extensions/v1beta1",
        "/api/version",
        "/api",
        "",
    ],
)
def test_upstream_non_resource_paths(url: str) -> None:
    assert not _info("GET", url).resource_request


def test_special_verb_without_a_resource_cannot_be_resolved() -> None:
    with pytest.raises(ApiError) as caught:
        _info("GET", "/api/v1/watch")

    assert caught.value.code == 500


@pytest.mark.parametrize(
    ("url", "verb", "name"),
    [
        ("/apis/group/version/resource", "list", ""),
        ("/apis/group/version/resource?fieldSelector=metadata.name=name1", "list", "name1"),
        (
            "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1",
            "watch",
            "name1",
        ),
        ("/apis/group/version/resource?fieldSelector=foo=bar", "list", ""),
        ("/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "list", ""),
        (
            "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true",
            "watch",
            "",
        ),
        (
            "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false",
            "list",
            "",
        ),
        # `==` pins too, `!=` does not; a name that is no path segment is not taken.
        ("/apis/group/version/resource?fieldSelector=metadata.name==name1", "list", "name1"),
        ("/apis/group/version/resource?fieldSelector=metadata.name!=name1", "list", ""),
        ("/apis/group/version/resource?fieldSelector=metadata.name=..", "list", ""),
        # The list options must decode as a whole: a bad label selector pins nothing.
        (
            "/apis/group/version/resource?fieldSelector=metadata.name=name1&labelSelector=a,,b",
            "list",
            "",
        ),
        # The /watch/ prefix sets the verb before any query is read: no name.
        ("/apis/group/version/watch/resource?fieldSelector=metadata.name=name1", "watch", ""),
    ],
)
def test_field_selector_names_the_request(url: str, verb: str, name: str) -> None:
    info = _info("GET", url)

    assert (info.verb, info.name) == (verb, name)


# --- over the wire -----------------------------------------------------------------------------


@pytest.fixture
def web0_reader(kubesim: KubesimHandle) -> httpx.Client:
    """User "reader", who may list and watch pod web-0 (by name) in payments and nothing more."""
    kubesim.add_user_token("reader-token", "reader", [])
    kubesim.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "web-0-reader", "namespace": "payments"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["pods"],
                        "resourceNames": ["web-0"],
                        "verbs": ["get", "list", "watch"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "web-0-reader", "namespace": "payments"},
                "roleRef": {"kind": "Role", "name": "web-0-reader"},
                "subjects": [{"kind": "User", "name": "reader"}],
            },
        ]
    )
    return httpx.Client(
        base_url=kubesim.url, headers={"Authorization": "Bearer reader-token"}, trust_env=False
    )


def test_list_pinned_to_a_name_is_allowed_by_resource_names(web0_reader: httpx.Client) -> None:
    with web0_reader as http:
        pinned = http.get(
            "/api/v1/namespaces/payments/pods", params={"fieldSelector": "metadata.name=web-0"}
        )
        unpinned = http.get("/api/v1/namespaces/payments/pods")

    assert pinned.status_code == 200
    assert [p["metadata"]["name"] for p in pinned.json()["items"]] == ["web-0"]
    assert unpinned.status_code == 403


def test_watch_prefix_is_not_narrowed_by_a_field_selector(web0_reader: httpx.Client) -> None:
    with web0_reader as http:
        response = http.get(
            "/api/v1/watch/namespaces/payments/pods",
            params={"fieldSelector": "metadata.name=web-0"},
        )

    assert response.status_code == 403
    assert 'cannot watch resource "pods"' in response.json()["message"]


def test_an_empty_watch_parameter_is_a_watch(web0_reader: httpx.Client) -> None:
    # The reader may watch web-0 only, so an unpinned `?watch=` (a watch) is refused as one.
    with web0_reader as http:
        response = http.get("/api/v1/namespaces/payments/pods?watch=")

    assert response.status_code == 403
    assert 'cannot watch resource "pods"' in response.json()["message"]


def test_proxy_is_its_own_verb(kubesim: KubesimHandle, web0_reader: httpx.Client) -> None:
    with web0_reader as http:
        denied = http.get("/api/v1/proxy/namespaces/payments/pods/web-0")
    with httpx.Client(
        base_url=kubesim.url,
        headers={"Authorization": f"Bearer {kubesim.admin_token}"},
        trust_env=False,
    ) as admin:
        unserved = admin.get("/api/v1/proxy/namespaces/payments/pods/web-0")

    # `get` on web-0 is not `proxy` on web-0.
    assert denied.status_code == 403
    assert 'cannot proxy resource "pods"' in denied.json()["message"]
    assert unserved.status_code == 404
