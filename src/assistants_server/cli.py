"""The `assistants-server` command: `serve` (migrate, then run uvicorn, with a role), `worker`
(the same with the worker role), `migrate`, `doctor`, the operator's `projects`, `keys`,
`admin-keys` and `usage` (access/commands.py), and `export` and `import` (transfer/)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from assistants_server import tracing
from assistants_server.access import commands as access_commands
from assistants_server.access.commands import keys_exist
from assistants_server.backends.config_file import ConfigFileError
from assistants_server.config import LOOPBACK_HOSTS, Settings
from assistants_server.transfer import commands as transfer_commands
from assistants_server.workers import APP, serve_workers

log = logging.getLogger("assistants_server")
WORKER_PORT = 8001  # a worker's health and metrics, beside an API process's 8000


def _settings_help() -> str:
    lines = ["settings (environment variables):"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        shown = "unset" if default in (None, [], "") else str(default)
        if isinstance(default, BaseModel):
            shown = "the configuration file's, else the variables above"
        lines.append(f"  ASSISTANTS_{name.upper()}")
        lines.append(f"      {field.description} (default: {shown})")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistants-server",
        description="A self-hosted OpenAI Assistants API v2 server. Point the openai SDK at "
        "it with base_url='http://HOST:PORT/v1'.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="YAML configuration file (ASSISTANTS_CONFIG); see "
                        "assistants.example.yaml")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="migrate the database to the newest schema, then serve HTTP",
        epilog=_settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (ASSISTANTS_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (ASSISTANTS_PORT)")
    serve.add_argument("--role", choices=["all", "api", "worker"],
                       help="'all' (default), 'api' (HTTP only; runs are driven by workers, "
                       "streamed through Redis) or 'worker' (ASSISTANTS_ROLE)")
    worker = commands.add_parser(
        "worker", help="migrate, then drive runs, index files and clean up, serving only "
        "/health, /ready and /metrics (as `serve --role worker`)")
    worker.add_argument("--host", help="address of the health and metrics port")
    worker.add_argument("--port", type=int,
                        help=f"the health and metrics port (default {WORKER_PORT})")
    commands.add_parser("migrate", help="migrate the database to the newest schema and exit")
    commands.add_parser(
        "doctor", help="call every configured backend (model list, an answer, a tool call, an "
        "embedding) and say what works; exit 1 if anything does not")
    access_commands.add_commands(commands)
    transfer_commands.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.config is not None:
        # Worker processes build their settings from the environment: they read it there.
        os.environ["ASSISTANTS_CONFIG"] = str(args.config)
    role = "worker" if args.command == "worker" else getattr(args, "role", None)
    if role is not None:
        os.environ["ASSISTANTS_ROLE"] = role  # here too: every process reads it
    try:
        settings = Settings.load()
    except (ValidationError, ConfigFileError) as exc:
        print(f"assistants-server: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    settings.configure_logging()
    if settings.otel_enabled and not tracing.available():
        print(f"assistants-server: {tracing.MISSING}", file=sys.stderr)
        return 2
    if args.command == "doctor":
        from assistants_server.backends.doctor import doctor

        return doctor(settings.models_config)
    from assistants_server.db.migrate import upgrade_to_head

    upgrade_to_head(settings)
    if args.command == "migrate":
        print("database is at the newest schema")
        return 0
    if args.command in access_commands.COMMANDS:
        return access_commands.run_command(args, settings)
    if args.command in transfer_commands.COMMANDS:
        return transfer_commands.run_command(args, settings)
    port = args.port if args.port is not None or args.command != "worker" else WORKER_PORT
    overrides = {k: v for k, v in {"host": args.host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    return _serve(settings)


def _serve(settings: Settings) -> int:
    import uvicorn

    from assistants_server.app import create_app

    host = settings.listen_host
    if not settings.api_keys and not settings.admin_keys and not keys_exist(settings):
        if host in LOOPBACK_HOSTS:
            log.warning("no API key is configured or created: any key is accepted, so the "
                        "server listens on %s (loopback) only. Set ASSISTANTS_API_KEYS, or "
                        "create keys (`assistants-server keys create`), to serve others.", host)
        else:
            log.warning("no API key is configured or created and the server listens on %s: "
                        "anyone who can reach this address can use it. Set ASSISTANTS_API_KEYS "
                        "or create keys (`assistants-server keys create`).", host)
    if settings.role == "worker":
        log.info("worker: driving runs and indexing files; /health, /ready and /metrics at "
                 "http://%s:%d with %d process(es)", host, settings.port, settings.workers)
    else:
        log.info("serving the Assistants API at http://%s:%d/v1 with %d process(es)%s", host,
                 settings.port, settings.workers,
                 "; runs are driven by worker processes" if settings.role == "api" else "")
    # uvloop and httptools (uvicorn[standard]): a faster event loop and parser.
    options: dict[str, Any] = {
        "host": host, "port": settings.port, "log_level": settings.log_level.lower(),
        "proxy_headers": True, "access_log": settings.access_log,
        "log_config": None,  # uvicorn's lines go to the root handler: one format, with ids
        # Connections left when a drain is over (it ends the streams) are not waited for.
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds + 5}
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    # Each process builds its app from the same environment (migrated above).
    if not hasattr(socket, "SO_REUSEPORT"):  # Windows: uvicorn's workers, on one socket
        uvicorn.run(APP, factory=True, workers=settings.workers, **options)
        return 0
    return serve_workers(options, settings.workers)


if __name__ == "__main__":
    raise SystemExit(main())
