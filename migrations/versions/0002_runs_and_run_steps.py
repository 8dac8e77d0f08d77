"""runs and run steps

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
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
        "runs",
        *_listed_columns(),
        sa.Column("thread_id", sa.String(64),
                  sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("active_thread_id", sa.String(64), unique=True),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("required_action", Json),
        sa.Column("last_error", Json),
        sa.Column("incomplete_details", Json),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("started_at", sa.BigInteger()),
        sa.Column("cancelled_at", sa.BigInteger()),
        sa.Column("failed_at", sa.BigInteger()),
        sa.Column("completed_at", sa.BigInteger()),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("tools", Json, nullable=False),
        sa.Column("tool_resources", Json, nullable=False),
        sa.Column("usage", Json),
        sa.Column("temperature", sa.Float()),
        sa.Column("top_p", sa.Float()),
        sa.Column("max_prompt_tokens", sa.Integer()),
        sa.Column("max_completion_tokens", sa.Integer()),
        sa.Column("truncation_strategy", Json, nullable=False),
        sa.Column("response_format", Json, nullable=False),
        sa.Column("tool_choice", Json, nullable=False),
        sa.Column("parallel_tool_calls", sa.Boolean(), nullable=False),
        sa.Column("reasoning_effort", sa.String(16)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.Float()),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_runs_thread_order", "runs", ["thread_id", "created_at", "pk"])
    op.create_index("ix_runs_claim", "runs", ["status", "lease_expires_at"])
    op.create_table(
        "run_steps",
        *_listed_columns(),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step_details", Json, nullable=False),
        sa.Column("last_error", Json),
        sa.Column("cancelled_at", sa.BigInteger()),
        sa.Column("completed_at", sa.BigInteger()),
        sa.Column("expired_at", sa.BigInteger()),
        sa.Column("failed_at", sa.BigInteger()),
        sa.Column("usage", Json),
    )
    op.create_index("ix_run_steps_run_order", "run_steps", ["run_id", "created_at", "pk"])


def downgrade() -> None:
    op.drop_table("run_steps")
    op.drop_table("runs")
