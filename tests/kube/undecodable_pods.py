"""A reverse proxy in front of kubesim that spoils its Pod answers: each pod it serves gets a
`containerStatuses` entry without `image`, which the client's models refuse.

kube-apiserver never serves such an entry (Go writes `image`, `imageID` and `restartCount`
even when empty), and kubesim may come to refuse storing one; the answer is spoiled on the
way instead, so the test does not depend on the simulator accepting an invalid object.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any, Self

import aiohttp
import yaml
from aiohttp import web

# Hop-by-hop or recomputed headers that must not be copied between the two connections.
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


def spoil_pod(pod: dict[str, Any]) -> None:
    status = pod.setdefault("status", {})
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    status["containerStatuses"] = [
        {"name": name, "ready": True, "restartCount": 0, "imageID": "", "started": True}
        for name in names
    ]


class UndecodablePodsProxy:
    """Forwards every request to `upstream`; Pod and PodList answers come back spoiled."""

    def __init__(self, upstream: str, ca_pem: bytes | None = None) -> None:
        self._upstream = upstream.rstrip("/")
        self._ssl = ssl.create_default_context(cadata=ca_pem.decode()) if ca_pem else None
        self.url = ""
        self.spoiled = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        assert self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    def kubeconfig(self, admin_kubeconfig: Path, path: Path) -> Path:
        """`admin_kubeconfig` (same user) pointed at this proxy."""
        document = yaml.safe_load(admin_kubeconfig.read_text())
        document["clusters"][0]["cluster"] = {"server": self.url}
        path.write_text(yaml.safe_dump(document))
        return path

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        async with self._session.request(
            request.method,
            self._upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
            ssl=self._ssl if self._ssl is not None else True,
        ) as upstream:
            body = await upstream.read()
            answer_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED
            }
            status = upstream.status
        if status == 200 and "json" in upstream.content_type:
            document = json.loads(body)
            if document.get("kind") == "Pod":
                spoil_pod(document)
                self.spoiled += 1
            elif document.get("kind") == "PodList":
                for pod in document.get("items") or []:
                    spoil_pod(pod)
                self.spoiled += 1
            body = json.dumps(document).encode()
        return web.Response(status=status, body=body, headers=answer_headers)
