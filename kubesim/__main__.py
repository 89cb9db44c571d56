"""`python -m kubesim`: run the simulated Kubernetes API server.

python -m kubesim --host 127.0.0.1 --port 0 --admin-token TOKEN [--seed FILE.yaml] [--tls]
                  [--latency-ms N] [--write-kubeconfig PATH] [--token-max-seconds N]
                  [--token-cache-ttl-seconds N] [--kube-version 1.30..1.35]
                  [--service-address NS/NAME=HOST:PORT ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubesim.cluster import SeedError, SimConfig
from kubesim.server import ServerOptions, run
from kubesim.tokencache import DEFAULT_TOKEN_CACHE_TTL_SECONDS
from kubesim.versions import DEFAULT_KUBE_VERSION, KubeVersion, UnsupportedKubeVersion


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kubesim",
        description="A simulated Kubernetes API server with real authentication and RBAC.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--admin-token",
        action="append",
        required=True,
        help="bearer token of a system:masters user (repeatable; the first goes in the kubeconfig)",
    )
    parser.add_argument("--seed", type=Path, help="multi-document YAML of objects to start with")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a generated CA")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="keep the CA and certificate here and reuse them on restart (with --tls)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="latency added to every API request"
    )
    parser.add_argument("--write-kubeconfig", type=Path, help="write an admin kubeconfig here")
    parser.add_argument(
        "--token-max-seconds",
        type=int,
        help="shorten TokenRequests asking for longer than this (like "
        "--service-account-max-token-expiration)",
    )
    parser.add_argument(
        "--token-cache-ttl-seconds",
        type=float,
        default=DEFAULT_TOKEN_CACHE_TTL_SECONDS,
        help="how long a successful token authentication is cached, ServiceAccount tokens "
        "included (kube-apiserver: 10 s, fixed); 0 turns the cache off",
    )
    parser.add_argument(
        "--kube-version",
        default=DEFAULT_KUBE_VERSION,
        help="the Kubernetes release to behave as (1.30 to 1.35): what /version reports and "
        f"how exec/attach upgrades are authorized (default {DEFAULT_KUBE_VERSION})",
    )
    parser.add_argument(
        "--fault-seed", type=int, default=0, help="seed for random latency and fault choices"
    )
    parser.add_argument(
        "--service-address",
        action="append",
        default=[],
        metavar="NS/NAME=HOST:PORT",
        help="where the Service NS/NAME of an admission webhook's clientConfig.service listens "
        "(repeatable; there is no cluster network)",
    )
    return parser


def _service_addresses(values: list[str]) -> tuple[tuple[str, str], ...] | None:
    pairs: list[tuple[str, str]] = []
    for value in values:
        service, _, address = value.partition("=")
        namespace, slash, name = service.partition("/")
        host, colon, port = address.rpartition(":")
        if not (namespace and slash and name and host and colon and port.isdigit()):
            return None
        pairs.append((service, address))
    return tuple(pairs)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.token_max_seconds is not None and args.token_max_seconds < 600:
        print("kubesim: --token-max-seconds must be at least 600", file=sys.stderr)
        return 2
    if args.token_cache_ttl_seconds < 0:
        print("kubesim: --token-cache-ttl-seconds must not be negative", file=sys.stderr)
        return 2
    try:
        KubeVersion.parse(args.kube_version)
    except UnsupportedKubeVersion as exc:
        print(f"kubesim: --kube-version: {exc}", file=sys.stderr)
        return 2
    seed_yaml = ""
    if args.seed is not None:
        try:
            seed_yaml = args.seed.read_text()
        except OSError as exc:
            print(f"kubesim: cannot read --seed {args.seed}: {exc}", file=sys.stderr)
            return 2
    service_addresses = _service_addresses(args.service_address)
    if service_addresses is None:
        print("kubesim: --service-address must look like NS/NAME=HOST:PORT", file=sys.stderr)
        return 2
    config = SimConfig(
        admin_tokens=tuple(args.admin_token),
        service_addresses=service_addresses,
        seed_yaml=seed_yaml,
        token_max_seconds=args.token_max_seconds,
        latency_ms=args.latency_ms,
        fault_seed=args.fault_seed,
        token_cache_ttl_seconds=args.token_cache_ttl_seconds,
        kube_version=args.kube_version,
    )
    options = ServerOptions(
        host=args.host,
        port=args.port,
        tls=args.tls,
        tls_dir=args.tls_dir,
        kubeconfig_path=args.write_kubeconfig,
    )
    try:
        return run(config, options)
    except SeedError as exc:
        print(f"kubesim: bad --seed {args.seed}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kubesim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
