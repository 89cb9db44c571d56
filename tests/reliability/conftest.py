"""Fixtures of the reliability suite: run sizes (default and soak), the figures each scenario
reports, and the databases and keys the scenarios share.

Every scenario runs twice over: a small, bounded size in the normal test run, and the issue's
full size under the `soak` marker (`make soak`, i.e. `pytest -m soak`), which the default
`addopts` exclude. Figures (requests made, faults injected, crashes survived, inputs tried,
leaks found) are printed at the end of the run; set `SCANGATE_RELIABILITY_FIGURES=path.json`
to also write them to a file. `api_keys` is the root conftest's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from app.db.engine import run_migrations
from tests.support.figures import Figures, RecordFigures
from tests.support.run_sizes import MODES, Mode

FIGURES_ENV_VAR = "SCANGATE_RELIABILITY_FIGURES"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


# -- figures ------------------------------------------------------------------------------------


_FIGURES = pytest.StashKey[Figures]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> RecordFigures:
    """`figures(**values)` records this test's figures under its node id."""
    collected = request.config.stash.setdefault(_FIGURES, Figures())
    scenario = request.node.nodeid.removeprefix("tests/reliability/")

    def record(**values: Any) -> None:
        collected.record(scenario, **values)

    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collected = config.stash.get(_FIGURES, None)
    if collected is None or not collected.rows:
        return
    terminalreporter.section("reliability figures")
    for scenario, values in collected.rows.items():
        terminalreporter.write_line(f"{scenario}: {json.dumps(values, sort_keys=True)}")
    target = os.environ.get(FIGURES_ENV_VAR)
    if target:
        path = Path(target)
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing.update(collected.rows)
        path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


# -- shared fixtures ----------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'scangate.db'}"
    run_migrations(url)
    return url


@pytest.fixture
def migrated_postgres_url(postgres_url: str) -> str:
    run_migrations(postgres_url)
    return postgres_url
