"""The local demo: scangate in front of a simulated cluster, ready to try in one command.

``scangate serve --demo`` starts kubesim (the simulated API server that enforces real RBAC and
TokenRequest rules) as a child process, seeded with a ``shop`` namespace and a few pods, writes a
configuration with a fresh API key into ``.scangate-demo/``, and prints what to try next. The
simulated cluster lives exactly as long as the demo server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.auth.api_keys import generate_api_key

DEMO_NAMESPACE = "shop"
GRANTS_NAMESPACE = "scangate-grants"

# Files of the simulated containers (kubesim's `kubesim.dev/files` annotation; every container
# also gets a Debian /etc/os-release, /etc/group, /etc/shadow...). web-0 is hardened, web-1 is
# the stock image with an SSH daemon's configuration left in: the demo scan
# (examples/demo-scan) passes on the first and finds three problems on the second.
_HARDENED_WEB_FILES = """\
/etc/passwd: |
  root:x:0:0:root:/root:/usr/sbin/nologin
  nginx:x:101:101:nginx user:/nonexistent:/bin/false
  nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
/etc/nginx/nginx.conf: |
  user nginx;
  worker_processes auto;
  events { worker_connections 1024; }
  http {
      include /etc/nginx/mime.types;
      server_tokens off;
  }
"""
_STOCK_WEB_FILES = """\
/etc/passwd: |
  root:x:0:0:root:/root:/bin/bash
  nginx:x:101:101:nginx user:/nonexistent:/bin/false
  nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
/etc/nginx/nginx.conf: |
  user nginx;
  worker_processes auto;
  events { worker_connections 1024; }
  http {
      include /etc/nginx/mime.types;
  }
/etc/ssh/sshd_config: |
  PermitRootLogin yes
"""


def _files(text: str) -> str:
    """A `kubesim.dev/files` annotation value, indented for the seed's block scalar."""
    return textwrap.indent(text, " " * 6)


_SEED = f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {DEMO_NAMESPACE}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {GRANTS_NAMESPACE}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: {DEMO_NAMESPACE}
  labels: {{app: web, tier: frontend}}
  annotations:
    kubesim.dev/files: |
{_files(_HARDENED_WEB_FILES)}
spec:
  containers:
    - {{name: app, image: nginx:1.27}}
    - {{name: scanner, image: cincproject/auditor:6}}
