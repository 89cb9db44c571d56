"""How big each reliability scenario runs: a bounded size in the normal test run, and the
issue's full size under the `soak` marker (`make soak`)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Mode:
    """How big each scenario runs."""

    name: str
    fault_grants: int  # grant requests under injected cluster faults
    fault_concurrency: int
    crash_rounds: int  # kill -9 rounds
    outage_seconds: float  # how long PostgreSQL stays down
    outage_clients: int
    load_clients: int  # concurrent clients
    load_seconds: float
    fuzz_examples: int  # schemathesis examples per operation and generation mode


DEFAULT = Mode(
    name="default",
    fault_grants=40,
    fault_concurrency=8,
    crash_rounds=3,
    outage_seconds=3.0,
    outage_clients=4,
    load_clients=20,
    load_seconds=6.0,
    fuzz_examples=8,
)
SOAK = Mode(
    name="soak",
    fault_grants=300,
    fault_concurrency=16,
    crash_rounds=30,
    outage_seconds=15.0,
    outage_clients=16,
    load_clients=200,
    load_seconds=60.0,
    fuzz_examples=150,
)
MODES = [
    pytest.param(DEFAULT, id="default"),
    pytest.param(SOAK, id="soak", marks=[pytest.mark.soak, pytest.mark.timeout(3600)]),
]
