"""Alembic environment: runs migrations on the async engine built from the server's Settings."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import context
from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
from assistants_server.db.migrate import run_blocking
from assistants_server.db.models import Base

config = context.config
settings: Settings = config.attributes.get("settings") or Settings()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    """Migrate under a lock, so that processes started together (several `serve` on one fresh
    database) migrate once: the others wait, then find it at head. PostgreSQL: an advisory
    lock held by this connection (released with it, should the process die); SQLite, one
    machine's file: an exclusive lock on a file beside the database."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _key()})
                await connection.commit()
                if settings.database_schema:
                    await connection.execute(
                        text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
                    await connection.commit()
                await connection.run_sync(_run)
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _key()})
                await connection.commit()
            else:
                with _file_lock():
                    await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _key() -> int:
    """The advisory lock's key: this server's migrations of this schema."""
    name = f"assistants-server:migrate:{settings.database_schema or ''}".encode()
    return int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)


@contextmanager
def _file_lock() -> Iterator[None]:
    database = make_url(settings.resolved_database_url).database
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


if context.is_offline_mode():
    raise SystemExit("Offline SQL generation is not supported; run against a database.")
run_blocking(_run_async())
