"""The ORM models: one row class per stored object.

Every table has an integer `pk` that grows with insertion order beside the public string `id`.
Lists sort by `(created_at, pk)`: timestamps have one-second resolution, so `pk` breaks ties and
keeps cursors exact. Wire shapes live in each resource's `schemas` module, never here. Every
object a client makes is `Owned` by a project (db/tenancy.py); projects and their keys are in
db/access.py.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    false,
    inspect,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from assistants_server.db.tenancy import Owned
from assistants_server.tokens import message_tokens

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: Json, list[Any]: Json}


class ListedRow(Base):
    """Columns shared by every object that appears in a cursor-paginated list."""

    __abstract__ = True

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    # When the row last changed (every ORM and Core UPDATE sets it); NULL until it first does.
    # What `export --since` selects by (transfer/).
    updated_at: Mapped[int | None] = mapped_column(BigInteger, onupdate=lambda: int(time.time()))


class OwnedRow(Owned, ListedRow):
    """A listed object that belongs to a project: everything a client makes."""

    __abstract__ = True


class AssistantRow(OwnedRow):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_order", "project_id", "created_at", "pk"),)

    name: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(512))
    model: Mapped[str] = mapped_column(String(256))
    instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[Any]] = mapped_column(Json, default=list)
    tool_resources: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    response_format: Mapped[Any] = mapped_column(Json, default="auto")
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))


class ThreadRow(OwnedRow):
    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_order", "project_id", "created_at", "pk"),)

    tool_resources: Mapped[dict[str, Any] | None] = mapped_column(Json, default=dict)


class MessageRow(OwnedRow):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_thread_order", "thread_id", "created_at", "pk"),
        Index("ix_messages_thread_run", "thread_id", "run_id"),
    )

    thread_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("threads.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[list[Any]] = mapped_column(Json, default=list)
    status: Mapped[str] = mapped_column(String(16), default="completed")
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    incomplete_at: Mapped[int | None] = mapped_column(BigInteger)
    assistant_id: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))
    attachments: Mapped[list[Any]] = mapped_column(Json, default=list)
    # What the message costs in a prompt (`tokens.message_tokens`; 0: the model is shown
    # nothing of it), set by the mapper events below whenever the row is inserted or its
    # content changes, so a run's context is built from counts. NULL for rows written before
    # the column existed: the context counts and stores those when it first reads them.
    token_count: Mapped[int | None] = mapped_column(Integer)


@event.listens_for(MessageRow, "before_insert")
def _count_new_message(_mapper: Mapper[Any], _connection: Connection, row: MessageRow) -> None:
    # Always counted afresh: a row copied from another (engine/turn.py) carries its count.
    row.token_count = message_tokens(row.role or "", row.content or [])


@event.listens_for(MessageRow, "before_update")
def _recount_message(_mapper: Mapper[Any], _connection: Connection, row: MessageRow) -> None:
    state = inspect(row)
    if state.attrs.content.history.has_changes() or state.attrs.role.history.has_changes():
        row.token_count = message_tokens(row.role or "", row.content or [])


class RunRow(OwnedRow):
    """A run, with the configuration it snapshotted at creation and its executor lease.

    `active_thread_id` equals `thread_id` while the run is active and is NULL once terminal;
    a unique index on it makes "one active run per thread" hold under any concurrency.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_thread_order", "thread_id", "created_at", "pk"),
        Index("ix_runs_claim", "status", "lease_expires_at"),
        Index("ix_runs_project_model_created", "project_id", "model", "created_at"),
    )

    thread_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("threads.id", ondelete="CASCADE")
    )
    active_thread_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    assistant_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    required_action: Mapped[dict[str, Any] | None] = mapped_column(Json)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(Json)
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(256))
    instructions: Mapped[str] = mapped_column(Text, default="")
    tools: Mapped[list[Any]] = mapped_column(Json, default=list)
    tool_resources: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    usage: Mapped[dict[str, Any] | None] = mapped_column(Json)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    max_prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    max_completion_tokens: Mapped[int | None] = mapped_column(Integer)
    truncation_strategy: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    response_format: Mapped[Any] = mapped_column(Json, default="auto")
    tool_choice: Mapped[Any] = mapped_column(Json, default="auto")
    parallel_tool_calls: Mapped[bool] = mapped_column(default=True)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    # `include[]` of the request that created the run: extra fields its step events carry.
    step_include: Mapped[list[str] | None] = mapped_column(Json)
    # A client asked for its events as they come (its tokens may have reached someone), and
    # how often it was queued again because the process driving it died.
    streamed: Mapped[bool] = mapped_column(default=False, server_default=false())
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The W3C trace context of the request that queued it, when tracing is on (tracing.py).
    trace_context: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # Optimistic locking: the API (cancel, tool outputs) and the executor change the same run
    # concurrently; an update made from a stale read fails instead of overwriting the other.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def include(self) -> frozenset[str]:
        return frozenset(self.step_include or ())


