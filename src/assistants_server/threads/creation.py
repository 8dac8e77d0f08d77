"""A new thread with its first messages: POST /v1/threads and the thread of
POST /v1/threads/runs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import ThreadRow
from assistants_server.threads.messages.service import add_messages
from assistants_server.threads.schemas import CreateThreadRequest
from assistants_server.threads.service import create_thread


async def create_thread_with_messages(
    session: AsyncSession, body: CreateThreadRequest
) -> ThreadRow:
    """A new thread holding `body.messages` (threads and thread-and-run both start this way)."""
    thread = await create_thread(session, body)
    if body.messages:
        await add_messages(session, thread, body.messages)
    return thread
