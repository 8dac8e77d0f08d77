"""The async engine and session factory, tuned per database.

SQLite runs in WAL mode, so readers never block the writer, through aiosqlite: every statement
runs on the connection's own thread, so a slow one (a search of a large store, a checkpoint)
never stalls the event loop, and a writer waits for another in SQLite's busy handler, on that
thread too. PostgreSQL gets a connection pool and, when configured, its own schema on the
search_path.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from assistants_server.config import Settings
from assistants_server.db.sqlite_writers import WriterQueue

# Connections (each with its thread) kept per process; as many again opened on demand. With 16,
# GETs under mixed load waited for a connection: p99 added 621 ms, 100 ms with 64.
SQLITE_POOL_SIZE = 64
# How long a write waits for another connection's (of this process or another) to end.
SQLITE_BUSY_TIMEOUT_MS = 30_000
PING_AFTER_IDLE_SECONDS = 2.0


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if settings.is_sqlite:
        _private_directory(settings.data_dir)
        database = make_url(url).database
        if database and database != ":memory:" and not Path(database).exists():
            # SQLite takes an empty file as a new database, and gives its -wal and -shm the
            # same mode: readable by this server's user only.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
        # Connections are kept, never opened per session: a new one starts with a cold page
        # cache and its pragmas. Last in, first out: the connection that wrote last still has
        # a valid page cache, which a write through another connection would have emptied.
        engine = create_async_engine(
            url, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE, pool_use_lifo=True)
        event.listen(engine.sync_engine, "connect",
                     partial(_sqlite_pragmas, settings.sqlite_synchronous.upper()))
        if settings.sqlite_fair_writes:
            WriterQueue(SQLITE_BUSY_TIMEOUT_MS / 1000).install(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if settings.database_schema:
        connect_args["server_settings"] = {"search_path": settings.database_schema}
    # A fixed set of connections, waited for when all are busy: connections opened beyond the
    # pool under load were closed again at once, and each cost PostgreSQL a process and asyncpg
    # its type introspection (166 opened in a 10 s run; server CPU per run 12.5 ms, 8.2 without).
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=0,
        connect_args=connect_args,
    )
    for used in ("connect", "checkin"):
        event.listen(engine.sync_engine.pool, used, _stamp_use)
    event.listen(engine.sync_engine.pool, "checkout", partial(_ping_if_idle, engine.dialect))
    return engine


def _stamp_use(_dbapi_connection: Any, record: Any) -> None:
    record.info["last_used"] = time.monotonic()


def _ping_if_idle(dialect: Any, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A connection idle for a while is pinged before use, and replaced if the database
    dropped it (a restart, an idle timeout); one used moments ago is not: pinging every
    checkout (pool_pre_ping) was a round trip per request, 5 ms of a run's 18."""
    if time.monotonic() - record.info.get("last_used", 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception as exc:  # noqa: BLE001 - any failure means: use another connection
        raise DisconnectionError(f"connection failed its ping: {exc!r}") from exc
    if not alive:
        raise DisconnectionError("connection failed its ping")


def _private_directory(path: Path) -> None:
    """The data directory, made readable by this server's user only when it makes it (an
    operator's existing directory keeps its mode: it may be shared on purpose)."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return  # already there, or another process starting beside this one made it
    path.chmod(0o700)  # whatever the umask


def _sqlite_pragmas(synchronous: str, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL: a power cut may lose the last commits, never corrupt; FULL: not even those.
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # The busy handler sleeps on the connection's thread, not on the event loop.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for a single read (a poll): on PostgreSQL without a transaction around it,
    which would cost a BEGIN and a ROLLBACK round trip each. SQLite opens none for reads."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return create_sessionmaker(engine)
