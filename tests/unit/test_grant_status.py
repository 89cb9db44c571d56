"""The grant state machine: one table of allowed transitions, enforced by the repository."""

from __future__ import annotations

import pytest

from app.db.models import LIVE_STATUSES, TRANSITIONS, GrantStatus, check_transition


def test_every_status_has_its_transitions_and_ended_states_have_none() -> None:
    assert set(TRANSITIONS) == set(GrantStatus)
    # A pending request has no cluster object (not live) but has not ended either.
    ended = {s for s in GrantStatus if s not in LIVE_STATUSES} - {GrantStatus.PENDING_APPROVAL}
    assert ended == {
        GrantStatus.REVOKED,
        GrantStatus.EXPIRED,
        GrantStatus.FAILED,
        GrantStatus.REJECTED,
        GrantStatus.DENIED,
        GrantStatus.APPROVAL_EXPIRED,
    }
    assert all(TRANSITIONS[s] == frozenset() for s in ended)


def test_a_pending_request_is_provisioned_or_ends_without_ever_being_active_first() -> None:
    assert TRANSITIONS[GrantStatus.PENDING_APPROVAL] == {
        GrantStatus.PROVISIONING,
        GrantStatus.DENIED,
        GrantStatus.APPROVAL_EXPIRED,
        GrantStatus.REVOKED,
    }
    with pytest.raises(ValueError, match="pending_approval -> active"):
        check_transition([GrantStatus.PENDING_APPROVAL], GrantStatus.ACTIVE)
    with pytest.raises(ValueError, match="denied -> provisioning"):
        check_transition([GrantStatus.DENIED], GrantStatus.PROVISIONING)


def test_a_refused_request_ends_provisioning_as_rejected_never_an_active_grant() -> None:
    check_transition([GrantStatus.PROVISIONING], GrantStatus.REJECTED)
    with pytest.raises(ValueError, match="active -> rejected"):
        check_transition([GrantStatus.ACTIVE], GrantStatus.REJECTED)


def test_revoking_ends_only_as_revoked_or_expired() -> None:
    check_transition([GrantStatus.REVOKING], GrantStatus.EXPIRED)
    with pytest.raises(ValueError, match="revoking -> failed"):
        check_transition([GrantStatus.REVOKING], GrantStatus.FAILED)
    with pytest.raises(ValueError, match="expired -> active"):
        check_transition([GrantStatus.REVOKING, GrantStatus.EXPIRED], GrantStatus.ACTIVE)
