"""Field selectors as k8s.io/apimachinery/pkg/fields reads them: terms split on unescaped
commas, the first `!=`, `==` or `=` splits a term, nothing is trimmed, and values escape
`\\`, `,` and `=` with a backslash."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.pytest_plugin import KubesimHandle
from kubesim.selectors import FieldSelectorError, parse_field_selector


@pytest.mark.parametrize(
    ("selector", "terms"),
    [
        ("", []),
        ("a=b", [("a", "=", "b")]),
        ("a==b", [("a", "==", "b")]),
        ("a!=b", [("a", "!=", "b")]),
        ("a=", [("a", "=", "")]),
        ("x=a,y=b", [("x", "=", "a"), ("y", "=", "b")]),
        ("y=b,x=a", [("x", "=", "a"), ("y", "=", "b")]),  # sorted, as upstream
        ("a=b,,c=d", [("a", "=", "b"), ("c", "=", "d")]),  # empty terms are skipped
        (r"a=b\,c", [("a", "=", "b,c")]),
        (r"a=b\=c", [("a", "=", "b=c")]),
        (r"a=b\\c", [("a", "=", "b\\c")]),
        ("a =b", [("a ", "=", "b")]),  # no trimming
    ],
)
def test_field_selector_terms(selector: str, terms: list[tuple[str, str, str]]) -> None:
    assert parse_field_selector(selector) == terms


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=b==c", "invalid field selector: unescaped character in value: ="),
        (r"a=b\c", "invalid field selector: invalid escape sequence: \\c"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_malformed_field_selectors(selector: str, message: str) -> None:
    with pytest.raises(FieldSelectorError) as caught:
        parse_field_selector(selector)

    assert str(caught.value) == message


def test_field_selector_over_the_wire(kubesim: KubesimHandle) -> None:
    with kubesim.admin_client() as api:
        core = client.CoreV1Api(api)
        running = core.list_namespaced_pod("payments", field_selector="status.phase=Running")
        with pytest.raises(ApiException) as spaced:
            core.list_namespaced_pod("payments", field_selector="status.phase = Running")
        with pytest.raises(ApiException) as unsupported:
            core.list_namespaced_pod("payments", field_selector="spec.containers=x")

    assert sorted(p.metadata.name for p in running.items) == ["db-0", "web-0", "web-1"]
    assert spaced.value.status == 400
    assert "field label not supported: status.phase " in spaced.value.body
    assert unsupported.value.status == 400
