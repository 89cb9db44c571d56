"""`python -m bench --quick` runs end to end and reports every measurement (CI smoke test).

Only the shape and sanity of the results are checked, never their size: timings on a shared CI
machine say nothing, and the full benchmark is what docs/bench/RESULTS.md reports.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devsupport.postgres_server import postgres_available

REQUIRED_KEYS = (
    "post_p50_ratio_c1",
    "throughput_ratio_c32",
    "revocation_lag_p99_s",
    "reap_5000_s",
    "guard_decision_p99_ms_c32",
    "guard_exec_p50_ratio",
)


def _positive_finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not postgres_available():
        pytest.skip("the benchmark runs on PostgreSQL too: initdb/pg_ctl are not installed")
    out = tmp_path_factory.mktemp("bench") / "results.json"
    plot = out.with_name("latency.png")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out), "--plot", str(plot)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert plot.stat().st_size > 10_000  # a PNG with something drawn in it
    assert "| measurement |" in result.stdout  # the table
    results: dict[str, Any] = json.loads(out.read_text())
    return results


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_quick_run_reports_the_issue_keys_for_each_database(
    quick_results: dict[str, Any], database: str
) -> None:
    values = quick_results["results"][database]
    for key in REQUIRED_KEYS:
        assert _positive_finite(values[key]), f"{database}.{key} = {values[key]!r}"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_quick_run_measures_both_sides_and_cleans_up(
    quick_results: dict[str, Any], database: str
) -> None:
    values = quick_results["results"][database]
    for name in ("post_c1", "post_c32", "kubeconfig", "revoke"):
        for side in ("scangate", "floor"):
            summary = values[name][side]
            assert summary["n"] > 0
            assert _positive_finite(summary["p50_ms"])
            assert _positive_finite(summary["p99_ms"])
    cpu = values["cpu_ms_per_grant_c32"]
    assert _positive_finite(cpu["scangate"])
    assert _positive_finite(cpu["floor"])
    reference = values["event_loop_floor"]
    for key in ("post_c1_p50_ms", "throughput_c32_per_s", "cpu_ms_per_grant_c32"):
        assert _positive_finite(reference[key]), f"event_loop_floor.{key} = {reference[key]!r}"
    assert _positive_finite(reference["throughput_ratio_c32"])
    assert values["revocation_lag_unobserved"] == 0
    assert values["reap_grants"] == quick_results["plan"]["reap"]
    # The reaper's invariant held: no object outlived its grant.
    assert values["reap_objects_left"] == {"ServiceAccount": 0, "Role": 0, "RoleBinding": 0}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_quick_run_measures_the_guard_at_both_concurrencies_and_on_the_exec_path(
    quick_results: dict[str, Any], database: str
) -> None:
    guard = quick_results["results"][database]["guard"]
    plan = quick_results["plan"]
    assert guard["concurrency"] == 32
    for name, count in (
        ("decision_c1", plan["guard_c1"]),
        ("decision_c32", plan["guard_concurrent"]),
    ):
        assert guard[name]["n"] == count
        assert _positive_finite(guard[name]["p50_ms"])
        assert guard[name]["p99_ms"] >= guard[name]["p50_ms"]
    for side in ("exec_with_webhook", "exec_without_webhook"):
        assert guard[side]["n"] == plan["guard_exec"]
        assert _positive_finite(guard[side]["p50_ms"])
    assert _positive_finite(guard["exec_p50_ratio"])
    assert _positive_finite(guard["decision_cpu_ms_c32"])
    # Every exec made while the webhook was registered reached the guard and was recorded.
    assert guard["exec_decisions_recorded"] >= plan["guard_exec"]
    assert "guard_decision_p99_ms_c32" in quick_results["targets_met"][database]


def test_quick_run_describes_the_machine(quick_results: dict[str, Any]) -> None:
    machine = quick_results["machine"]
    assert machine["nproc"] >= 1
    assert machine["cpu_model"]
    assert machine["python"].startswith("3.")
