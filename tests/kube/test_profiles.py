"""Scanner profiles grant exactly the README's scanner profile table, always restricted to the
named pods."""

from __future__ import annotations

import pytest

from app.kube.profiles import SCANNER_PROFILES, profile_rules

PODS = ["web-0", "web-1"]

EXPECTED = {
    "exec": {
        "pods": ["get"],
        "pods/exec": ["create", "get"],
        "pods/log": ["get"],
    },
    "debug": {
        "pods": ["get"],
        "pods/ephemeralcontainers": ["patch", "update"],
        "pods/attach": ["create", "get"],
        "pods/exec": ["create", "get"],
        "pods/log": ["get"],
    },
    "sidecar": {
        "pods": ["get"],
        "pods/log": ["get"],
    },
}


def test_the_three_profiles_exist() -> None:
    assert SCANNER_PROFILES == ("exec", "debug", "sidecar")


@pytest.mark.parametrize("scanner", SCANNER_PROFILES)
def test_profile_grants_exactly_the_design_table(scanner: str) -> None:
    rules = profile_rules(scanner, PODS)
    granted = {rule["resources"][0]: sorted(rule["verbs"]) for rule in rules}
    assert granted == EXPECTED[scanner]
    assert all(len(rule["resources"]) == 1 for rule in rules)


@pytest.mark.parametrize("scanner", SCANNER_PROFILES)
def test_every_rule_is_core_group_and_restricted_to_the_pods(scanner: str) -> None:
    for rule in profile_rules(scanner, PODS):
        assert rule["apiGroups"] == [""]
        assert rule["resourceNames"] == PODS
        assert set(rule) == {"apiGroups", "resources", "verbs", "resourceNames"}


@pytest.mark.parametrize("scanner", SCANNER_PROFILES)
def test_no_profile_can_list_watch_create_or_delete_pods(scanner: str) -> None:
    verbs = {verb for rule in profile_rules(scanner, PODS) for verb in rule["verbs"]}
    assert verbs.isdisjoint({"list", "watch", "delete", "deletecollection", "*"})
    resources = {res for rule in profile_rules(scanner, PODS) for res in rule["resources"]}
    assert all(res == "pods" or res.startswith("pods/") for res in resources)


def test_duplicate_pod_names_are_listed_once_in_request_order() -> None:
    rules = profile_rules("exec", ["web-1", "web-0", "web-1"])
    assert rules[0]["resourceNames"] == ["web-1", "web-0"]


def test_empty_pod_list_is_refused_because_empty_resource_names_means_all_pods() -> None:
    with pytest.raises(ValueError, match="at least one pod"):
        profile_rules("exec", [])


def test_unknown_scanner_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scanner"):
        profile_rules("root", PODS)


def test_returned_rules_are_fresh_lists_callers_may_mutate() -> None:
    first = profile_rules("exec", PODS)
    first[0]["verbs"].append("delete")
    assert "delete" not in profile_rules("exec", PODS)[0]["verbs"]
