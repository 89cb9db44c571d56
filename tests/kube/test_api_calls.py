"""The retry loop, driven by a stand-in for sending one request (no cluster needed; the same
behaviours are checked against kubesim in test_retries.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp
import pytest
from kubernetes.aio.client.exceptions import ApiException, ApiValueError
from kubernetes.aio.client.models import V1ContainerStatus
from pydantic import ValidationError

from app.kube.api_calls import ApiRequest, ClusterApi, RetryPolicy
from app.kube.errors import KubeConflict, KubeInvalid, KubeMalformedResponse, KubeUnavailable
from app.kube.operations import Operation

pytestmark = pytest.mark.anyio

OP = ApiRequest(
    Operation("create", "serviceaccounts", namespace="scangate-grants", name="scangate-x")
)
FAST = RetryPolicy(tries=4, base_delay=0.01, max_delay=0.05, max_retry_after=2.0)


def failure(status: int, retry_after: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = json.dumps({"kind": "Status", "message": "m", "code": status})
    exc.headers = {"Retry-After": retry_after} if retry_after else {}
    return exc


class Script:
    """Sends a request: raises the scripted errors in order, then answers "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.sent: list[tuple[ApiRequest, tuple[float, float]]] = []

    async def __call__(self, request: ApiRequest, timeouts: tuple[float, float]) -> str:
        self.calls += 1
        self.sent.append((request, timeouts))
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


# `cluster_api(script, policy=FAST)`: a ClusterApi whose calls play `script`.
BuildClusterApi = Callable[..., ClusterApi]


@pytest.fixture
def cluster_api() -> BuildClusterApi:
    def build(script: Script, policy: RetryPolicy = FAST) -> ClusterApi:
        return ClusterApi("prod", script, policy)

    return build


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried(cluster_api: BuildClusterApi, status: int) -> None:
    send = Script(failure(status), failure(status))
    assert await cluster_api(send).call(OP) == "ok"
    assert send.calls == 3


async def test_connection_errors_are_retried(cluster_api: BuildClusterApi) -> None:
    send = Script(
        aiohttp.ServerDisconnectedError(),
        aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        ConnectionResetError(),
    )
    assert await cluster_api(send).call(OP) == "ok"
    assert send.calls == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_client_errors_are_not_retried(cluster_api: BuildClusterApi, status: int) -> None:
    call = Script(failure(status))
    with pytest.raises(Exception):  # noqa: B017,PT011 - the type is checked elsewhere
        await cluster_api(call).call(OP)
    assert call.calls == 1


async def test_gives_up_after_the_bounded_number_of_tries(cluster_api: BuildClusterApi) -> None:
    call = Script(*(failure(503) for _ in range(10)))
    with pytest.raises(KubeUnavailable):
        await cluster_api(call).call(OP)
    assert call.calls == 4


async def test_no_new_try_starts_after_the_time_budget(cluster_api: BuildClusterApi) -> None:
    policy = RetryPolicy(tries=10, base_delay=0.2, max_delay=0.2, max_elapsed=0.5)
    call = Script(*(failure(503) for _ in range(10)))
    started = time.monotonic()
    with pytest.raises(KubeUnavailable):
        await cluster_api(call, policy).call(OP)
    assert time.monotonic() - started <= 0.6
    # Each delay is 0.1-0.2 s (jittered), so 3 to 5 tries fit in the budget, never all 10.
    assert 3 <= call.calls <= 5


async def test_retry_after_is_honoured(cluster_api: BuildClusterApi) -> None:
    call = Script(failure(429, retry_after="1"))
    started = time.monotonic()
    assert await cluster_api(call).call(OP) == "ok"
    assert time.monotonic() - started >= 0.95


async def test_retry_after_beyond_the_cap_fails_fast_and_passes_it_on(
    cluster_api: BuildClusterApi,
) -> None:
    call = Script(failure(503, retry_after="120"))
    started = time.monotonic()
    with pytest.raises(KubeUnavailable) as raised:
        await cluster_api(call).call(OP)
    assert raised.value.retry_after == 120.0
    assert time.monotonic() - started < 1
    assert call.calls == 1


async def test_each_try_is_sent_with_the_policys_timeouts(cluster_api: BuildClusterApi) -> None:
    send = Script(failure(503))
    await cluster_api(send).call(OP)
    assert send.sent == [(OP, FAST.request_timeout)] * 2


async def test_conflict_after_a_retry_is_success_when_the_object_is_ours(
    cluster_api: BuildClusterApi,
) -> None:
    call = Script(aiohttp.ServerDisconnectedError(), failure(409))

    async def ours() -> str:
        return "existing"

    assert await cluster_api(call).call(OP, on_conflict_after_retry=ours) == "existing"


async def test_conflict_after_a_retry_fails_when_the_object_is_not_ours(
    cluster_api: BuildClusterApi,
) -> None:
    call = Script(aiohttp.ServerDisconnectedError(), failure(409))

    async def not_ours() -> None:
        return None

    with pytest.raises(KubeConflict):
        await cluster_api(call).call(OP, on_conflict_after_retry=not_ours)


async def test_conflict_on_the_first_try_is_a_conflict(cluster_api: BuildClusterApi) -> None:
    checked = False

    async def ours() -> str:
        nonlocal checked
        checked = True
        return "existing"

    with pytest.raises(KubeConflict):
        await cluster_api(Script(failure(409))).call(OP, on_conflict_after_retry=ours)
    assert not checked


async def test_invalid_is_raised_as_kube_invalid(cluster_api: BuildClusterApi) -> None:
    with pytest.raises(KubeInvalid):
        await cluster_api(Script(failure(422))).call(OP)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0)
    for attempt, ceiling in [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.0), (8, 1.0)]:
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def refused_container_status() -> ValidationError:
    """What the client's models raise for a container status without `image`."""
    try:
        V1ContainerStatus.from_dict(
            {"name": "app", "ready": True, "restartCount": 0, "imageID": ""}
        )
    except ValidationError as exc:
        return exc
    raise AssertionError("the model accepted a container status without image")


async def test_an_answer_the_models_refuse_is_malformed_naming_the_field_and_not_retried(
    cluster_api: BuildClusterApi,
) -> None:
    call = Script(refused_container_status())
    with pytest.raises(KubeMalformedResponse) as raised:
        await cluster_api(call).call(OP)
    assert call.calls == 1
    assert raised.value.field == "image (V1ContainerStatus)"
    message = str(raised.value)
    assert 'create serviceaccounts "scangate-x" in namespace "scangate-grants"' in message
    assert "field image (V1ContainerStatus)" in message


async def test_an_answer_that_is_not_json_is_malformed(cluster_api: BuildClusterApi) -> None:
    call = Script(json.JSONDecodeError("Expecting value", "<html>secret</html>", 0))
    with pytest.raises(KubeMalformedResponse, match="does not decode: JSONDecodeError") as raised:
        await cluster_api(call).call(OP)
    assert "secret" not in str(raised.value)


async def test_a_request_the_client_refuses_to_build_is_a_bug_not_an_answer(
    cluster_api: BuildClusterApi,
) -> None:
    call = Script(ApiValueError("body parameter cannot be used with post_params parameter."))
    with pytest.raises(ApiValueError):
        await cluster_api(call).call(OP)
