"""The latency distributions as a PNG: scangate against the floor, per database and concurrency.

Each panel is an empirical CDF (the fraction of requests at most that fast), which shows the
median, the tail and the whole shape at once, and keeps both sides comparable on one axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI

import matplotlib.pyplot as plt


def _ecdf(samples: list[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(samples)
    n = len(ordered)
    return ordered, [(index + 1) / n for index in range(n)]


def draw(doc: dict[str, Any], path: Path) -> None:
    results: dict[str, dict[str, Any]] = doc["results"]
    plan = doc["plan"]
    panels = (
        ("post_c1", "POST /v1/grants, concurrency 1"),
        ("post_c32", f"POST /v1/grants, concurrency {plan['concurrency']}"),
        ("kubeconfig", "GET kubeconfig / POST revoke, concurrency 1"),
    )
    figure, axes = plt.subplots(
        len(results), len(panels), figsize=(15, 4.2 * len(results)), squeeze=False
    )
    for row, (database, values) in enumerate(results.items()):
        samples = values["samples_ms"]
        for column, (name, title) in enumerate(panels):
            axis = axes[row][column]
            series = [(name, "")]
            if name == "kubeconfig":
                series = [("kubeconfig", "kubeconfig "), ("revoke", "revoke ")]
            for key, prefix in series:
                for side, style in (("scangate", "-"), ("floor", "--")):
                    xs, ys = _ecdf(samples[key][side])
                    if xs:
                        p50 = values[key][side]["p50_ms"]
                        label = f"{prefix}{side} (p50 {p50:.1f} ms)"
                        axis.step(xs, ys, style, where="post", label=label)
            axis.set_title(f"{database}: {title}", fontsize=10)
            axis.set_xlabel("latency (ms)")
            axis.set_ylabel("fraction of requests")
            axis.set_ylim(0, 1.01)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8, loc="lower right")
    machine = doc["machine"]
    figure.suptitle(
        f"scangate vs the floor (direct kubernetes client), kubesim latency "
        f"{plan['latency_ms']:g} ms; {machine['nproc']} x {machine['cpu_model']}, "
        f"Python {machine['python']} (shared machine)",
        fontsize=11,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
