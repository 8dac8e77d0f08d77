"""Bring a database to the newest schema with Alembic, from code (the CLI and tests call this).

The scripts live in the repository's top-level `migrations/`, which the package links as
`assistants_server/migrations`, so an installed wheel migrates without alembic.ini.

Processes started together (several `serve` or `migrate` on one fresh database) migrate it
once: each migrates in one transaction, on one connection that first takes a lock the others
wait for, and hands that connection to Alembic (`config.attributes["connection"]`, Alembic's
"sharing a connection" recipe), so that whoever comes next finds the database at head.

Upgrades run old and new processes side by side: a release's migrations only add (tables,
columns with defaults or NULL; `tests/db/test_migrations_add_only.py` holds them to it), so a
process of the previous release serves on a schema a newer release migrated. It neither
refuses to start on it nor reports itself unready (`newer_than_head`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine

T = TypeVar("T")

SCRIPTS = Path(__file__).resolve().parents[1] / "migrations"
log = logging.getLogger(__name__)


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["settings"] = settings
    return config


def upgrade_to_head(settings: Settings) -> None:
    config = alembic_config(settings)

    def upgrade(connection: Connection) -> None:
        current = MigrationContext.configure(connection).get_current_revision()
        if newer_than_head(current):
            log.warning("the database schema is at migration %s, newer than this release's %s: "
                        "a later release migrated it; serving on it (migrations only add)",
                        current, head())
            return
        config.attributes["connection"] = connection  # migrations/env.py migrates on it
        command.upgrade(config, "head")

    run_blocking(migrate_locked(settings, upgrade))


@functools.cache
def head() -> str | None:
    """The newest migration this release has."""
    return ScriptDirectory(str(SCRIPTS)).get_current_head()


def newer_than_head(revision: str | None) -> bool:
    """Whether `revision` is a later release's migration: one this release does not have,
    numbered after its head (the scripts are numbered 0001, 0002, ...)."""
    newest = head()
    if revision is None or newest is None or not (revision.isdecimal() and newest.isdecimal()):
        return False
    return int(revision) > int(newest)


async def migrate_locked(settings: Settings, migrate: Callable[[Connection], None]) -> None:
    """Run `migrate` in one transaction on a connection that holds the migration lock.

    PostgreSQL: a session-level advisory lock, taken before the transaction and released once
    it committed (or with the connection, should the process die or the migration fail).
    SQLite: the transaction itself, begun IMMEDIATE so that it holds the file's write lock
    from its start; the driver would begin none before DDL, leaving each statement to race.
    Either way a failed migration rolls back whole, leaving the previous revision."""
    engine = create_engine(settings)
    if engine.dialect.name == "sqlite":
        # SQLAlchemy's documented recipe for SQLite transactions (aiosqlite version).
        event.listen(engine.sync_engine, "connect", _sqlite_without_driver_begin)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    try:
        async with engine.connect() as connection:
            postgresql = connection.dialect.name == "postgresql"
            if postgresql:
                await _advisory(connection, "pg_advisory_lock", settings)
            async with connection.begin():
                if postgresql and settings.database_schema:
                    await connection.execute(
                        text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
                await connection.run_sync(migrate)
            if postgresql:
                await _advisory(connection, "pg_advisory_unlock", settings)
    finally:
        await engine.dispose()


async def _advisory(connection: AsyncConnection, function: str, settings: Settings) -> None:
    """Take or release the lock. Its key names this server's migrations of this schema, so
    servers in different schemas of one database do not wait for each other."""
    name = f"assistants-server:migrate:{settings.database_schema or ''}".encode()
    key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
    await connection.execute(text(f"SELECT {function}(:key)"), {"key": key})
    await connection.commit()


# How long a process waits for another's migration of the same SQLite file (PostgreSQL's
# advisory lock waits without a limit): long enough for one rebuilding a large table.
SQLITE_MIGRATION_WAIT_MS = 600_000


def _sqlite_without_driver_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the "begin" event below emits BEGIN instead
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_MIGRATION_WAIT_MS}")
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, in its own event loop and thread, so it
    works even when the caller is inside a running loop (Alembic's env.py, tests)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
