"""Scenario 5a: schemathesis, driven by scangate's own OpenAPI document, sends generated valid
and invalid requests to a running `scangate serve`: no answer may be a 5xx, and every answer
must conform to the document (status code, content type, headers, body schema)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devsupport.postgres_server import fresh_database
from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import assert_invariant, audit
from tests.reliability.served import Served, serve
from tests.support.figures import RecordFigures
from tests.support.run_sizes import Mode

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, _kubesim_http: KubesimHandle, postgres_server_url: str
) -> Iterator[Served]:
    # PostgreSQL: it refuses more inputs than SQLite does (NUL bytes, for one), so it is where
    # input validation gaps show as errors.
    with fresh_database(postgres_server_url) as database_url:
        yield from serve(tmp_path_factory.mktemp("fuzzing"), _kubesim_http, database_url)


def fuzz_operation(
    operation: Any, served: Served, who: str, generation: GenerationMode, examples: int,
    tried: Counter[str],
) -> None:  # fmt: skip
    strategy = operation.as_strategy(generation_mode=generation, headers=served.auth(who))

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        response = case.call(base_url=served.url, timeout=30)
        tried[f"{response.status_code}"] += 1
        case.validate_response(response, checks=CHECKS)

    one()


def test_generated_requests_get_no_5xx_and_conform_to_the_openapi_document(
    mode: Mode, served: Served, figures: RecordFigures
) -> None:
    document = httpx.get(f"{served.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    tried: Counter[str] = Counter()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # Admin-only routes are fuzzed as the admin, the rest as an ordinary principal.
        who = "root" if operation.path == "/v1/events" else "alice"
        for generation in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_operation(operation, served, who, generation, mode.fuzz_examples, tried)
            except Unsatisfiable:
                # No invalid input exists (no parameters, or a free-form string id).
                assert generation is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # one report per operation and mode, then carry on
                failures.append(f"{operation.label} [{generation.value}]: {exc}"[:3000])
    result = audit(served.sim, served.database_url)
    figures(
        operations=operations,
        inputs_tried=sum(tried.values()),
        statuses=dict(sorted(tried.items())),
        failures=len(failures),
        leaks_found=result.leaked_objects,
    )
    assert failures == [], "\n\n".join(failures)
    assert not any(status.startswith("5") for status in tried)
    assert_invariant(result)
