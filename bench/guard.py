"""The grant guard's stage: how long an admission decision takes, and what the webhook adds to a
`kubectl exec`-sized request.

Decisions: the bench's client posts AdmissionReview documents, shaped as kube-apiserver sends
them for a pods/exec CONNECT by a grant's ServiceAccount, to the guard's HTTPS listener of a
`scangate serve` process (one closed loop at concurrency 1, one at the guard's concurrency),
and times each round trip itself: TLS on kept-alive connections, the grant read and the audit
event written, as the API server would wait for them.

Exec: a WebSocket exec of `true` in a pod through kubesim with the official client's `stream`,
by another grant's token (the RBAC scangate gave it), alternately with the guard registered as
a ValidatingWebhookConfiguration (the chart's rules and matchConditions, a `url` clientConfig)
and with no webhook at all, in the same run. The guard's audit events for that grant must match
the execs made while it was registered, so the comparison cannot silently measure an exec that
never reached the guard (or one that reached it while it should not have).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

from kubernetes import client, config
from kubernetes.stream import stream
from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import GrantEvent
from app.demo.admission import webhook_configuration
from bench.cluster import GRANTS_NAMESPACE, TARGET_NAMESPACE, TARGET_POD, SimulatedCluster
from bench.http import HttpClient
from bench.load import run_async, run_threads
from bench.plan import Plan
from bench.service import BenchError, GuardListener, ScangateClient, ScangateServer
from bench.stats import Latencies, ratio

_CLUSTER: Final = "default"
_CONTAINER: Final = "app"
_READY_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class GuardResults:
    concurrency: int
    decision_c1: Latencies
    decision_concurrent: Latencies
    exec_with_webhook: Latencies
    exec_without_webhook: Latencies
    exec_decisions_recorded: int
    # CPU seconds scangate's process spent during the concurrent decisions.
    cpu_seconds_concurrent: float

    def report(self) -> dict[str, Any]:
        with_hook, without = self.exec_with_webhook, self.exec_without_webhook
        return {
            "concurrency": self.concurrency,
            "decision_c1": {
                **self.decision_c1.summary_ms(),
                "per_s": round(self.decision_c1.throughput, 1),
            },
            "decision_c32": {
                **self.decision_concurrent.summary_ms(),
                "per_s": round(self.decision_concurrent.throughput, 1),
            },
            # Against the latency: whether one process's CPU or waiting (database commits,
            # queueing) bounds the decisions per second.
            "decision_cpu_ms_c32": round(
                ratio(self.cpu_seconds_concurrent, self.decision_concurrent.count) * 1000, 3
            ),
            "exec_with_webhook": with_hook.summary_ms(),
            "exec_without_webhook": without.summary_ms(),
            "exec_p50_ratio": round(ratio(with_hook.p50, without.p50), 3),
            "exec_p99_ratio": round(ratio(with_hook.p99, without.p99), 3),
            "exec_p50_added_ms": round((with_hook.p50 - without.p50) * 1000, 3),
            "exec_decisions_recorded": self.exec_decisions_recorded,
        }


def _username(grant_id: str) -> str:
    return f"system:serviceaccount:{GRANTS_NAMESPACE}:scangate-{grant_id}"


def exec_review(username: str) -> dict[str, Any]:
    """An AdmissionReview for `kubectl exec web-0 -c app -- true` by `username`, as
    kube-apiserver fills it for a CONNECT of pods/exec (PodExecOptions, no oldObject)."""
    options = {
        "kind": "PodExecOptions", "apiVersion": "v1", "stdin": False, "stdout": True,
        "stderr": True, "tty": False, "container": _CONTAINER, "command": ["true"],
    }  # fmt: skip
    gvk = {"group": "", "version": "v1", "kind": "PodExecOptions"}
    pods = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk, "resource": pods, "subResource": "exec",
            "requestKind": gvk, "requestResource": pods, "requestSubResource": "exec",
            "name": TARGET_POD, "namespace": TARGET_NAMESPACE, "operation": "CONNECT",
            "userInfo": {
                "username": username,
                "uid": str(uuid.uuid4()),
                "groups": [
                    "system:serviceaccounts", f"system:serviceaccounts:{GRANTS_NAMESPACE}",
                    "system:authenticated",
                ],
            },
            "object": options, "oldObject": None, "dryRun": False, "options": None,
        },
    }  # fmt: skip


@dataclass(frozen=True)
class _Review:
    uid: str
    body: bytes  # the AdmissionReview as JSON


def _reviews(username: str, count: int) -> list[_Review]:
    """`count` exec reviews by `username`, each with its own uid, encoded before the clock
    starts: building them is kube-apiserver's work, not the guard's, and the client shares
    the machine's cores with the guard."""
    reviews = [exec_review(username) for _ in range(count)]
    return [_Review(r["request"]["uid"], json.dumps(r).encode()) for r in reviews]


async def _decide(guard: HttpClient, review: _Review) -> None:
    response = await guard.request("POST", f"/admission/{_CLUSTER}", review.body)
    if response.status != 200:
        raise BenchError(f"the guard answered {response.status}: {response.text[:300]}")
    answer = response.json()["response"]
    if answer["uid"] != review.uid or answer["allowed"] is not True:
        raise BenchError(f"the guard did not allow an active grant's exec: {answer}")


