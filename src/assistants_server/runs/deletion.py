"""Deleting a thread while one of its runs is active: the run is cancelled in the same
transaction, so its stream ends with the cancel events and `done` and the process driving it
stops asking the model (its task finds the run gone: `Executor`); then everything goes.

The first statement writes the thread's row (to itself): on PostgreSQL it stays locked until
the commit, so of several deletes racing, one deletes and the others find no thread (404); on
SQLite it takes the write lock at once.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.deps import SessionDep
from assistants_server.db.models import RunRow, ThreadRow
from assistants_server.db.states import transition_run
from assistants_server.kit.errors import not_found
from assistants_server.kit.ids import check_id
from assistants_server.kit.objects import DeletedObject
from assistants_server.kit.uow import after_commit
from assistants_server.runs.lifecycle import end_run
from assistants_server.runs.outbox import Outbox
from assistants_server.threads import service as threads

# The thread's own endpoint, served beside the runs: deleting a thread ends its active run.
router = APIRouter(tags=["threads"])


@router.delete("/v1/threads/{thread_id}")
async def delete_thread_endpoint(
    thread_id: str, session: SessionDep, request: Request
) -> DeletedObject:
    state = request.app.state
    outbox = Outbox(state.bus)
    cancelled = await delete_thread(session, thread_id, outbox)

    async def after() -> None:
        await outbox.publish()  # the cancel's events and `done` end the run's stream
        if cancelled is not None:  # the process driving it stops asking the model
            await state.wakeups.wake("runs")

    after_commit(session, after)
    return DeletedObject(id=thread_id, object="thread.deleted")


async def delete_thread(session: AsyncSession, thread_id: str, outbox: Outbox) -> str | None:
    """Delete the thread, cancelling its active run first; the id of that run, if any."""
    check_id(thread_id, "thread_", "thread_id")
    locked = await session.execute(
        update(ThreadRow).where(ThreadRow.id == thread_id)
        .values(metadata_=ThreadRow.metadata_).execution_options(synchronize_session=False))
    if locked.rowcount != 1:  # type: ignore[attr-defined]
        raise not_found("thread", thread_id)
    run_id = await threads.active_run_id(session, thread_id)
    if run_id is not None:
        run = await session.scalar(select(RunRow).where(RunRow.id == run_id))
        if run is not None:
            if outbox.bus is not None:
                await outbox.bus.refresh(run.id)  # streamed from another process?
            now = int(time.time())
            if run.status == "in_progress":
                transition_run(run, "cancelling", now)
                outbox.run(run)
            await end_run(session, run, "cancelled", now, outbox)
            await session.flush()
    await threads.delete_thread(session, thread_id)
    return run_id
