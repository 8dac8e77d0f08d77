"""HTTP endpoints of /v1/threads (thread-and-run lives with runs)."""

from __future__ import annotations

from fastapi import APIRouter

from assistants_server.api.deps import SessionDep
from assistants_server.kit.objects import DeletedObject
from assistants_server.threads import service
from assistants_server.threads.creation import create_thread_with_messages
from assistants_server.threads.schemas import CreateThreadRequest, ModifyThreadRequest, Thread

router = APIRouter(prefix="/v1/threads", tags=["threads"])


@router.post("")
async def create_thread(session: SessionDep, body: CreateThreadRequest | None = None) -> Thread:
    row = await create_thread_with_messages(session, body or CreateThreadRequest())
    return Thread.from_row(row)


@router.get("/{thread_id}")
async def retrieve_thread(thread_id: str, session: SessionDep) -> Thread:
    return Thread.from_row(await service.get_thread(session, thread_id))


@router.post("/{thread_id}")
async def modify_thread(
    thread_id: str, session: SessionDep, body: ModifyThreadRequest | None = None
) -> Thread:
    body = body or ModifyThreadRequest()
    return Thread.from_row(await service.modify_thread(session, thread_id, body))


@router.delete("/{thread_id}")
async def delete_thread(thread_id: str, session: SessionDep) -> DeletedObject:
    await service.delete_thread(session, thread_id)
    return DeletedObject(id=thread_id, object="thread.deleted")
