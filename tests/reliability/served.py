"""One real `scangate serve` (SQLite, the session's HTTP kubesim) shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.auth import generate_api_key
from app.db.engine import run_migrations
from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import ServeProcess, write_config
from tests.support.scangate import PRINCIPALS, scangate_config


@dataclass
class Served:
    url: str
    api_keys: dict[str, str]
    database_url: str
    database_file: Path | None  # SQLite only
    log: Path
    sim: KubesimHandle
    process: ServeProcess

    def auth(self, who: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_keys[who]}"}


def serve(
    directory: Path, sim: KubesimHandle, database_url: str | None = None, **overrides: Any
) -> Iterator[Served]:
    """Serve on `database_url` (default: a new SQLite file in `directory`)."""
    sim.start()
    sim.reset()
    database_file = None
    if database_url is None:
        database_file = directory / "scangate.db"
        database_url = f"sqlite:///{database_file}"
    run_migrations(database_url)
    api_keys = {name: generate_api_key()[0] for name in PRINCIPALS}
    config = write_config(
        directory / "scangate.yaml",
        scangate_config(
            kubeconfig=str(sim.admin_kubeconfig),
            database_url=database_url,
            api_keys=api_keys,
            **overrides,
        ),
    )
    log = directory / "serve.log"
    with ServeProcess(config, log, log_level="debug") as process:
        process.start()
        yield Served(process.url, api_keys, database_url, database_file, log, sim, process)
