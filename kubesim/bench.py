"""How many simple GETs per second kubesim serves: `python -m kubesim.bench`.

Starts kubesim in its own process (default seed), then keeps several keep-alive connections
busy with `GET /api/v1/namespaces/payments/pods/web-0` for a few seconds, once as the admin
(RBAC bypassed, like system:masters) and once with a ServiceAccount token whose Role names the
pod (JWT check, ServiceAccount lookup and RBAC evaluation on every request). The client is a
minimal asyncio HTTP/1.1 loop so that it, not a client library, stays out of the way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from kubesim.process import KubesimProcess
from kubesim.seed import DEFAULT_SEED

_PATH = "/api/v1/namespaces/payments/pods/web-0"


async def _worker(host: str, port: int, token: str, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET {_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"GET {_PATH} answered {status}")
            counts[0] += 1
    finally:
        writer.close()


async def _measure(url: str, token: str, seconds: float, connections: int) -> float:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counts = [0]
    # A short warm-up (connection setup, token verification cache), then the timed run.
    await asyncio.gather(
        *(_worker(host, port, token, time.perf_counter() + 0.3, [0]) for _ in range(connections))
    )
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_worker(host, port, token, deadline, counts) for _ in range(connections))
    )
    return counts[0] / (time.perf_counter() - started)


def _service_account_token(url: str, admin_token: str) -> str:
    rbac = "rbac.authorization.k8s.io"
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "bench", "namespace": "scangate-grants"}},
        {"apiVersion": f"{rbac}/v1", "kind": "Role",
         "metadata": {"name": "bench", "namespace": "payments"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"],
                    "resourceNames": ["web-0"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
         "metadata": {"name": "bench", "namespace": "payments"},
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "bench"},
         "subjects": [{"kind": "ServiceAccount", "name": "bench",
                       "namespace": "scangate-grants"}]},
    ]  # fmt: skip
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, headers=headers, trust_env=False) as http:
        http.post("/_kubesim/apply", json=objects).raise_for_status()
        response = http.post(
            "/api/v1/namespaces/scangate-grants/serviceaccounts/bench/token",
            json={"spec": {"expirationSeconds": 3600}},
        )
        response.raise_for_status()
        token: str = response.json()["status"]["token"]
        return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesim.bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kubesim-bench-") as tmp:
        directory = Path(tmp)
        seed = directory / "seed.yaml"
        seed.write_text(DEFAULT_SEED)
        process = KubesimProcess(directory, secrets.token_urlsafe(32), seed_file=seed)
        process.start()
        try:
            sa_token = _service_account_token(process.url, process.admin_token)
            results = {
                "admin_gets_per_second": asyncio.run(
                    _measure(process.url, process.admin_token, args.seconds, args.connections)
                ),
                "service_account_gets_per_second": asyncio.run(
                    _measure(process.url, sa_token, args.seconds, args.connections)
                ),
            }
        finally:
            process.stop()
    if args.json:
        print(json.dumps({k: round(v) for k, v in results.items()}))
    else:
        print(f"GET {_PATH}, {args.connections} keep-alive connections, {args.seconds:g}s each")
        print(f"  as admin (system:masters):        {results['admin_gets_per_second']:8.0f} /s")
        print(
            "  as ServiceAccount (JWT + RBAC):   "
            f"{results['service_account_gets_per_second']:8.0f} /s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
