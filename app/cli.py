"""The `scangate` command: set up and operate the service (`init`, `migrate`, `serve`,
`keys create`, `reap`) and use it from CI (`grant request|approve|deny|kubeconfig|revoke|list|show`,
`whoami`, `run`; see `app/client`).

Subcommands are argparse sub-parsers, each in its own small function. Problems an operator fixes
in configuration (no configuration file, a cluster whose credentials cannot be loaded, a database
that cannot be reached) end the command with one line and a hint, never a traceback.

Exit codes (also in `scangate --help`):
    0  success
    1  failure at run time (client: including errors inside scangate)
    2  usage or configuration error (client: SCANGATE_URL or the token missing)
    3  client: not authenticated (401)
    4  client: denied by policy or not allowed (403)
    5  client: grant not found (404)
    6  client: request rejected (400, 409, 422)
    7  client: scangate or its cluster unavailable (connection, timeout, 502-504)
    8  client (run): the grant ended before the command, which was stopped
    9  client: the grant needed approval and it was denied
    10 client: no approval decision in time (the request's deadline or --wait-timeout)
    `scangate run` exits with its command's status (128+N when killed by signal N, 126/127
    when the command cannot be run), or 1-7, 9, 10 when scangate fails before the command starts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app.client.parser import CLIENT_HELP, add_client_commands
from app.settings import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH, ConfigError, Settings, load_settings

Handler = Callable[[argparse.Namespace], int]
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


class StartupError(Exception):
    """A problem the operator fixes in configuration or credentials: printed as one line with
    a hint, never as a traceback."""


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def _configured_by_environment() -> bool:
    names = {f"SCANGATE_{field.upper()}" for field in Settings.model_fields}
    return any(key.split("__", 1)[0] in names for key in os.environ)


def _require_configuration(args: argparse.Namespace) -> None:
    """A server needs a configuration: without one it would create ./scangate.db and then fail
    on in-cluster credentials, which says nothing about what is missing."""
    path = _config_path(args)
    explicit = args.config is not None or CONFIG_ENV_VAR in os.environ
    if path.is_file() or (not explicit and _configured_by_environment()):
        return
    source = "--config" if args.config else (CONFIG_ENV_VAR if explicit else "the default")
    raise StartupError(
        f"no configuration file: looked for {path.resolve()} ({source}).\n"
        f"  hint: `scangate init` writes a commented starter configuration there "
        f"(`scangate --config PATH init` elsewhere); the README's Configuration section "
        f"describes every key; `scangate serve --demo` runs a demo without one"
    )


def _check_cluster_credentials(settings: Settings, config: Path) -> None:
    """Load every cluster's credentials before serving, so a missing kubeconfig or an absent
    service account is one clear line rather than a failed startup inside the server."""
    from app.kube.client_config import load_cluster_config
    from app.kube.errors import KubeError
    from app.main import kube_cluster_settings

    for index, cluster in enumerate(kube_cluster_settings(settings)):
        try:
            asyncio.run(load_cluster_config(cluster))
        except (KubeError, ValueError) as exc:
            hint = (
                f"outside a Kubernetes pod, set clusters[{index}].kubeconfig in {config}"
                if cluster.kubeconfig is None
                else f"check clusters[{index}].kubeconfig / context in {config}"
            )
            raise StartupError(f"{exc}\n  hint: {hint}") from None


def _migrate(settings: Settings, config: Path, revision: str = "head") -> None:
    """Apply migrations; a database that cannot be reached is one line, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.db.engine import run_migrations
    from app.db.errors import database_unavailable
    from app.db.urls import redacted_url

    try:
        run_migrations(settings.database_url, revision)
    except SQLAlchemyError as exc:
        if not database_unavailable(exc):
            raise
        raise StartupError(
            f"cannot reach the database {redacted_url(settings.database_url)} "
            f"({type(getattr(exc, 'orig', None) or exc).__name__})\n"
            f"  hint: start it, or check database_url in {config} / SCANGATE_DATABASE_URL"
        ) from None


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.db.urls import redacted_url

    _require_configuration(args)
    settings = _settings(args)
    _migrate(settings, _config_path(args), args.revision)
    print(f"database {redacted_url(settings.database_url)} is at revision {args.revision}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.demo:
        # The demo builds its own configuration and simulated cluster.
        from app.demo import run_demo

        return run_demo(host=args.host, port=args.port)

    import uvicorn

    from app.main import config_reloader_of, create_app

    _require_configuration(args)
    settings = _settings(args)
    _check_cluster_credentials(settings, _config_path(args))
    if not args.no_migrate:
        # Serving an old schema fails in confusing ways; migrating first makes a first run
        # just work. Replicas starting together are serialised by run_migrations.
        _migrate(settings, _config_path(args))
    from app.gc_tuning import tune_garbage_collector
    from app.observability.logs import logging_config, skip_unused_record_fields

    skip_unused_record_fields()
    app = create_app(settings, config_path=args.config)
    reloader = config_reloader_of(app)
    tune_garbage_collector()

    from app.serving import serve_all, tls_options
    from app.tls_files import ReloadingCertificate

    api_certificate = (
        ReloadingCertificate(settings.api_tls.cert_file, settings.api_tls.key_file)
        if settings.api_tls is not None
        else None
    )
    api = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        # JSON lines (or text, `log_format`) for the server's lines too; the app writes the one
        # access record per request, so uvicorn's own access log is off.
        log_config=logging_config(settings.log_format, args.log_level),
        access_log=False,
        # Longer than clients' idle keep-alive (httpx: 5 s, uvicorn's own default): a server
        # closing an idle connection just as a client reuses it loses that request in transit.
        timeout_keep_alive=65,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; only the configured
        # proxies may say who the client is (`trusted_proxies`, default: nobody).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        **tls_options(api_certificate),  # type: ignore[arg-type]
    )
    configs, certificates = [api], [api_certificate] if api_certificate else []
    if settings.guard.enabled:
        # The grant guard's webhook listener runs beside the API (app/guard/server.py).
        from app.guard.server import guard_config

        guard, guard_certificate = guard_config(
            settings, log_level=args.log_level, live=reloader.live
        )
        configs.append(guard)
        certificates.append(guard_certificate)
    from app.reload import ConfigFileWatcher

    background = []
    if settings.config_watch_seconds > 0:
        watcher = ConfigFileWatcher(
            reloader, _config_path(args), interval=settings.config_watch_seconds
        )
        background.append(watcher.watch)
    serve_all(
        configs,
        certificates,
        on_hangup=lambda: reloader.request_reload("SIGHUP"),
        background=background,
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from app.starter_config import default_kubeconfig, starter_config

    path = _config_path(args)
    if path.exists() and not args.force:
        raise StartupError(f"{path} exists; it was left as it is (--force replaces it)")
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else default_kubeconfig()
    if kubeconfig is not None and not kubeconfig.is_file():
        raise StartupError(f"--kubeconfig {kubeconfig}: no such file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_config(path, kubeconfig))
    print(f"wrote {path}: edit it (API keys, policies), then run `scangate --config {path} serve`")
    if kubeconfig is None:
        print("  note: no kubeconfig found; scangate will use in-cluster credentials")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.auth.api_keys import generate_api_key

    if not _KEY_NAME.match(args.name):
        print(
            f"error: key name must be 1-63 letters, digits, '.', '_' or '-' (got {args.name!r})",
            file=sys.stderr,
        )
        return 2
    key, digest = generate_api_key()
    print(f"# API key for principal apikey:{args.name}. It is shown only this once:")
    print("# store it in your CI secret store; scangate keeps only its sha256.")
    print(key)
    print("# Add this entry under api_keys in scangate.yaml:")
    print(f"- {{name: {args.name}, sha256: {digest}}}")
    return 0


def cmd_reap(args: argparse.Namespace) -> int:
    if not args.once:
        print("error: only 'scangate reap --once' is supported; the service runs the reaper")
        return 2
    _require_configuration(args)
    settings = _settings(args)
    _check_cluster_credentials(settings, _config_path(args))
    from app.main import reap_once

    report = asyncio.run(reap_once(settings))
    for name, value in dataclasses.asdict(report).items():
        print(f"{name}: {value}")
    # Non-zero when anything failed, so a CronJob running `reap --once` shows the failure.
    return 1 if report.errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scangate",
        description="Just-in-time, least-privilege Kubernetes pod access for security scanners.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CLIENT_HELP,
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $SCANGATE_CONFIG, else ./scangate.yaml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(handler=cmd_migrate)

    serve = commands.add_parser("serve", help="run the API server (migrates first)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    serve.add_argument(
        "--port",
        type=int,
        default=os.environ.get("SCANGATE_PORT") or "8080",  # argparse applies `type` to it
        help="port (default: $SCANGATE_PORT, else 8080)",
    )
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    serve.add_argument(
        "--demo", action="store_true", help="run the local demo against a simulated cluster"
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
    )
    serve.set_defaults(handler=cmd_serve)

    init = commands.add_parser(
        "init", help="write a commented starter configuration (default: ./scangate.yaml)"
    )
    init.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="the cluster credentials scangate uses (default: $KUBECONFIG, else ~/.kube/config)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(handler=cmd_init)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="print a new API key and its config entry")
    create.add_argument("name", help="key name; the principal becomes apikey:NAME")
    create.set_defaults(handler=cmd_keys_create)

    reap = commands.add_parser("reap", help="run the reaper")
    reap.add_argument("--once", action="store_true", help="one pass, then exit")
    reap.set_defaults(handler=cmd_reap)

    add_client_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ConfigError, StartupError) as exc:
        print(f"scangate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
