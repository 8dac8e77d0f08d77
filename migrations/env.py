"""Alembic environment: migrates on the connection `upgrade_to_head` hands over, which holds
the migration lock (assistants_server/db/migrate.py), or, when Alembic is driven directly (a
test's downgrade), on one it opens the same way from the server's Settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from assistants_server.config import Settings
from assistants_server.db.migrate import migrate_locked, run_blocking
from assistants_server.db.access import ApiKeyRow  # noqa: F401  (its tables are in the metadata)
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


if context.is_offline_mode():
    raise SystemExit("Offline SQL generation is not supported; run against a database.")
connection: Connection | None = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    run_blocking(migrate_locked(settings, _run))
