"""`/healthz` (the process is up, and which configuration is in force) and `/readyz` (the
database and every cluster answer)."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.docs.openapi import problem_responses
from app.errors import ScangateError
from app.kube.errors import KubeError
from app.services import Services, ServicesDep

# A readiness probe must answer before the kubelet's probe timeout (default 1 s, usually raised
# to a few seconds): each check gets this long, and all run concurrently.
READY_CHECK_TIMEOUT_SECONDS: Final = 3.0

router = APIRouter(tags=["operations"])


class NotReady(ScangateError):
    status = 503
    title = "Not Ready"
    type_slug = "not-ready"


class ConfigStatus(BaseModel):
    generation: int = Field(
        description="The configuration generation in force: 1 at start, "
        "one more for each applied reload."
    )
    last_reload: dict[str, Any] | None = Field(
        description="The last reload (SIGHUP or a changed file): `outcome` (`applied`, "
        "`unchanged`, `refused`), `trigger`, `at`, the `changed` sections, the settings in "
        "`restart_required`, and the keys of its `problems` (the log has the messages). Null "
        "before the first reload."
    )


class Health(BaseModel):
    status: str = Field(description="Always `ok` when the process answers.")
    config: ConfigStatus = Field(description="The configuration in force and the last reload.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok", "config": {"generation": 1, "last_reload": None}}]
        }
    )


class Readiness(BaseModel):
    status: str = Field(description="`ready`.")
    checks: dict[str, str] = Field(
        description="Each dependency (`database`, `cluster <name>`) and `ok` or why it failed."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "checks": {"database": "ok", "cluster default": "ok"}}]
        }
    )


@router.get(
    "/healthz",
    response_model=Health,
    summary="The process is up",
    response_description="The process answers (the liveness probe).",
)
async def healthz(services: ServicesDep) -> Health:
    """Liveness: answers as long as the process serves HTTP; checks no dependency, so a
    database outage does not make Kubernetes restart every replica. A refused reload does not
    fail it either: the previous configuration is still in force."""
    reloader = services.config_reloader
    last = reloader.last if reloader is not None else None
    return Health(
        status="ok",
        config=ConfigStatus(
            generation=services.config.newest().number,
            last_reload=last.as_status() if last is not None else None,
        ),
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database and every cluster answer",
    response_description="Ready to serve: every dependency answered.",
    responses=problem_responses(
        503, _503="Not ready; `checks` says which dependency failed and why."
    ),
)
async def readyz(services: ServicesDep) -> Readiness:
    """Readiness: pings the database and every configured cluster concurrently, each within
    a few seconds."""
    return Readiness(**await _readiness(services))


async def _check(name: str, probe: Any) -> tuple[str, str | None]:
    """Run one readiness probe: (name, None) if it answered, else (name, safe reason)."""
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_SECONDS):
            await probe()
    except TimeoutError:
        return name, f"no answer within {READY_CHECK_TIMEOUT_SECONDS:g}s"
    except KubeError as exc:
        return name, str(exc)  # KubeError messages are safe to show by contract
    except Exception as exc:
        # A probe reports every failure, whatever it is; only the type is shown because
        # database driver messages can include connection details.
        return name, type(exc).__name__
    return name, None


async def _readiness(services: Services) -> dict[str, Any]:
    clusters = services.clusters
    probes: list[tuple[str, Any]] = [("database", services.db.ping)]
    probes += [(f"cluster {n}", clusters.get(n).ping) for n in clusters.names()]
    results = await asyncio.gather(*(_check(name, probe) for name, probe in probes))
    checks = {name: ("ok" if reason is None else reason) for name, reason in results}
    failed = [name for name, reason in results if reason is not None]
    if failed:
        raise NotReady(
            f"not ready: {'; '.join(f'{n}: {checks[n]}' for n in failed)}", checks=checks
        )
    return {"status": "ready", "checks": checks}
