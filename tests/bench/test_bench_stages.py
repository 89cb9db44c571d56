"""`python -m bench --only STAGE`: the plan names the stages chosen, and a run of some stages
reports, tabulates and checks against the targets only what those stages measured (the
report's own functions, fed with measurements of the shape the stages return)."""

from __future__ import annotations

import pytest

from bench.__main__ import _parser
from bench.guard import GuardResults
from bench.plan import STAGES, chosen_stages, plan_for
from bench.report import database_report, describe_machine, document, table
from bench.stats import Latencies


def _latencies(*ms: float) -> Latencies:
    return Latencies(tuple(m / 1000 for m in ms), wall_seconds=sum(ms) / 1000)


def _guard_results() -> GuardResults:
    return GuardResults(
        concurrency=32,
        decision_c1=_latencies(1.5, 2.0, 2.5),
        decision_concurrent=_latencies(6.0, 7.0, 12.0),
        exec_with_webhook=_latencies(11.0, 12.0),
        exec_without_webhook=_latencies(6.0, 7.0),
        exec_decisions_recorded=2,
        cpu_seconds_concurrent=0.0006,
    )


@pytest.mark.parametrize(
    ("argv", "stages"),
    [
        ([], STAGES),
        (["--only", "guard"], ("guard",)),
        # In the order the stages run, whatever the order given.
        (["--only", "guard", "--only", "lag"], ("lag", "guard")),
    ],
)
def test_only_picks_the_stages_of_the_plan(argv: list[str], stages: tuple[str, ...]) -> None:
    args = _parser().parse_args(argv)
    assert chosen_stages(args.only) == stages


def test_an_unknown_stage_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--only", "floor"])
    assert "invalid choice: 'floor'" in capsys.readouterr().err


def test_a_guard_only_run_reports_tabulates_and_checks_only_the_guard() -> None:
    plan = plan_for(quick=True, latency_ms=5.0, databases=("sqlite",), stages=("guard",))
    results = {"sqlite": database_report(None, None, None, _guard_results())}
    doc = document(plan, describe_machine(), results)

    assert doc["plan"]["stages"] == ["guard"]
    assert doc["targets_met"] == {"sqlite": {"guard_decision_p99_ms_c32": False}}
    assert set(results["sqlite"]) == {
        "guard_decision_p99_ms_c32",
        "guard_exec_p50_ratio",
        "guard",
    }
    rendered = table(doc)
    assert "guard admission decision c32: p50 / p99 ms (decisions/s)" in rendered
    assert "POST /v1/grants" not in rendered
    assert "reap" not in rendered
    assert "targets (sqlite): guard_decision_p99_ms_c32 < 10.0: NOT met" in rendered
