"""Alembic environment: runs migrations on the async engine built from the server's Settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
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
    engine = create_engine(settings)
    async with engine.connect() as connection:
        if settings.database_schema and connection.dialect.name == "postgresql":
            await connection.execute(
                text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"')
            )
            await connection.commit()
        await connection.run_sync(_run)
    await engine.dispose()


def _run_in_fresh_loop() -> None:
    # `upgrade_to_head` may be called from inside a running loop (tests); give Alembic its own.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async())
        return
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(_run_async())
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


if context.is_offline_mode():
    raise SystemExit("Offline SQL generation is not supported; run against a database.")
_run_in_fresh_loop()
