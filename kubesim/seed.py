"""The default seed: the small cluster most scangate tests start from.

Two target namespaces, the grants namespace, and pods that exercise every pod-resolution case:
Running pods with and without the scanner sidecar, a Pending pod that a selector matches but a
grant must not include, and a pod in another namespace. A Secret stands for "things a scanner
must never read".
"""

from __future__ import annotations

from typing import Final

DEFAULT_SEED: Final = """\
apiVersion: v1
kind: Namespace
metadata: {name: payments}
---
apiVersion: v1
kind: Namespace
metadata: {name: orders}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: scangate-grants}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: payments
  labels: {app: web, tier: frontend}
spec:
  containers:
    - {name: app, image: "registry.example/web:1.4.2"}
    - {name: scanner, image: "registry.example/scanner:2.0"}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: payments
  labels: {app: web, tier: frontend}
spec:
  containers:
    - {name: app, image: "registry.example/web:1.4.2"}
    - {name: scanner, image: "registry.example/scanner:2.0"}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-2
  namespace: payments
  labels: {app: web}
spec:
  containers:
    - {name: app, image: "registry.example/web:1.4.2"}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: payments
  labels: {app: db}
spec:
  containers:
    - {name: postgres, image: "postgres:15"}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata:
  name: api-0
  namespace: orders
  labels: {app: api}
spec:
  containers:
    - {name: api, image: "registry.example/api:3.1"}
status: {phase: Running}
---
apiVersion: v1
kind: Secret
metadata: {name: db-credentials, namespace: payments}
type: Opaque
stringData: {username: payments, password: not-a-real-password}
"""
