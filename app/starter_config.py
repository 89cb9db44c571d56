"""`scangate init`: a commented starter configuration for a first real (non-demo) deployment.

The file it writes is valid as written (`scangate serve` starts with it once the kubeconfig it
names works), denies everything until a policy is added, and says in comments what each key is
for and where to read more; keys and their meaning are the README's "Configuration" section.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_TEMPLATE = """\
# scangate configuration, written by `scangate init`. Every key is described in the README
# ("Configuration"); environment variables SCANGATE_<KEY> override this file.
# Start the service with:  scangate --config {config} serve

# Where grants and their audit trail are stored. SQLite suits a single replica; in production
# use PostgreSQL: postgresql+psycopg://USER:PASSWORD@HOST:5432/DB (or set SCANGATE_DATABASE_URL
# so the password stays out of this file).
database_url: {database_url}

clusters:
  - name: default
{cluster_credentials}
    # context: my-context                     # a context of that kubeconfig (default: current)
    # server: https://k8s.example.com:6443    # the API URL written into issued kubeconfigs
    grants_namespace: scangate-grants         # must exist: grant ServiceAccounts live here

# Callers authenticate with API keys (only their sha256 is kept here) or CI OIDC ID tokens.
# `scangate keys create NAME` prints a new key once, and the entry to add below.
api_keys: []
# oidc:
#   - {{issuer: "https://token.actions.githubusercontent.com", audience: scangate}}

# Principals that may list and revoke every grant (never obtain its credentials).
admins: []

# Deny by default: a caller gets a grant only where a policy names it, the cluster, the
# namespace and the scanner profile. For example:
policies: []
#  - name: payments-ci
#    subjects: ["apikey:ci-payments"]
#    namespaces: [payments, "payments-*"]
#    scanners: [exec]                        # exec, debug, sidecar
#    max_ttl_seconds: 3600
#    max_pods: 20
"""

_KUBECONFIG_ENTRY = """\
    # The credentials scangate itself acts with (it needs the RBAC the Helm chart grants).
    kubeconfig: {kubeconfig}"""

_IN_CLUSTER_ENTRY = """\
    # No kubeconfig was found when this file was written, so scangate uses the service
    # account of the pod it runs in; outside Kubernetes, name a kubeconfig instead:
    # kubeconfig: /path/to/admin.kubeconfig"""


def default_kubeconfig() -> Path | None:
    """The kubeconfig kubectl would use: the first file in $KUBECONFIG, else ~/.kube/config."""
    listed = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    candidate = Path(listed) if listed else Path.home() / ".kube" / "config"
    return candidate.resolve() if candidate.is_file() else None


def _quoted(value: str) -> str:
    # JSON strings are valid YAML scalars: paths with spaces or '#' stay one value.
    return json.dumps(value)


def starter_config(path: Path, kubeconfig: Path | None) -> str:
    """The starter configuration for a file at `path` (its database lives beside it)."""
    database = path.resolve().parent / "scangate.db"
    credentials = (
        _KUBECONFIG_ENTRY.format(kubeconfig=_quoted(str(kubeconfig.resolve())))
        if kubeconfig is not None
        else _IN_CLUSTER_ENTRY
    )
    return _TEMPLATE.format(
        config=path,
        database_url=_quoted(f"sqlite:///{database}"),
        cluster_credentials=credentials,
    )
