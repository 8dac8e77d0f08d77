"""A unit of work: services flush, the owner of the session (a request, a worker) commits once,
and work that must follow the commit (publishing events, waking a worker, deleting bytes no
record names any more) is queued on the session while the work is done and run after it.

    after_commit(session, ingestor.notify)          # in a service or a router
    on_rollback(session, lambda: blobs.delete(id))  # undo what is outside the database
    await commit(session)                           # the owner: commit, then the queue
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
Job = Callable[[], Awaitable[object] | object]
_AFTER = "after_commit"
_UNDO = "on_rollback"


def after_commit(session: AsyncSession, job: Job) -> None:
    """Run `job` once `session`'s transaction has committed (in the order queued)."""
    session.info.setdefault(_AFTER, []).append(job)


def on_rollback(session: AsyncSession, job: Job) -> None:
    """Run `job` if `session`'s transaction does not commit."""
    session.info.setdefault(_UNDO, []).append(job)


async def commit(session: AsyncSession) -> None:
    """Commit, then run what was queued to follow; if the commit fails, undo instead."""
    try:
        await session.commit()
    except BaseException:
        await rollback(session)
        raise
    session.info.pop(_UNDO, None)
    for job in session.info.pop(_AFTER, []):
        await _run(job)


async def rollback(session: AsyncSession) -> None:
    """Roll back and run the undo jobs; the after-commit queue is dropped."""
    await session.rollback()
    session.info.pop(_AFTER, None)
    for job in session.info.pop(_UNDO, []):
        try:
            await _run(job)
        except Exception:  # noqa: BLE001 - the failure being handled is the one to report
            log.exception("undoing work of a rolled-back transaction failed")


async def _run(job: Job) -> None:
    result = job()
    if isinstance(result, Awaitable):
        await result
