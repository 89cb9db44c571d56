"""Label selectors against the vectors of apimachinery's labels/selector_test.go.

The parser tables (TestSelectorParse, TestSetSelectorParser, TestRequirementConstructor,
TestLexer) and the matching tables (TestSelectorMatches, TestRequirementSelectorMatching) are
carried over as data; then the same rules are checked over the wire with the official client.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.label_selectors import (
    SelectorSyntaxError,
    label_matcher,
    parse_label_selector,
)
from kubesim.pytest_plugin import KubesimHandle

# TestSelectorParse
_GOOD = ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"]
_BAD = ["x=a||y=b", "x==a==b", "!x=a", "x<a"]

# TestSetSelectorParser: selector -> requirements (key, operator, values), sorted by key.
_SET_PARSER_VALID: list[tuple[str, list[tuple[str, str, tuple[str, ...]]]]] = [
    ("", []),
    ("\rx", [("x", "exists", ())]),
    (
        "this-is-a-dns.domain.com/key-with-dash",
        [("this-is-a-dns.domain.com/key-with-dash", "exists", ())],
    ),
    (
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        [("this-is-another-dns.domain.com/key-with-dash", "in", ("so", "what"))],
    ),
    (
        "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
        [("0.1.2.domain/99", "notin", ("10.10.100.1", "tick.tack.clock"))],
    ),
    ("foo  in\t (abc)", [("foo", "in", ("abc",))]),
    ("x notin\n (abc)", [("x", "notin", ("abc",))]),
    ("x  notin\t\t\t(abc,def)", [("x", "notin", ("abc", "def"))]),
    ("x in (abc,def)", [("x", "in", ("abc", "def"))]),
    ("x in (abc,)", [("x", "in", ("", "abc"))]),
    ("x in ()", [("x", "in", ("",))]),
    (
        "x notin (abc,,def),bar,z in (),w",
        [
            ("bar", "exists", ()),
            ("w", "exists", ()),
            ("x", "notin", ("", "abc", "def")),
            ("z", "in", ("",)),
        ],
    ),
    ("x=a", [("x", "=", ("a",))]),
    ("x>1", [("x", "gt", ("1",))]),
    ("x<7", [("x", "lt", ("7",))]),
    ("x=a,y!=b", [("x", "=", ("a",)), ("y", "!=", ("b",))]),
    (
        "x=a,y!=b,z in (h,i,j)",
        [("x", "=", ("a",)), ("y", "!=", ("b",)), ("z", "in", ("h", "i", "j"))],
    ),
    ("x notin ( )", [("x", "notin", ("",))]),
    ("x notin (, a)", [("x", "notin", ("", "a"))]),
    ("a ", [("a", "exists", ())]),
    ("a in (x,y,notin, z,in)", [("a", "in", ("in", "notin", "x", "y", "z"))]),
    ("x,y in (a)", [("x", "exists", ()), ("y", "in", ("a",))]),
]
_SET_PARSER_INVALID = [
    "x=a||y=b",
    "x,,y",
    ",x,y",
    "x nott in (y)",
    "a in (xyz),",
    "a in (xyz)b notin ()",
    "a in (xyz abc)",
    "a notin(",
    "a (",
    "(",
]
# TestRequirementConstructor, as selector strings the parser hands to NewRequirement.
_CONSTRUCTOR = [
    ("x in (foo)", True),
    ("x notin (foo)", True),
    ("x", True),
    ("!x", True),
    ("1foo in (bar)", True),
    ("1234 in (bar)", True),
    ("y>1", True),
    ("z<6", True),
    ("foo>bar", False),
    ("barz<blah", False),
    ("a" * 254, False),  # longer than a qualified name may be
]
# Key and value rules beyond the tables (IsQualifiedName, IsValidLabelValue).
_RULES = [
    ("example.com/" + "a" * 63, True),
    ("example.com/" + "a" * 64, False),
    ("a/b/c", False),
    ("/a", False),
    ("Example.com/a", False),
    ("-a", False),
    ("a=" + "v" * 63, True),
    ("a=" + "v" * 64, False),
    ("a=-v", False),
    ("a in (ok,-bad)", False),
    ("a>9223372036854775807", True),
    ("a>9223372036854775808", False),
    # Gt/Lt values are label values too: a sign is not a valid first character.
    ("a>+5", False),
    ("a<-1", False),
    ("a>", False),
    ("a=>b", False),
    ("a!b", False),
    ("a in b", False),
    ("a,", False),
]

# TestSelectorMatches and TestRequirementSelectorMatching.
_MATCHES: list[tuple[str, dict[str, str], bool]] = [
    ("", {"x": "y"}, True),
    ("x=y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("notin=in", {"notin": "in"}, True),
    ("x", {"x": "z"}, True),
    ("!x", {"y": "z"}, True),
    ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True),
    ("x=z", {}, False),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False),
    ("!x", {"x": "z"}, False),
    ("x>1", {"x": "0"}, False),
    ("x<1", {"x": "2"}, False),
    ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}, True),
    ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
    ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
    ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
    ("x notin (),y", {"y": ""}, True),
    ("!x,y", {"y": ""}, True),
    ("x notin (),!y", {"y": ""}, False),
    ("x in ()", {"y": "baz"}, False),
    ("z>1", {"z": "2"}, True),
    ("z>1", {"z": "v2"}, False),
    # Integers compare as integers, not as strings.
    ("z>9", {"z": "10"}, True),
    ("z<10", {"z": "9"}, True),
    ("z>1", {"z": "1"}, False),
    # An empty value in a set is the empty label value.
    ("x in (a,)", {"x": ""}, True),
    ("x in (a)", {"x": ""}, False),
    ("x notin (,a)", {"x": ""}, False),
]


@pytest.mark.parametrize("selector", _GOOD)
def test_upstream_good_selectors_parse(selector: str) -> None:
    parse_label_selector(selector)


@pytest.mark.parametrize("selector", _BAD + _SET_PARSER_INVALID)
def test_upstream_bad_selectors_are_refused(selector: str) -> None:
    with pytest.raises(SelectorSyntaxError):
        parse_label_selector(selector)


@pytest.mark.parametrize(("selector", "expected"), _SET_PARSER_VALID)
def test_upstream_set_selectors_parse_to_their_requirements(
    selector: str, expected: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    parsed = [(r.key, r.operator, r.values) for r in parse_label_selector(selector)]

    assert parsed == expected


@pytest.mark.parametrize(("selector", "valid"), _CONSTRUCTOR + _RULES)
def test_requirement_rules(selector: str, valid: bool) -> None:
    if valid:
        parse_label_selector(selector)
    else:
        with pytest.raises(SelectorSyntaxError):
            parse_label_selector(selector)


@pytest.mark.parametrize(("selector", "labels", "matched"), _MATCHES)
def test_upstream_matching(selector: str, labels: dict[str, str], matched: bool) -> None:
    assert label_matcher(selector)(labels) is matched


def test_errors_use_apimachinery_wording() -> None:
    cases = {
        "x,,y": "found ',', expected: identifier after ','",
        "a in (xyz abc)": "unable to parse requirement: found 'abc', expected: ',' or ')'",
        "x<a": (
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' "
            "operators, the value must be an integer"
        ),
        "x nott in (y)": (
            "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt"
        ),
    }
    for selector, message in cases.items():
        with pytest.raises(SelectorSyntaxError) as caught:
            parse_label_selector(selector)
        assert str(caught.value) == message, selector


# --- over the wire -----------------------------------------------------------------------------


def _pod(name: str, labels: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "payments", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }


@pytest.fixture
def labelled(kubesim: KubesimHandle) -> KubesimHandle:
    kubesim.apply(
        [
            _pod("tier-2", {"sel": "t", "tier": "2"}),
            _pod("tier-10", {"sel": "t", "tier": "10"}),
            _pod("tier-empty", {"sel": "t", "tier": ""}),
            _pod("tier-none", {"sel": "t"}),
        ]
    )
    return kubesim


def _names(handle: KubesimHandle, selector: str) -> list[str]:
    with handle.admin_client() as api:
        pods = client.CoreV1Api(api).list_namespaced_pod("payments", label_selector=selector)
    return sorted(p.metadata.name for p in pods.items)


def test_greater_than_compares_integers_over_the_wire(labelled: KubesimHandle) -> None:
    assert _names(labelled, "sel=t,tier>5") == ["tier-10"]
    assert _names(labelled, "sel=t,tier<5") == ["tier-2"]


def test_empty_value_in_a_set_matches_the_empty_label(labelled: KubesimHandle) -> None:
    assert _names(labelled, "sel=t,tier in (2,)") == ["tier-2", "tier-empty"]
    assert _names(labelled, "sel=t,tier notin ()") == ["tier-10", "tier-2", "tier-none"]


@pytest.mark.parametrize(
    "selector", ["sel=t,", ",sel=t", "sel=t,,tier", "tier in (2 10)", "tier=>2", "-bad=x"]
)
def test_malformed_selector_is_a_bad_request(labelled: KubesimHandle, selector: str) -> None:
    with labelled.admin_client() as api, pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_namespaced_pod("payments", label_selector=selector)

    assert caught.value.status == 400
    assert "expected" in caught.value.body or "Invalid value" in caught.value.body
