"""What the demo's simulated cluster holds (a `shop` namespace with pods to scan) and the
scangate configuration that lets the demo's API key request grants there."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

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


DEMO_SEED = f"""\
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


# The one image the demo policy lets a `debug` grant's ephemeral containers use.
DEMO_DEBUG_IMAGE = "busybox:1.36"


@dataclass(frozen=True)
class GuardListenerConfig:
    """Where the demo's grant guard listens and the certificate it serves."""

    port: int
    cert_file: Path
    key_file: Path


def write_demo_config(
    directory: Path, kubeconfig: Path, api_key_sha256: str, guard: GuardListenerConfig
) -> Path:
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
                "debug_images": [DEMO_DEBUG_IMAGE],
            }
        ],
        "guard": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": guard.port,
            "cert_file": str(guard.cert_file),
            "key_file": str(guard.key_file),
        },
    }
    path = directory / "scangate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
