"""The operator's commands: `projects`, `keys`, `admin-keys` and `usage`, on the database the
settings name (migrated first, as `serve` does). They print what they made; a key's secret is
printed once and never again."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.access import service
from assistants_server.access.usage import UsageQuery, completions_usage
from assistants_server.api.pagination import ListQuery
from assistants_server.auth.scopes import READ_ONLY
from assistants_server.config import Settings
from assistants_server.db.access import ApiKeyRow
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.db.migrate import run_blocking
from assistants_server.kit.errors import APIError

COMMANDS = ("projects", "keys", "admin-keys", "usage")
T = TypeVar("T")
ACTOR = "cli"


def add_commands(commands: Any) -> None:
    """Add the commands to the `assistants-server` parser's subparsers."""
    projects = commands.add_parser("projects", help="create, list and archive projects")
    actions = projects.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("create", help="a new project").add_argument("name")
    actions.add_parser("list", help="the projects").add_argument(
        "--all", action="store_true", help="archived ones too")
    actions.add_parser("archive", help="archive a project: its keys stop working").add_argument(
        "project_id")
    keys = commands.add_parser("keys", help="create, list and revoke a project's API keys")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a service account of the project and its key")
    create.add_argument("--project", required=True, help="the project's id (proj_...)")
    create.add_argument("--name", default="cli", help="the service account's name")
    create.add_argument("--read-only", action="store_true", help="GET requests only")
    create.add_argument("--scope", action="append", dest="scopes", metavar="SCOPE",
                        help="a scope the key holds (e.g. api.threads.write); repeat for more")
    actions.add_parser("list", help="a project's keys").add_argument(
        "--project", required=True, help="the project's id")
    actions.add_parser("revoke", help="delete a key: it stops working").add_argument("key_id")
    admin = commands.add_parser("admin-keys", help="create an admin key (for /v1/organization)")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("create", help="a new admin key").add_argument(
        "--name", default="cli", help="its name")
    usage = commands.add_parser("usage", help="tokens used per project and model, per day")
    usage.add_argument("--days", type=int, default=7,
                       help="how many days back (default 7, at most 30)")
    usage.add_argument("--project", help="one project's only")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    handlers: dict[tuple[str, str | None], Callable[[AsyncSession], Awaitable[None]]] = {
        ("projects", "create"): lambda s: _create_project(s, args.name),
        ("projects", "list"): lambda s: _list_projects(s, args.all),
        ("projects", "archive"): lambda s: _archive(s, args.project_id),
        ("keys", "create"): lambda s: _create_key(s, args),
        ("keys", "list"): lambda s: _list_keys(s, args.project),
        ("keys", "revoke"): lambda s: _revoke(s, args.key_id),
        ("admin-keys", "create"): lambda s: _create_admin_key(s, args.name),
        ("usage", None): lambda s: _usage(s, args.days, args.project),
    }
    handler = handlers[(args.command, getattr(args, "action", None))]
    try:
        run_blocking(_in_session(settings, handler))
    except APIError as exc:
        print(f"assistants-server: {exc.message}", file=sys.stderr)
        return 1
    return 0


async def _in_session(settings: Settings, handler: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            result = await handler(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


async def _create_project(session: AsyncSession, name: str) -> None:
    row = await service.create_project(session, name, ACTOR)
    print(f"created project {row.id} ({row.name})")


async def _list_projects(session: AsyncSession, archived: bool) -> None:
    rows, _ = await service.list_projects(session, ListQuery(limit=100, order="asc"), archived)
    for row in rows:
        print(f"{row.id}\t{row.status}\t{row.name}")


async def _archive(session: AsyncSession, project_id: str) -> None:
    row = await service.archive_project(session, project_id, ACTOR)
    print(f"archived project {row.id}: its keys no longer work")


async def _create_key(session: AsyncSession, args: argparse.Namespace) -> None:
    scopes = sorted(READ_ONLY) if args.read_only else args.scopes
    account = await service.create_service_account(session, args.project, args.name, ACTOR)
    row, secret = await service.create_key(session, "project", args.name, ACTOR,
                                           account=account, scopes=scopes)
    print(f"created key {row.id} of project {args.project} (scopes: "
          f"{', '.join(scopes) if scopes else 'all'}). Its value, shown this once:")
    print(secret)


async def _list_keys(session: AsyncSession, project_id: str) -> None:
    rows, _ = await service.list_keys(session, "project", project_id,
                                      ListQuery(limit=100, order="asc"))
    for row in rows:
        used = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row.last_used_at)) \
            if row.last_used_at else "never used"
        print(f"{row.id}\t{row.redacted_value}\t{row.name}\t{used}\t"
              f"{','.join(row.scopes) if row.scopes else 'all scopes'}")


async def _revoke(session: AsyncSession, key_id: str) -> None:
    row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.id == key_id,
                                                       ApiKeyRow.revoked_at.is_(None)))
    if row is None:
        raise APIError(f"No API key found with id '{key_id}'. `keys list --project ID` shows "
                       "a project's keys.")
    await service.delete_key(session, row, ACTOR)
    print(f"revoked {row.kind} key {row.id}")


async def _create_admin_key(session: AsyncSession, name: str) -> None:
    row, secret = await service.create_key(session, "admin", name, ACTOR)
    print(f"created admin key {row.id}. Its value, shown this once:")
    print(secret)


async def _usage(session: AsyncSession, days: int, project_id: str | None) -> None:
    now, days = int(time.time()), min(days, 30)
    page = await completions_usage(session, UsageQuery(
        now - days * 86400, now + 1, "1d", [project_id] if project_id else [],
        group_by=["project_id", "model"], limit=min(days + 1, 31)))
    print("day\tproject\tmodel\tinput tokens\toutput tokens\tmodel calls")
    for bucket in page["data"]:
        day = time.strftime("%Y-%m-%d", time.gmtime(bucket["start_time"]))
        for r in bucket["results"]:
            print(f"{day}\t{r['project_id']}\t{r['model']}\t{r['input_tokens']}\t"
                  f"{r['output_tokens']}\t{r['num_model_requests']}")


def keys_exist(settings: Settings) -> bool:
    """Whether any key was created (`keys create`, the Admin API): then a request without one
    is refused even when none is configured."""
    async def look(session: AsyncSession) -> bool:
        return await session.scalar(select(ApiKeyRow.pk).limit(1)) is not None

    return run_blocking(_in_session(settings, look))
