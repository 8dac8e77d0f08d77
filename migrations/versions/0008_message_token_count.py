"""messages keep their token count

A nullable column, added without a default and without a backfill, so the migration takes no
time however many messages a database holds (an ADD COLUMN on both SQLite and PostgreSQL, no
table rewrite). Rows written before it are counted by the run engine when a context first
reads them, and the count is stored then (engine/context.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("token_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("token_count")
