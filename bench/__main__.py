"""`python -m bench [--quick] [--json PATH] [--plot PATH] [--latency-ms N] [--database D]
[--only STAGE]`.

Per database, four stages, each with its own fresh kubesim, database and scangate process (so
one stage's objects and reaper schedule never affect another's): the request path against the
floor, revocation lag, mass reaping, and the grant guard (admission decisions, and an exec with
the webhook against one without). Prints a Markdown table; writes the JSON document and the
latency plot when asked (the full run plots to docs/bench/latency.png by default).

`--only STAGE` runs only the named stages (for work on one of them); such a run reports and
checks only what those stages measure, and draws no plot unless a stage with one ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import uvloop

from app.db.engine import Database
from app.demo.admission import write_guard_certificate
from app.gc_tuning import tune_garbage_collector
from bench.cluster import simulated_cluster
from bench.expiry import LagResults, ReapResults, measure_reap, measure_revocation_lag
from bench.floor import EventLoopFloor, Floor
from bench.grant_requests import RequestResults, measure_requests
from bench.guard import GuardResults, measure_guard
from bench.plan import DATABASES, STAGES, Plan, chosen_stages, plan_for
from bench.report import database_report, describe_machine, document, table
from bench.service import (
    BenchError,
    GuardListener,
    ScangateClient,
    database,
    free_port,
    scangate_server,
)
from bench.stats import process_cpu_seconds
from devsupport.postgres_server import throwaway_postgres

DEFAULT_PLOT = Path("docs/bench/latency.png")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts (a smoke test, about a minute and a half)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PATH",
        help=f"write the latency plot here (full runs default to {DEFAULT_PLOT})",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="measure nothing: print the table and draw the plot of an earlier run's JSON",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=5.0, help="kubesim latency per API request"
    )
    parser.add_argument(
        "--database",
        choices=DATABASES,
        action="append",
        help="only this database (repeatable; default: both)",
    )
    parser.add_argument(
        "--only",
        choices=STAGES,
        action="append",
        metavar="STAGE",
        help=f"only this stage (repeatable; one of {', '.join(STAGES)}; default: all)",
    )
    return parser


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _request_stage(plan: Plan, kind: str, postgres: str | None) -> RequestResults:
    with (
        tempfile.TemporaryDirectory(prefix="scangate-bench-") as directory,
        simulated_cluster(plan.latency_ms) as cluster,
        database(kind, Path(directory), postgres) as url,
        scangate_server(cluster, url, Path(directory)) as server,
    ):
        _log(f"{kind}: request path (scangate pid {server.pid}, kubesim {cluster.url})")
        floor = Floor(cluster, plan.concurrency)

        async def run() -> RequestResults:
            event_loop_floor = await EventLoopFloor.open(cluster)
            try:
                async with ScangateClient(server, connections=plan.concurrency) as client:
                    return await measure_requests(
                        plan,
                        client,
                        floor,
                        event_loop_floor,
                        partial(process_cpu_seconds, server.pid),
                    )
            finally:
                await event_loop_floor.aclose()

        try:
            return asyncio.run(run())
        finally:
            floor.close()


def _lag_stage(plan: Plan, kind: str, postgres: str | None) -> LagResults:
    with (
        tempfile.TemporaryDirectory(prefix="scangate-bench-") as directory,
        simulated_cluster(plan.latency_ms) as cluster,
        database(kind, Path(directory), postgres) as url,
        scangate_server(cluster, url, Path(directory)) as server,
    ):
        _log(f"{kind}: revocation lag, {plan.expiring_together} grants (pid {server.pid})")

        async def run() -> LagResults:
            db = Database(url)
            try:
                async with ScangateClient(server, connections=plan.concurrency) as client:
                    return await measure_revocation_lag(plan, cluster, client, db)
            finally:
                await db.dispose()

        return asyncio.run(run())


def _reap_stage(plan: Plan, kind: str, postgres: str | None) -> ReapResults:
    with (
        tempfile.TemporaryDirectory(prefix="scangate-bench-") as directory,
        simulated_cluster(plan.latency_ms) as cluster,
        database(kind, Path(directory), postgres) as url,
        scangate_server(cluster, url, Path(directory)) as server,
    ):
        _log(f"{kind}: reaping {plan.reap} expired grants (pid {server.pid})")

        async def run() -> ReapResults:
            db = Database(url)
            try:
                async with ScangateClient(server, connections=plan.concurrency) as client:
                    return await measure_reap(plan, cluster, client, db)
            finally:
                await db.dispose()

        return asyncio.run(run())


def _guard_stage(plan: Plan, kind: str, postgres: str | None) -> GuardResults:
    with (
        tempfile.TemporaryDirectory(prefix="scangate-bench-") as directory,
        simulated_cluster(plan.latency_ms) as cluster,
        database(kind, Path(directory), postgres) as url,
    ):
        certificate = write_guard_certificate(Path(directory))
        guard = GuardListener(free_port(), certificate.cert_file, certificate.key_file)
        with scangate_server(cluster, url, Path(directory), guard) as server:
            _log(f"{kind}: grant guard on {guard.url} (pid {server.pid})")
            cpu_seconds = partial(process_cpu_seconds, server.pid)
            # The client stands in for kube-apiserver (Go) on the cores the guard runs on: on
            # uvloop (as `scangate serve` itself runs), it takes less of their CPU per request.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(
                    measure_guard(
                        plan, cluster, server, guard, certificate.ca_pem, url, cpu_seconds
                    )
                )


def run(plan: Plan) -> dict[str, Any]:
    machine = describe_machine()
    results: dict[str, Any] = {}
    # The floor runs in this process: it gets the garbage collector settings `scangate serve`
    # gives itself, so that neither side of the comparison has them alone.
    tune_garbage_collector()
    with contextlib.ExitStack() as stack:
        postgres = None
        if "postgresql" in plan.databases:
            postgres = stack.enter_context(throwaway_postgres())
        for kind in plan.databases:
            requests = _request_stage(plan, kind, postgres) if "requests" in plan.stages else None
            lag = _lag_stage(plan, kind, postgres) if "lag" in plan.stages else None
            reap = _reap_stage(plan, kind, postgres) if "reap" in plan.stages else None
            guard = _guard_stage(plan, kind, postgres) if "guard" in plan.stages else None
            results[kind] = database_report(requests, lag, reap, guard)
    return document(plan, machine, results)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    databases = tuple(dict.fromkeys(args.database)) if args.database else DATABASES
    plan = plan_for(
        quick=args.quick,
        latency_ms=args.latency_ms,
        databases=databases,
        stages=chosen_stages(args.only),
    )
    started = time.perf_counter()
    if args.from_json is not None:
        doc = json.loads(args.from_json.read_text())
    else:
        try:
            doc = run(plan)
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        doc["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    print(table(doc))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    plot_path = args.plot or (None if args.quick and args.from_json is None else DEFAULT_PLOT)
    # The plot draws the request stage's latencies.
    measured = all("samples_ms" in v for v in doc["results"].values())
    if plot_path is not None and not args.no_plot and measured:
        from bench.plot import draw

        draw(doc, plot_path)
        _log(f"plot written to {plot_path}")
    _log(f"done in {round(time.perf_counter() - started, 1)} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
