"""One Helm action in a fresh process; run by `tests.chart.helm_runner`, never imported.

Reads a JSON request from stdin and writes a JSON answer to the file the request names (not to
stdout, which Helm's Go code may also write to).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import helm_sdkpy


async def _run(request: dict[str, Any]) -> Any:
    action = request["action"]
    config = helm_sdkpy.Configuration(
        namespace=request.get("namespace") or "default",
        kubeconfig=request.get("kubeconfig"),
    )
    if action == "lint":
        return await helm_sdkpy.Lint(config).run(request["chart"])
    if action == "install":
        return await helm_sdkpy.Install(config).run(
            request["release"],
            request["chart"],
            values=request.get("values"),
            wait=False,
            timeout=request.get("timeout", 60),
            skip_schema_validation=request.get("skip_schema_validation", False),
        )
    if action == "install_then_upgrade":
        # One process: the memory driver keeps the release only for this process's life.
        releases = [
            await helm_sdkpy.Install(config).run(
                request["release"],
                request["chart"],
                values=request.get("values"),
                wait=False,
                timeout=request.get("timeout", 60),
            )
        ]
        for values in request["upgrades"]:
            releases.append(
                await helm_sdkpy.Upgrade(config).run(
                    request["release"],
                    request["chart"],
                    values=values,
                    wait=False,
                    timeout=request.get("timeout", 60),
                )
            )
        return releases
    raise ValueError(f"unknown action {action!r}")


def main() -> None:
    request = json.load(sys.stdin)
    try:
        answer = {"ok": True, "result": asyncio.run(_run(request))}
    except helm_sdkpy.HelmError as exc:
        answer = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    with open(request["answer_path"], "w", encoding="utf-8") as answer_file:
        json.dump(answer, answer_file)


if __name__ == "__main__":
    main()