class RunStepRow(OwnedRow):
    __tablename__ = "run_steps"
    __table_args__ = (Index("ix_run_steps_run_order", "run_id", "created_at", "pk"),
                      Index("ix_run_steps_project_created", "project_id", "created_at"))

    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    thread_id: Mapped[str] = mapped_column(String(64))
    assistant_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    step_details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(Json)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    usage: Mapped[dict[str, Any] | None] = mapped_column(Json)


class TombstoneRow(Owned, Base):
    """Where a deleted listed object sat in its list, so a cursor naming it still works: the
    SDK pages with `after=<last id of the previous page>`, and a loop that deletes what it
    lists names a deleted object in every request after the first page."""

    __tablename__ = "tombstones"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    pk: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int] = mapped_column(BigInteger, index=True)


class FileRow(OwnedRow):
    """An uploaded file's record; its bytes are in the blob store under its id."""

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_order", "project_id", "created_at", "pk"),
        Index("ix_files_purpose_order", "project_id", "purpose", "created_at", "pk"),
        Index("ix_files_expires_at", "expires_at"),
    )

    bytes: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(1024))
    purpose: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="processed")
    status_details: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)


class VectorStoreRow(OwnedRow):
    """A vector store. Its file counts, usage and in-progress status are read from its files'
    rows when it is shown, so no counter can drift from what they say."""

    __tablename__ = "vector_stores"
    __table_args__ = (Index("ix_vector_stores_order", "project_id", "created_at", "pk"),
                      Index("ix_vector_stores_expires_at", "expires_at"))

    name: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(512))
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(Json)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_active_at: Mapped[int] = mapped_column(BigInteger)


class VectorStoreFileRow(OwnedRow):
    """A file attached to a vector store; `id` is the file's id, unique within the store.
    `lease_expires_at` marks the ingestion worker that is indexing it, as runs are leased."""

    __tablename__ = "vector_store_files"
    __table_args__ = (
        Index("ix_vector_store_files_order", "vector_store_id", "created_at", "pk"),
        Index("ix_vector_store_files_batch", "batch_id", "created_at", "pk"),
        Index("ix_vector_store_files_file", "id"),
        Index("ix_vector_store_files_pending", "status", "lease_expires_at"),
        Index("uq_vector_store_files", "vector_store_id", "id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(64))  # the file's id: not unique across stores
    vector_store_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("vector_stores.id", ondelete="CASCADE"))
    batch_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[dict[str, Any] | None] = mapped_column(Json)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    chunking_strategy: Mapped[dict[str, Any]] = mapped_column(Json)
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    lease_expires_at: Mapped[float | None] = mapped_column(Float)


class VectorStoreFileBatchRow(OwnedRow):
    """A batch of files added together; its counts are read from the files naming it."""

    __tablename__ = "vector_store_file_batches"

    vector_store_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("vector_stores.id", ondelete="CASCADE"))
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