async def _wait_for_guard(url: str, tls: ssl.SSLContext) -> None:
    guard = HttpClient(url, connections=1, headers={}, tls=tls)
    deadline = time.monotonic() + _READY_TIMEOUT
    try:
        while time.monotonic() < deadline:
            try:
                if (await guard.request("GET", "/healthz")).status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
    finally:
        await guard.aclose()
    raise BenchError(f"the guard did not answer on {url} in {_READY_TIMEOUT:.0f}s")


def _admin_client(cluster: SimulatedCluster) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(Path(cluster.admin_kubeconfig)),
        client_configuration=configuration,
        persist_config=False,
    )
    return client.ApiClient(configuration=configuration)


def _token_client(cluster: SimulatedCluster, token: str) -> client.ApiClient:
    # Built by hand: a configuration loaded from a kubeconfig re-reads that file's token
    # before each request (its refresh hook), which would act as the admin, not the grant.
    configuration = client.Configuration(host=cluster.url)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    configuration.retries = False
    return client.ApiClient(configuration=configuration)


def _exec_true(core: client.CoreV1Api, _: object) -> None:
    # A refused exec raises (the WebSocket upgrade fails with the API server's status).
    stream(
        core.connect_get_namespaced_pod_exec, TARGET_POD, TARGET_NAMESPACE,
        command=["true"], container=_CONTAINER, stderr=True, stdin=False, stdout=True,
        tty=False,
    )  # fmt: skip


def measure_exec(
    plan: Plan, cluster: SimulatedCluster, token: str, guard: GuardListener, ca_pem: bytes
) -> tuple[Latencies, Latencies, int]:
    """Execs with the guard registered and without, alternating in `plan.rounds` rounds;
    returns both and how many execs were made while it was registered."""
    registration = webhook_configuration(f"{guard.url}/admission/{_CLUSTER}", ca_pem)
    name = registration["metadata"]["name"]
    with _admin_client(cluster) as admin, _token_client(cluster, token) as user:
        webhooks = client.AdmissionregistrationV1Api(admin)
        execute = partial(_exec_true, client.CoreV1Api(user))
        per_round = max(1, plan.guard_exec // plan.rounds)
        with_hook: list[Latencies] = []
        without: list[Latencies] = []
        made_with_hook = 0
        for _ in range(plan.rounds):
            # The client serializes a plain dict as it is (the demo's registration document).
            webhooks.create_validating_webhook_configuration(registration)  # type: ignore[arg-type]
            run_threads(1, range(plan.warmup), execute)
            with_hook.append(run_threads(1, range(per_round), execute)[0])
            made_with_hook += plan.warmup + per_round
            webhooks.delete_validating_webhook_configuration(name)
            run_threads(1, range(plan.warmup), execute)
            without.append(run_threads(1, range(per_round), execute)[0])
    return Latencies.merge(with_hook), Latencies.merge(without), made_with_hook


async def _exec_events(database_url: str, grant_id: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            query = select(func.count()).where(
                GrantEvent.grant_id == grant_id, GrantEvent.type == "exec"
            )
            return int((await session.execute(query)).scalar_one())
    finally:
        await db.dispose()


async def measure_guard(
    plan: Plan,
    cluster: SimulatedCluster,
    server: ScangateServer,
    guard: GuardListener,
    ca_pem: bytes,
    database_url: str,
    cpu_seconds: Callable[[], float],
) -> GuardResults:
    # Two grants: one whose identity the posted reviews name, one that execs through kubesim,
    # so the second's audit events count only the execs the webhook judged.
    async with ScangateClient(server, connections=1) as api:
        reviewed = await api.create_grant()
        executing = await api.create_grant()
        token = await api.token(executing)
    tls = ssl.create_default_context(cadata=ca_pem.decode())
    await _wait_for_guard(guard.url, tls)
    concurrency = plan.guard_concurrency
    guard_client = HttpClient(guard.url, connections=concurrency, headers={}, tls=tls)
    decide = partial(_decide, guard_client)
    username = _username(reviewed)
    c1: list[Latencies] = []
    concurrent: list[Latencies] = []
    cpu = 0.0
    try:
        await run_async(concurrency, _reviews(username, max(plan.warmup, concurrency)), decide)
        for _ in range(plan.rounds):
            reviews = _reviews(username, plan.guard_c1 // plan.rounds)
            c1.append((await run_async(1, reviews, decide))[0])
            reviews = _reviews(username, plan.guard_concurrent // plan.rounds)
            cpu_before = cpu_seconds()
            concurrent.append((await run_async(concurrency, reviews, decide))[0])
            cpu += cpu_seconds() - cpu_before
    finally:
        await guard_client.aclose()
    with_hook, without, made = await asyncio.to_thread(
        measure_exec, plan, cluster, token, guard, ca_pem
    )
    recorded = await _exec_events(database_url, executing)
    if recorded != made:
        raise BenchError(
            f"the guard recorded {recorded} exec decisions for {made} execs made while it was "
            "registered: the comparison did not measure what it says"
        )
    return GuardResults(
        concurrency=concurrency,
        decision_c1=Latencies.merge(c1),
        decision_concurrent=Latencies.merge(concurrent),
        exec_with_webhook=with_hook,
        exec_without_webhook=without,
        exec_decisions_recorded=recorded,
        cpu_seconds_concurrent=cpu,
    )
