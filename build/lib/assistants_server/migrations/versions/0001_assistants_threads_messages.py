"""assistants, threads and messages

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _listed_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", Json, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "assistants",
        *_listed_columns(),
        sa.Column("name", sa.String(256)),
        sa.Column("description", sa.String(512)),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("instructions", sa.Text()),
        sa.Column("tools", Json, nullable=False),
        sa.Column("tool_resources", Json, nullable=False),
        sa.Column("temperature", sa.Float()),
        sa.Column("top_p", sa.Float()),
        sa.Column("response_format", Json, nullable=False),
        sa.Column("reasoning_effort", sa.String(16)),
    )
    op.create_index("ix_assistants_order", "assistants", ["created_at", "pk"])
    op.create_table(
        "threads",
        *_listed_columns(),
        sa.Column("tool_resources", Json),
    )
    op.create_table(
        "messages",
        *_listed_columns(),
        sa.Column("thread_id", sa.String(64),
                  sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("incomplete_details", Json),
        sa.Column("completed_at", sa.BigInteger()),
        sa.Column("incomplete_at", sa.BigInteger()),
        sa.Column("assistant_id", sa.String(64)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("attachments", Json, nullable=False),
    )
    op.create_index("ix_messages_thread_order", "messages", ["thread_id", "created_at", "pk"])
    op.create_index("ix_messages_thread_run", "messages", ["thread_id", "run_id"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("threads")
    op.drop_table("assistants")
