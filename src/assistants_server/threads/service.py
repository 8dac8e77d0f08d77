"""Rules and queries for threads. Functions flush; the request commits."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, delete_listed, fetch_page
from assistants_server.db.models import MessageRow, RunRow, RunStepRow, ThreadRow
from assistants_server.kit.errors import not_found
from assistants_server.kit.ids import check_id, new_id
from assistants_server.kit.metadata import merged_metadata
from assistants_server.tools.definitions import dump_tool_resources
from assistants_server.vector_stores.resources import create_inline_stores

if TYPE_CHECKING:  # the requests' types only: messages' service imports this module
    from assistants_server.threads.schemas import CreateThreadRequest, ModifyThreadRequest


async def create_thread(session: AsyncSession, body: CreateThreadRequest) -> ThreadRow:
    """The thread row only; `creation.create_thread_with_messages` adds messages."""
    await create_inline_stores(session, body.tool_resources)
    row = ThreadRow(
        id=new_id("thread_"),
        created_at=int(time.time()),
        metadata_=body.metadata,
        tool_resources=dump_tool_resources(body.tool_resources),
    )
    session.add(row)
    await session.flush()
    return row


_BY_ID = select(ThreadRow).where(ThreadRow.id == bindparam("id"))  # built once: a hot read
_ACTIVE_RUN = select(RunRow.id).where(RunRow.active_thread_id == bindparam("thread_id"))


async def get_thread(session: AsyncSession, thread_id: str) -> ThreadRow:
    check_id(thread_id, "thread_", "thread_id")
    row = await session.scalar(_BY_ID, {"id": thread_id})
    if row is None:
        raise not_found("thread", thread_id)
    return row


async def list_threads(
    session: AsyncSession, query: ListQuery, metadata: dict[str, str]
) -> tuple[list[ThreadRow], bool]:
    """A page of threads whose metadata holds every `metadata` key with its value, filtered
    and paged in SQL (never every thread in memory)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    matching = [_holds(key, value, sqlite) for key, value in metadata.items()]
    return await fetch_page(session, ThreadRow, query, visible=matching)


def _holds(key: str, value: str, sqlite: bool) -> ColumnElement[bool]:
    """`metadata[key] == value`. PostgreSQL reads the key with `->>`. SQLite cannot use the
    JSON operator: its path `$."key"` is compared with the key as stored (escaped, `\\u00e9`)
    and cannot quote `"`, so keys with accents, quotes or backslashes would never match;
    `json_each` decodes the stored keys instead."""
    if not sqlite:
        matches: ColumnElement[bool] = ThreadRow.metadata_[key].as_string() == value
        return matches
    pairs = func.json_each(ThreadRow.metadata_).table_valued("key", "value")
    return select(pairs.c.key).where(pairs.c.key == key, pairs.c.value == value).exists()


async def active_run_id(session: AsyncSession, thread_id: str) -> str | None:
    """The thread's active run (queued, in progress, waiting for tool outputs, cancelling)."""
    return await session.scalar(_ACTIVE_RUN, {"thread_id": thread_id})


async def modify_thread(
    session: AsyncSession, thread_id: str, body: ModifyThreadRequest
) -> ThreadRow:
    row = await get_thread(session, thread_id)
    if "metadata" in body.model_fields_set:
        row.metadata_ = merged_metadata(row.metadata_, body.metadata)
    if "tool_resources" in body.model_fields_set:
        await create_inline_stores(session, body.tool_resources)
        row.tool_resources = dump_tool_resources(body.tool_resources)
    await session.flush()
    return row


async def delete_thread(session: AsyncSession, thread_id: str) -> None:
    """Deletes the thread and everything in it: messages, runs and their steps."""
    row = await get_thread(session, thread_id)
    run_ids = select(RunRow.id).where(RunRow.thread_id == thread_id)
    await session.execute(delete(RunStepRow).where(RunStepRow.run_id.in_(run_ids)))
    await session.execute(delete(RunRow).where(RunRow.thread_id == thread_id))
    await session.execute(delete(MessageRow).where(MessageRow.thread_id == thread_id))
    await delete_listed(session, row)  # threads are listed: a cursor naming it still works
