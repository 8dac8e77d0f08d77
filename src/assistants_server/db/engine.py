"""The async engine and session factory, tuned per database.

SQLite runs in WAL mode, so readers never block the writer, through the inline driver
(sqlite_inline.py: statements on the event loop, writers queued in-process); PostgreSQL gets a
connection pool and, when configured, its own schema on the search_path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from assistants_server.config import Settings
from assistants_server.db import sqlite_inline

SQLITE_POOL_SIZE = 64  # the executor's runs and the requests served at once, per process


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = make_url(url).database or ""
        writes = asyncio.Lock()  # this engine's writers queue here, not in SQLite
        # Connections are kept, never opened per session: a new one starts with a cold page
        # cache and its pragmas, and with the default pool (5 kept) a loaded server opened and
        # closed them all the time (a third fewer runs per second).
        engine = create_async_engine(
            url, async_creator=lambda: sqlite_inline.connect(path, writes),
            pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if settings.database_schema:
        connect_args["server_settings"] = {"search_path": settings.database_schema}
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # No busy handler: it would sleep on the event loop. The driver waits for other
    # processes' writes itself (sqlite_inline.BUSY_TIMEOUT_SECONDS).
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
