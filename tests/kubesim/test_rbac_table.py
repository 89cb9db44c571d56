"""Kubernetes RBAC semantics, case by case, against kubesim's authorizer (no server involved).

The cases (`tests.support.rbac_cases`) each state a small world of Roles and bindings, a user
and one request, and whether a real kube-apiserver allows it; `test_rbac_wire.py` drives the
same table through `kubectl auth can-i` against a running kubesim.
"""

from __future__ import annotations

import pytest

from kubesim.rbac import Authorizer
from tests.support.rbac_cases import CASES, Case, InMemoryRbac


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rbac_semantics(case: Case) -> None:
    authorizer = Authorizer(InMemoryRbac(case.world))

    decision = authorizer.authorize(case.who, case.request)

    assert decision.allowed is case.allowed, decision.reason


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
