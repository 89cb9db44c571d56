"""The `scangate` command: operate the service (`migrate`, `serve`, `keys create`, `reap`) and
use it from CI (`grant request|kubeconfig|revoke|list|show`, `whoami`, `run`; see `app/client`).

Subcommands are argparse sub-parsers, each in its own small function.

Exit codes (also in `scangate --help`):
    0  success
    1  failure at run time (client: including errors inside scangate)
    2  usage or configuration error (client: SCANGATE_URL or the token missing)
    3  client: not authenticated (401)
    4  client: denied by policy or not allowed (403)
    5  client: grant not found (404)
    6  client: request rejected (400, 409, 422)
    7  client: scangate or its cluster unavailable (connection, timeout, 502-504)
    `scangate run` exits with its command's status (128+N when killed by signal N, 126/127
    when the command cannot be run), or 1-7 when scangate fails before the command starts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import re
import sys
from collections.abc import Callable, Sequence

from app.client.parser import CLIENT_HELP, add_client_commands
from app.settings import ConfigError, Settings, load_settings

Handler = Callable[[argparse.Namespace], int]
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.db.engine import run_migrations
    from app.db.urls import redacted_url

    settings = _settings(args)
    run_migrations(settings.database_url, args.revision)
    print(f"database {redacted_url(settings.database_url)} is at revision {args.revision}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.demo:
        # The demo builds its own configuration and simulated cluster.
        from app.demo import run_demo

        return run_demo(host=args.host, port=args.port)

    import uvicorn

    from app.db.engine import run_migrations
    from app.main import create_app

    settings = _settings(args)
    if not args.no_migrate:
        # Serving an old schema fails in confusing ways; migrating first makes a first run
        # just work. Replicas starting together are serialised by run_migrations.
        run_migrations(settings.database_url)
    from app.gc_tuning import tune_garbage_collector
    from app.observability.logs import logging_config, skip_unused_record_fields

    skip_unused_record_fields()
    app = create_app(settings)
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
        **tls_options(api_certificate),  # type: ignore[arg-type]
    )
    configs, certificates = [api], [api_certificate] if api_certificate else []
    if settings.guard.enabled:
        # The grant guard's webhook listener runs beside the API (app/guard/server.py).
        from app.guard.server import guard_config

        guard, guard_certificate = guard_config(settings, log_level=args.log_level)
        configs.append(guard)
        certificates.append(guard_certificate)
    serve_all(configs, certificates)
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
    settings = _settings(args)
    from app.grants.reaper import run_once

    report = asyncio.run(run_once(settings))
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
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
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
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
