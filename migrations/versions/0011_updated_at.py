"""every listed object records when it last changed, so an export can carry only what changed
since an earlier one

Rows written before have NULL: an incremental export takes their `created_at` instead.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTED = ("assistants", "threads", "messages", "runs", "run_steps", "files", "vector_stores",
          "vector_store_files", "vector_store_file_batches", "projects", "service_accounts",
          "api_keys")


def upgrade() -> None:
    for table in LISTED:
        op.add_column(table, sa.Column("updated_at", sa.BigInteger()))


def downgrade() -> None:
    for table in LISTED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("updated_at")
