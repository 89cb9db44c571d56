"""What one benchmark run measures, and how much of it: the full plan and the `--quick` one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

DATABASES: Final = ("sqlite", "postgresql")
# The stages run per database, in this order (`--only` picks some).
STAGES: Final = ("requests", "lag", "reap", "guard")


@dataclass(frozen=True)
class Plan:
    latency_ms: float = 5.0
    # POST /v1/grants one at a time, per side (scangate and the floor).
    post_c1: int = 300
    # POST /v1/grants with `concurrency` callers at once (the "c32" figures), per side.
    concurrency: int = 32
    post_concurrent: int = 1500
    # Sequential kubeconfig fetches and revocations, per side.
    kubeconfig: int = 200
    revoke: int = 200
    # The measurements alternate between scangate and the floor in this many rounds, so a
    # burst of load from elsewhere on a shared machine hits both sides alike.
    rounds: int = 6
    # Revocation lag: this many grants expire at the same moment.
    expiring_together: int = 500
    # Mass expiry: this many expired grants are reaped (seeded straight into the database and
    # the cluster; creating them through the API would only measure POST again).
    reap: int = 5000
    warmup: int = 10
    # The grant guard: AdmissionReviews posted one at a time and `guard_concurrency` at once
    # (the concurrency 1 and 32, whatever `concurrency` is), and WebSocket execs
    # through kubesim per side (webhook registered / none).
    guard_concurrency: int = 32
    guard_c1: int = 1200
    guard_concurrent: int = 4800
    guard_exec: int = 300
    databases: tuple[str, ...] = field(default=DATABASES)
    stages: tuple[str, ...] = field(default=STAGES)


FULL: Final = Plan()
QUICK: Final = Plan(
    post_c1=20,
    concurrency=4,
    post_concurrent=20,
    kubeconfig=10,
    revoke=10,
    rounds=1,
    expiring_together=20,
    reap=50,
    warmup=2,
    guard_c1=100,
    guard_concurrent=640,
    guard_exec=20,
)


def chosen_stages(only: Sequence[str] | None) -> tuple[str, ...]:
    """The stages `--only` names, in the order they run (all of them without `--only`)."""
    return tuple(s for s in STAGES if s in only) if only else STAGES


def plan_for(
    *, quick: bool, latency_ms: float, databases: tuple[str, ...], stages: tuple[str, ...] = STAGES
) -> Plan:
    base = QUICK if quick else FULL
    return replace(base, latency_ms=latency_ms, databases=databases, stages=stages)
