"""Turning measurements into the JSON document, the printed table and the target check."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path
from typing import Any, Final

from bench.expiry import LagResults, ReapResults
from bench.grant_requests import RequestResults
from bench.guard import GuardResults
from bench.plan import Plan

# The targets, each as (key, comparison, bound).
TARGETS: Final = (
    ("post_p50_ratio_c1", "<=", 1.25),
    ("throughput_ratio_c32", ">=", 0.7),
    ("revocation_lag_p99_s", "<", 1.0),
    ("reap_5000_s", "<", 30.0),
    ("guard_decision_p99_ms_c32", "<", 10.0),
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _r(value: float, digits: int = 3) -> float:
    return round(value, digits) if math.isfinite(value) else value


def database_report(
    requests: RequestResults | None,
    lag: LagResults | None,
    reap: ReapResults | None,
    guard: GuardResults | None,
) -> dict[str, Any]:
    """The results of one database: the stages that ran (`--only` may leave some out)."""
    report: dict[str, Any] = {}
    if requests is not None:
        report.update(_requests_report(requests))
    if lag is not None:
        report.update(_lag_report(lag))
    if reap is not None:
        report.update(
            {
                "reap_5000_s": _r(reap.seconds),
                "reap_grants": reap.grants,
                "reap_objects_left": reap.objects_left,
            }
        )
    if guard is not None:
        guard_report = guard.report()
        report.update(
            {
                # The grant guard: admission decision p99 at concurrency 32, measured by the client.
                "guard_decision_p99_ms_c32": guard_report["decision_c32"]["p99_ms"],
                # What the webhook adds to a WebSocket exec through the API server (with / without).
                "guard_exec_p50_ratio": guard_report["exec_p50_ratio"],
                "guard": guard_report,
            }
        )
    return report


def _requests_report(requests: RequestResults) -> dict[str, Any]:
    c1, cn = requests.post_c1, requests.post_concurrent
    kubeconfig, revoke = requests.kubeconfig, requests.revoke
    c1_report, cn_report = c1.report(), cn.report()
    return {
        # The keys. "c32" is the high-concurrency measurement (`concurrency`).
        "post_p50_ratio_c1": c1_report["p50_ratio"],
        "throughput_ratio_c32": cn_report["throughput_ratio"],
        "concurrency": requests.concurrency,
        "post_c1": c1_report,
        "post_c32": cn_report,
        "post_p50_ratio_c32": cn_report["p50_ratio"],
        "post_p99_ratio_c1": c1_report["p99_ratio"],
        "throughput_c32_per_s": cn_report["scangate_per_s"],
        "floor_throughput_c32_per_s": cn_report["floor_per_s"],
        # CPU per grant of scangate's process and of the floor's, at high concurrency: why
        # the throughputs differ when both are bound by one core.
        "cpu_ms_per_grant_c32": cn.cpu_ms_per_operation(),
        # A reference beside the floor: the same grant calls sent from an event loop
        # through scangate's client layer (app/kube/api_calls.py), with none of the rest of
        # scangate.
        "event_loop_floor": requests.event_loop_floor.report(c1, cn),
        "kubeconfig": kubeconfig.report(),
        "kubeconfig_p50_ratio": kubeconfig.report()["p50_ratio"],
        "revoke": revoke.report(),
        "revoke_p50_ratio": revoke.report()["p50_ratio"],
        "samples_ms": {
            name: {
                "scangate": [round(s * 1000, 3) for s in comparison.scangate_all.samples],
                "floor": [round(s * 1000, 3) for s in comparison.floor_all.samples],
            }
            for name, comparison in (
                ("post_c1", c1),
                ("post_c32", cn),
                ("kubeconfig", kubeconfig),
                ("revoke", revoke),
            )
        },
    }


def _lag_report(lag: LagResults) -> dict[str, Any]:
    return {
        "revocation_lag_p99_s": _r(lag.denied.p99),
        # Expiry -> the first denied request with the grant's token (with the apiserver's
        # token cache on: see bench/expiry.py); the ServiceAccount's deletion alone beside it.
        "revocation_lag_p50_s": _r(lag.denied.p50),
        "revocation_lag_max_s": _r(lag.denied.max),
        "revocation_lag_grants": lag.denied.count,
        "revocation_account_gone_p50_s": _r(lag.account_gone.p50),
        "revocation_account_gone_p99_s": _r(lag.account_gone.p99),
        "revocation_lag_unobserved": lag.unobserved,
        "revocation_finished_p50_s": _r(lag.finished.p50),
        "revocation_finished_p99_s": _r(lag.finished.p99),
        "revocation_finished_max_s": _r(lag.finished.max),
    }


def target_check(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, bool]]:
    checks: dict[str, dict[str, bool]] = {}
    for database, values in results.items():
        checks[database] = {}
        for key, op, bound in TARGETS:
            if key not in values:
                continue  # its stage did not run (`--only`)
            value = float(values[key])
            met = value <= bound if op == "<=" else value >= bound if op == ">=" else value < bound
            checks[database][key] = bool(met and math.isfinite(value))
    return checks


def document(plan: Plan, machine: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan": {
            "latency_ms": plan.latency_ms,
            "concurrency": plan.concurrency,
            "post_c1": plan.post_c1,
            "post_concurrent": plan.post_concurrent,
            "kubeconfig": plan.kubeconfig,
            "revoke": plan.revoke,
            "rounds": plan.rounds,
            "expiring_together": plan.expiring_together,
            "reap": plan.reap,
            "guard_concurrency": plan.guard_concurrency,
            "guard_c1": plan.guard_c1,
            "guard_concurrent": plan.guard_concurrent,
            "guard_exec": plan.guard_exec,
            "stages": list(plan.stages),
        },
        "machine": {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "targets": {key: f"{op} {bound}" for key, op, bound in TARGETS},
        "targets_met": target_check(results),
        "results": results,
    }


def _ms(summary: dict[str, Any], key: str) -> str:
    return f"{summary[key]:.1f}"


def _guard_rows(add: Any) -> None:
    for name, label in (("decision_c1", "c1"), ("decision_c32", "c32")):
        add(
            f"guard admission decision {label}: p50 / p99 ms (decisions/s)",
            lambda v, n=name: (
                f"{v['guard'][n]['p50_ms']:.2f} / {v['guard'][n]['p99_ms']:.2f} "
                f"({v['guard'][n]['per_s']:.0f}/s)"
            ),
        )
    add(
        "guard: scangate process CPU per decision at c32, ms",
        lambda v: f"{v['guard'].get('decision_cpu_ms_c32', float('nan')):.2f}",
    )
    for stat in ("p50", "p99"):
        add(
            f"WebSocket exec `true` {stat} ms (guard webhook / no webhook = ratio)",
            lambda v, s=stat: (
                f"{v['guard']['exec_with_webhook'][s + '_ms']:.1f} / "
                f"{v['guard']['exec_without_webhook'][s + '_ms']:.1f} = "
                f"{v['guard'][f'exec_{s}_ratio']:.2f}"
            ),
        )


def table(doc: dict[str, Any]) -> str:
    """A Markdown table: one column group per database."""
    results: dict[str, dict[str, Any]] = doc["results"]
    c = doc["plan"]["concurrency"]
    # Rows for the stages that ran (`--only` may leave some out).
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, cell: Any) -> None:
        rows.append((label, [cell(values) for values in results.values()]))

    if all("post_c1" in v for v in results.values()):
        for name, label in (
            ("post_c1", "POST /v1/grants c1"),
            ("post_c32", f"POST /v1/grants c{c}"),
            ("kubeconfig", "GET kubeconfig c1"),
            ("revoke", "POST revoke c1"),
        ):
            for stat in ("p50_ms", "p99_ms"):
                add(
                    f"{label} {stat[:3]} ms (scangate / floor = ratio)",
                    lambda v, n=name, s=stat: (
                        f"{_ms(v[n]['scangate'], s)} / {_ms(v[n]['floor'], s)} = "
                        f"{v[n][s[:3] + '_ratio']:.2f}"
                    ),
                )
        add(
            f"throughput c{c}, grants/s (scangate / floor = ratio)",
            lambda v: (
                f"{v['throughput_c32_per_s']:.0f} / {v['floor_throughput_c32_per_s']:.0f} = "
                f"{v['throughput_ratio_c32']:.2f}"
            ),
        )
        if all(v.get("cpu_ms_per_grant_c32") for v in results.values()):
            add(
                f"CPU per grant at c{c}, ms (scangate process / floor process)",
                lambda v: (
                    f"{v['cpu_ms_per_grant_c32']['scangate']:.2f} / "
                    f"{v['cpu_ms_per_grant_c32']['floor']:.2f}"
                ),
            )
        add(
            "reference: floor sent from an event loop (scangate's client layer): "
            f"POST c1 p50 ratio / c{c} throughput ratio",
            lambda v: (
                f"{v['event_loop_floor']['post_p50_ratio_c1']:.2f} / "
                f"{v['event_loop_floor']['throughput_ratio_c32']:.2f} "
                f"({v['event_loop_floor']['throughput_c32_per_s']:.0f} grants/s, "
                f"{v['event_loop_floor']['cpu_ms_per_grant_c32']:.2f} ms CPU per grant)"
            ),
        )
    if all("revocation_lag_p99_s" in v for v in results.values()):
        n_lag = doc["plan"]["expiring_together"]
        add(
            f"revocation lag, {n_lag} expiring together: first denied request p50 / p99 / max s",
            lambda v: (
                f"{v['revocation_lag_p50_s']:.3f} / {v['revocation_lag_p99_s']:.3f} / "
                f"{v['revocation_lag_max_s']:.3f}"
            ),
        )
        add(
            "… grant finished (all objects gone) p50 / p99 / max s",
            lambda v: (
                f"{v['revocation_finished_p50_s']:.3f} / {v['revocation_finished_p99_s']:.3f} / "
                f"{v['revocation_finished_max_s']:.3f}"
            ),
        )
    if all("reap_5000_s" in v for v in results.values()):
        add(f"reap {doc['plan']['reap']} expired grants, s", lambda v: f"{v['reap_5000_s']:.2f}")
    if all("guard" in v for v in results.values()):
        _guard_rows(add)
    header = "| measurement | " + " | ".join(results) + " |"
    lines = [header, "|---|" + "---|" * len(results)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    lines.append("")
    for database, checks in doc["targets_met"].items():
        verdicts = ", ".join(
            f"{key} {doc['targets'][key]}: {'met' if met else 'NOT met'}"
            for key, met in checks.items()
        )
        lines.append(f"targets ({database}): {verdicts}")
    return "\n".join(lines)
