"""HTTP endpoints of /v1/threads/{thread_id}/messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from assistants_server.api.deps import SessionDep
from assistants_server.api.pagination import ListPage, ListQueryDep, page_of
from assistants_server.kit.objects import DeletedObject
from assistants_server.threads.messages import service
from assistants_server.threads.messages.schemas import (
    CreateMessageRequest,
    Message,
    ModifyMessageRequest,
)

router = APIRouter(prefix="/v1/threads/{thread_id}/messages", tags=["messages"])


@router.post("")
async def create_message(
    thread_id: str, body: CreateMessageRequest, session: SessionDep
) -> Message:
    return Message.from_row(await service.create_message(session, thread_id, body))


@router.get("")
async def list_messages(
    thread_id: str,
    session: SessionDep,
    query: ListQueryDep,
    run_id: Annotated[str | None, Query()] = None,
) -> ListPage[Message]:
    rows, has_more = await service.list_messages(session, thread_id, query, run_id)
    return ListPage[Message](**page_of([Message.from_row(r) for r in rows], has_more))


@router.get("/{message_id}")
async def retrieve_message(thread_id: str, message_id: str, session: SessionDep) -> Message:
    return Message.from_row(await service.get_message(session, thread_id, message_id))


@router.post("/{message_id}")
async def modify_message(
    thread_id: str, message_id: str, body: ModifyMessageRequest, session: SessionDep
) -> Message:
    return Message.from_row(await service.modify_message(session, thread_id, message_id, body))


@router.delete("/{message_id}")
async def delete_message(thread_id: str, message_id: str, session: SessionDep) -> DeletedObject:
    await service.delete_message(session, thread_id, message_id)
    return DeletedObject(id=message_id, object="thread.message.deleted")
