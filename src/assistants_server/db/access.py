"""Who may call the API: projects, their service accounts, and API keys (project and admin).

A key's secret is never stored: only its SHA-256 (keys are 256 random bits, so a slow hash
would add nothing) and a redacted form to show. Projects are never deleted, only archived.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistants_server.db.models import Base, Json, ListedRow, PrimaryKey


class ProjectRow(ListedRow):
    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_order", "created_at", "pk"),)

    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="active")
    archived_at: Mapped[int | None] = mapped_column(BigInteger)
    # `{"mode": "allow_list" | "deny_list", "model_ids": [...]}`, or NULL: every model.
    model_permissions: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # How many of its runs may be active (queued, in progress, cancelling) at once; NULL: any.
    max_active_runs: Mapped[int | None] = mapped_column(Integer)


class ServiceAccountRow(ListedRow):
    __tablename__ = "service_accounts"
    __table_args__ = (Index("ix_service_accounts_order", "project_id", "created_at", "pk"),)

    project_id: Mapped[str] = mapped_column(String(64), ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="member")


class ApiKeyRow(ListedRow):
    """A project key (`sk-proj-...`, of a service account) or an admin key (`sk-admin-...`)."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_order", "kind", "project_id", "created_at", "pk"),)

    kind: Mapped[str] = mapped_column(String(16))  # "project" or "admin"
    project_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("projects.id"))
    service_account_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("service_accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redacted_value: Mapped[str] = mapped_column(String(64))
    # What the key may do ("api.threads.write", ...); NULL: everything its project may.
    scopes: Mapped[list[Any] | None] = mapped_column(Json)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    # Revoked keys are kept (the audit trail, and the proof that keys were ever made: a
    # server whose only key was revoked stays closed rather than turning keyless).
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    # Who made it: an admin key's id, "cli", or "configuration".
    created_by: Mapped[str] = mapped_column(String(64))



class RateLimitRow(Base):
    """A project's limits on one model (its wire id is `rl-<model>`); NULL: no limit."""

    __tablename__ = "rate_limits"
    __table_args__ = (Index("uq_rate_limits", "project_id", "model", unique=True),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), ForeignKey("projects.id"))
    model: Mapped[str] = mapped_column(String(256))
    max_requests_per_1_minute: Mapped[int | None] = mapped_column(Integer)
    max_tokens_per_1_minute: Mapped[int | None] = mapped_column(Integer)
    max_requests_per_1_day: Mapped[int | None] = mapped_column(Integer)
