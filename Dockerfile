# syntax=docker/dockerfile:1
#
# scangate API image. Two stages: the builder compiles wheels (and has the tools to do so); the
# runtime stage only receives a ready virtualenv, so no compiler, headers or package caches ship.
#
#   docker build -t scangate .
#
# Outside a cluster there is no in-cluster service account: mount a kubeconfig with embedded
# credentials and a configuration whose cluster names it. Running as your own user lets the
# container read both and keep its SQLite database (WORKDIR) in ./data:
#
#   kubectl config view --raw --minify --flatten > scangate.kubeconfig
#   printf 'clusters:\n  - {name: default, kubeconfig: /etc/scangate/kubeconfig}\n' > scangate.yaml
#   mkdir -p data   # then add api_keys and policies to scangate.yaml (README, "Configuration")
#   docker run --rm --network host --user "$(id -u):$(id -g)" \
#     -v "$PWD/scangate.yaml:/etc/scangate/scangate.yaml:ro" \
#     -v "$PWD/scangate.kubeconfig:/etc/scangate/kubeconfig:ro" \
#     -v "$PWD/data:/var/lib/scangate" \
#     scangate
#
# --network host lets a kubeconfig that points at 127.0.0.1 (kind, minikube) reach its cluster;
# for a remote cluster use -p 8080:8080 instead. Another port: -e SCANGATE_PORT=9000 (the
# HEALTHCHECK follows it). In Kubernetes, use the Helm chart (helm/scangate).
#
# Both stages use the same base so the virtualenv's interpreter path (/usr/local/bin/python3.11)
# exists unchanged in the runtime stage. Pin it by digest in CI for reproducible builds.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers only for dependencies without a wheel for this platform; they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the package build needs: no tests, no kubesim, no local databases or configs
# (.dockerignore keeps the rest of the tree out of the build context as well).
COPY pyproject.toml README.md ./
COPY app/ app/

RUN pip wheel --wheel-dir /wheels . \
    && python -m venv /opt/scangate \
    && /opt/scangate/bin/pip install --no-index --find-links /wheels scangate \
    && /opt/scangate/bin/pip uninstall -y pip setuptools wheel

# Alembic scripts are not part of the wheel; `scangate migrate` finds them through
# SCANGATE_MIGRATIONS_DIR.
COPY migrations/ /opt/scangate/migrations/


FROM ${PYTHON_IMAGE} AS runtime

ARG SCANGATE_UID=10001
ARG SCANGATE_GID=10001

LABEL org.opencontainers.image.title="scangate" \
      org.opencontainers.image.description="Just-in-time, least-privilege, time-limited Kubernetes pod access for security scanning" \
      org.opencontainers.image.licenses="Apache-2.0"

# A numeric, unprivileged user: Kubernetes' runAsNonRoot can only verify a numeric USER.
RUN groupadd --system --gid "${SCANGATE_GID}" scangate \
    && useradd --system --uid "${SCANGATE_UID}" --gid "${SCANGATE_GID}" \
        --home-dir /var/lib/scangate --no-create-home --shell /usr/sbin/nologin scangate \
    && mkdir -p /var/lib/scangate /etc/scangate \
    && chown "${SCANGATE_UID}:${SCANGATE_GID}" /var/lib/scangate

COPY --from=builder /opt/scangate /opt/scangate

ENV PATH=/opt/scangate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCANGATE_CONFIG=/etc/scangate/scangate.yaml \
    SCANGATE_MIGRATIONS_DIR=/opt/scangate/migrations \
    SCANGATE_PORT=8080

# The embedded SQLite default (sqlite:///scangate.db) lands here, the only writable directory.
WORKDIR /var/lib/scangate
USER 10001:10001

EXPOSE 8080

# python:slim has no curl or wget; the standard library is enough. urlopen raises on non-2xx.
# The port comes from SCANGATE_PORT, which `scangate serve` listens on when --port is not given.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SCANGATE_PORT', '8080'), timeout=3)"]

ENTRYPOINT ["scangate"]
CMD ["serve", "--host", "0.0.0.0"]
