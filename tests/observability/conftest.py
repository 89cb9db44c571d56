"""Fixtures of the observability suite: the real app (lifespan, migrations, kubesim over a
socket) with its logs captured as the JSON lines `scangate serve` writes."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.engine import run_migrations
from app.observability.logs import JsonFormatter, RequestIdFilter
from tests.api.conftest import Deployment, Scangate, scangate_config


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str) -> str:
    run_migrations(sqlite_url)
    return sqlite_url


@pytest.fixture
def deployment(
    tmp_path: Path, kubesim: Any, migrated_sqlite_url: str, api_keys: dict[str, str]
) -> Deployment:
    document = scangate_config(
        kubeconfig=str(kubesim.admin_kubeconfig),
        database_url=migrated_sqlite_url,
        api_keys=api_keys,
    )
    return Deployment(tmp_path, api_keys, document)


@pytest.fixture
def api_keys() -> dict[str, str]:
    from app.auth import generate_api_key

    return {name: generate_api_key()[0] for name in ("alice", "bob", "carol", "root")}


@pytest.fixture
async def scangate(deployment: Deployment) -> AsyncIterator[Scangate]:
    async with deployment.running() as running:
        yield running


@pytest.fixture
async def scangate_without_reaper(deployment: Deployment) -> AsyncIterator[Scangate]:
    async with deployment.running(start_reaper=False) as running:
        yield running


def _service_side(record: logging.LogRecord) -> bool:
    # The tests' own HTTP client logs the URLs it requests; that is not the service's log.
    return not record.name.startswith(("httpx", "httpcore"))


class LogCapture(logging.Handler):
    """Every record of the service: kept as is (to search what the code put in it, before any
    masking) and as the JSON line the production formatter writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.kept: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.formatter_ = JsonFormatter()
        self.addFilter(_service_side)
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append(record)
        self.lines.append(self.formatter_.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def raw(self) -> str:
        """Everything the records carry, unmasked: messages, arguments, extras, tracebacks."""
        parts: list[str] = []
        for record in self.kept:
            parts += [record.getMessage(), repr(record.args), repr(record.__dict__)]
            if record.exc_info:
                parts.append("".join(traceback.format_exception(*record.exc_info)))
        return "\n".join(parts)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def by_logger(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == name]


@pytest.fixture
def json_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`{(sample name, sorted labels): value}` from a Prometheus exposition."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
