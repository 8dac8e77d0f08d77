"""projects own every object; service accounts, API keys (project and admin), rate limits

Every row written before is moved into the default project, which the keyless default and
ASSISTANTS_API_KEYS keep using, so a single-tenant database loses nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
DEFAULT_PROJECT = "proj_default"
OWNED = ("assistants", "threads", "messages", "runs", "run_steps", "tombstones", "files",
         "vector_stores", "vector_store_files", "vector_store_file_batches")
# Lists of a project's objects read its rows in order: the project leads their indexes.
ORDER_INDEXES = {
    "ix_assistants_order": ("assistants", ["created_at", "pk"]),
    "ix_files_order": ("files", ["created_at", "pk"]),
    "ix_files_purpose_order": ("files", ["purpose", "created_at", "pk"]),
    "ix_vector_stores_order": ("vector_stores", ["created_at", "pk"]),
}


def _listed() -> list[sa.Column[object]]:
    return [
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", Json, nullable=False),
    ]


def upgrade() -> None:
    projects = op.create_table(
        "projects", *_listed(),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("archived_at", sa.BigInteger()),
        sa.Column("model_permissions", Json),
        sa.Column("max_active_runs", sa.Integer()),
    )
    op.create_index("ix_projects_order", "projects", ["created_at", "pk"])
    op.bulk_insert(projects, [{"id": DEFAULT_PROJECT, "created_at": int(time.time()),
                               "metadata": {}, "name": "Default project",
                               "status": "active"}])
    op.create_table(
        "service_accounts", *_listed(),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_index("ix_service_accounts_order", "service_accounts",
                    ["project_id", "created_at", "pk"])
    op.create_table(
        "api_keys", *_listed(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id")),
        sa.Column("service_account_id", sa.String(64),
                  sa.ForeignKey("service_accounts.id", ondelete="CASCADE")),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("redacted_value", sa.String(64), nullable=False),
        sa.Column("scopes", Json),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("last_used_at", sa.BigInteger()),
        sa.Column("revoked_at", sa.BigInteger()),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_api_keys_order", "api_keys", ["kind", "project_id", "created_at", "pk"])
    op.create_table(
        "rate_limits",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("max_requests_per_1_minute", sa.Integer()),
        sa.Column("max_tokens_per_1_minute", sa.Integer()),
        sa.Column("max_requests_per_1_day", sa.Integer()),
    )
    op.create_index("uq_rate_limits", "rate_limits", ["project_id", "model"], unique=True)
    for table in OWNED:
        # A constant default fills the existing rows without rewriting the table on either
        # database; every row written from now on names its project itself.
        op.add_column(table, sa.Column("project_id", sa.String(64), nullable=False,
                                       server_default=DEFAULT_PROJECT))
    for name, (table, columns) in ORDER_INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, ["project_id", *columns])
    op.create_index("ix_threads_order", "threads", ["project_id", "created_at", "pk"])
    # What a project's rate limits and usage count: its runs and model calls by time.
    op.create_index("ix_runs_project_model_created", "runs",
                    ["project_id", "model", "created_at"])
    op.create_index("ix_run_steps_project_created", "run_steps", ["project_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_run_steps_project_created", table_name="run_steps")
    op.drop_index("ix_runs_project_model_created", table_name="runs")
    op.drop_index("ix_threads_order", table_name="threads")
    for name, (table, columns) in ORDER_INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("project_id")
    op.drop_table("rate_limits")
    op.drop_table("api_keys")
    op.drop_table("service_accounts")
    op.drop_table("projects")