status: {{phase: Running}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: {DEMO_NAMESPACE}
  labels: {{app: web, tier: frontend}}
  annotations:
    kubesim.dev/files: |
{_files(_STOCK_WEB_FILES)}
spec:
  containers:
    - {{name: app, image: nginx:1.27}}
    - {{name: scanner, image: cincproject/auditor:6}}
status: {{phase: Running}}
---
apiVersion: v1
kind: Pod
metadata: {{name: db-0, namespace: {DEMO_NAMESPACE}, labels: {{app: db}}}}
spec:
  containers:
    - {{name: postgres, image: postgres:16}}
status: {{phase: Running}}
---
apiVersion: v1
kind: Secret
metadata: {{name: db-credentials, namespace: {DEMO_NAMESPACE}}}
stringData: {{password: not-for-scanners}}
"""


@dataclass(frozen=True)
class DemoEnvironment:
    """What a running demo consists of: the files written and the simulated cluster's URL."""

    directory: Path
    config_path: Path
    admin_kubeconfig: Path
    api_key: str
    cluster_url: str


def _start_kubesim(directory: Path) -> tuple[subprocess.Popen[str], str]:
    seed = directory / "seed.yaml"
    seed.write_text(_SEED)
    kubeconfig = directory / "admin.kubeconfig"
    command = [
        sys.executable,
        "-m",
        "kubesim",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        # One argv element: a token that starts with "-" would be read as an option.
        f"--admin-token={secrets.token_urlsafe(24)}",
        "--seed",
        str(seed),
        "--tls",
        "--write-kubeconfig",
        str(kubeconfig),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("kubesim listening on "):
            return process, line.removeprefix("kubesim listening on ").strip()
    process.kill()
    raise RuntimeError("kubesim did not start; run `python -m kubesim --help` to investigate")


def _write_config(directory: Path, kubeconfig: Path, api_key_sha256: str) -> Path:
    config = {
        "database_url": f"sqlite:///{directory / 'scangate.db'}",
        "log_format": "text",
        "clusters": [
            {"name": "default", "kubeconfig": str(kubeconfig), "grants_namespace": GRANTS_NAMESPACE}
        ],
        "api_keys": [{"name": "demo", "sha256": api_key_sha256}],
        "admins": [],
        "policies": [
            {
                "name": "demo",
                "subjects": ["apikey:demo"],
                "clusters": ["default"],
                "namespaces": [DEMO_NAMESPACE],
                "scanners": ["exec", "debug", "sidecar"],
                "max_ttl_seconds": 3600,
                "max_pods": 10,
            }
        ],
    }
    path = directory / "scangate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def demo_environment(directory: Path) -> Iterator[DemoEnvironment]:
    """Start the simulated cluster and write the demo configuration; stop the cluster on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "scangate.db").unlink(missing_ok=True)
    process, url = _start_kubesim(directory)
    try:
        api_key, digest = generate_api_key()
        key_file = directory / "api-key"
        key_file.write_text(api_key + "\n")
        os.chmod(key_file, 0o600)
        kubeconfig = directory / "admin.kubeconfig"
        config_path = _write_config(directory, kubeconfig, digest)
        yield DemoEnvironment(directory, config_path, kubeconfig, api_key, url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def demo_instructions(env: DemoEnvironment, base_url: str) -> str:
    """What to try next, printed once the demo server is up."""
    d = env.directory
    return f"""
scangate demo
  API:               {base_url}   (docs: {base_url}/docs)
  simulated cluster: {env.cluster_url}   (namespace '{DEMO_NAMESPACE}': pods web-0, web-1, db-0)
  config:            {env.config_path}
  API key:           stored in {d / "api-key"}

Try it (in another terminal):
  export SG={base_url} AUTH="Authorization: Bearer $(cat {d / "api-key"})"
  # 1. request access to one pod for the 'exec' scanner (default TTL: 15 minutes)
  BODY='{{"namespace": "{DEMO_NAMESPACE}", "pods": ["web-0"], "scanner": "exec"}}'
  GRANT=$(curl -s -X POST $SG/v1/grants -H "$AUTH" -H 'Content-Type: application/json' \\
    -d "$BODY" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  # 2. fetch a short-lived kubeconfig that can touch only that pod
  curl -s $SG/v1/grants/$GRANT/kubeconfig -H "$AUTH" > grant.kubeconfig
  K="kubectl --kubeconfig grant.kubeconfig -n {DEMO_NAMESPACE}"
  $K auth can-i create pods/web-0 --subresource=exec   # yes
  $K auth can-i create pods/db-0 --subresource=exec    # no: another pod
  $K auth can-i list pods                              # no
  $K auth can-i get secrets                            # no
  $K get pod web-0                                     # works
  $K exec web-0 -- cat /etc/os-release                 # runs in the pod (simulated)
  # 3. revoke: the ServiceAccount is deleted, so the token stops working at once
  curl -s -X POST $SG/v1/grants/$GRANT/revoke -H "$AUTH"
  $K get pod web-0                                     # error: Unauthorized

Stop with Ctrl-C (the simulated cluster stops with it).
"""


def run_demo(*, host: str, port: int, directory: Path | None = None) -> int:
    """Serve scangate against a fresh simulated cluster until interrupted."""
    import uvicorn

    from app.db.engine import run_migrations
    from app.main import create_app
    from app.observability.logs import logging_config
    from app.settings import load_settings

    with demo_environment(directory or Path(".scangate-demo").resolve()) as env:
        settings = load_settings(env.config_path)
        run_migrations(settings.database_url)
        print(demo_instructions(env, f"http://{host}:{port}"), flush=True)
        # Human-readable lines, warnings and up only, so the instructions above stay readable.
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_config=logging_config(settings.log_format, "warning"),
            access_log=False,
        )
    return 0
