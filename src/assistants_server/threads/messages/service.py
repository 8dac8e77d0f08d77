"""Rules and queries for messages. Functions flush; the request commits."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, delete_listed, fetch_page
from assistants_server.db.models import MessageRow, ThreadRow
from assistants_server.db.states import COMPLETED
from assistants_server.kit.errors import InvalidRequestError, not_found
from assistants_server.kit.ids import check_id, new_id
from assistants_server.kit.metadata import merged_metadata
from assistants_server.threads.messages.schemas import (
    CreateMessageRequest,
    ModifyMessageRequest,
    content_to_wire,
)
from assistants_server.threads.service import active_run_id, get_thread
from assistants_server.vector_stores.resources import attach_to_thread


def new_message(thread_id: str, body: CreateMessageRequest, created_at: int) -> MessageRow:
    """A user-supplied message row (not yet added to a session)."""
    return MessageRow(
        id=new_id("msg_"),
        created_at=created_at,
        thread_id=thread_id,
        role=body.role,
        content=content_to_wire(body.content),
        status=COMPLETED,
        attachments=[a.model_dump() for a in body.attachments or []],
        metadata_=body.metadata,
    )


async def add_messages(
    session: AsyncSession, thread: ThreadRow, bodies: list[CreateMessageRequest]
) -> list[MessageRow]:
    now = int(time.time())
    rows = [new_message(thread.id, body, now) for body in bodies]
    session.add_all(rows)
    await session.flush()
    _share_code_interpreter_files(thread, bodies)
    await attach_to_thread(session, thread, [
        a.file_id for body in bodies for a in body.attachments or []
        if any(tool.type == "file_search" for tool in a.tools)])
    await session.flush()
    return rows


def _share_code_interpreter_files(thread: ThreadRow, bodies: list[CreateMessageRequest]) -> None:
    """A code_interpreter attachment makes its file available to the thread's tool, as the
    service did."""
    attached = [a.file_id for body in bodies for a in body.attachments or []
                if any(tool.type == "code_interpreter" for tool in a.tools)]
    if not attached:
        return
    resources = dict(thread.tool_resources or {})
    section = dict(resources.get("code_interpreter") or {"file_ids": []})
    section["file_ids"] = list(dict.fromkeys([*section.get("file_ids", []), *attached]))
    resources["code_interpreter"] = section
    thread.tool_resources = resources


async def create_message(
    session: AsyncSession, thread_id: str, body: CreateMessageRequest
) -> MessageRow:
    thread = await get_thread(session, thread_id)
    active = await active_run_id(session, thread_id)
    if active is not None:
        raise InvalidRequestError(
            f"Can't add messages to {thread_id} while a run {active} is active.")
    (row,) = await add_messages(session, thread, [body])
    return row


async def list_messages(
    session: AsyncSession, thread_id: str, query: ListQuery, run_id: str | None
) -> tuple[list[MessageRow], bool]:
    await get_thread(session, thread_id)
    scope = [MessageRow.thread_id == thread_id]
    if run_id:
        check_id(run_id, "run_", "run_id")
        scope.append(MessageRow.run_id == run_id)
    return await fetch_page(session, MessageRow, query, *scope)


async def get_message(session: AsyncSession, thread_id: str, message_id: str) -> MessageRow:
    check_id(message_id, "msg_", "message_id")
    await get_thread(session, thread_id)
    row = await session.scalar(
        select(MessageRow).where(MessageRow.id == message_id, MessageRow.thread_id == thread_id)
    )
    if row is None:
        raise not_found("message", message_id)
    return row


async def modify_message(
    session: AsyncSession, thread_id: str, message_id: str, body: ModifyMessageRequest
) -> MessageRow:
    row = await get_message(session, thread_id, message_id)
    if "metadata" in body.model_fields_set:
        row.metadata_ = merged_metadata(row.metadata_, body.metadata)
    await session.flush()
    return row


async def delete_message(session: AsyncSession, thread_id: str, message_id: str) -> None:
    row = await get_message(session, thread_id, message_id)
    await delete_listed(session, row)
