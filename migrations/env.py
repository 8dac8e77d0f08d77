"""Alembic environment: runs migrations on the async engine built from the server's Settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
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
    engine = create_engine(settings)
    async with engine.connect() as connection:
        if settings.database_schema and connection.dialect.name == "postgresql":
            await connection.execute(
                text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"')
            )
            await connection.commit()
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline SQL generation is not supported; run against a database.")
run_blocking(_run_async())
