"""vector stores, their files and file batches

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _listed(*, unique_id: bool = True) -> list[sa.Column[object]]:
    return [
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=unique_id),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", Json, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "vector_stores", *_listed(),
        sa.Column("name", sa.String(256)),
        sa.Column("description", sa.String(512)),
        sa.Column("expires_after", Json),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("last_active_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_vector_stores_order", "vector_stores", ["created_at", "pk"])
    op.create_index("ix_vector_stores_expires_at", "vector_stores", ["expires_at"])
    op.create_table(
        "vector_store_files", *_listed(unique_id=False),
        sa.Column("vector_store_id", sa.String(64),
                  sa.ForeignKey("vector_stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", Json),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunking_strategy", Json, nullable=False),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("lease_expires_at", sa.Float()),
    )
    op.create_index("ix_vector_store_files_order", "vector_store_files",
                    ["vector_store_id", "created_at", "pk"])
    op.create_index("ix_vector_store_files_batch", "vector_store_files",
                    ["batch_id", "created_at", "pk"])
    op.create_index("ix_vector_store_files_file", "vector_store_files", ["id"])
    op.create_index("ix_vector_store_files_pending", "vector_store_files",
                    ["status", "lease_expires_at"])
    op.create_index("uq_vector_store_files", "vector_store_files", ["vector_store_id", "id"],
                    unique=True)
    op.create_table(
        "vector_store_file_batches", *_listed(),
        sa.Column("vector_store_id", sa.String(64),
                  sa.ForeignKey("vector_stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("cancelled_at", sa.BigInteger()),
    )


def downgrade() -> None:
    op.drop_table("vector_store_file_batches")
    op.drop_table("vector_store_files")
    op.drop_table("vector_stores")
