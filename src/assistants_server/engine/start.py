"""A turn's start: queued -> in_progress (or the next round of a run in progress), the
context built and the model's answer already asked for while the start is committed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from assistants_server.backends.chat import ChatBackend, ModelProfile
from assistants_server.db.models import RunRow
from assistants_server.db.states import transition_run
from assistants_server.engine.answer import Prefetched, ask
from assistants_server.engine.context import Context, build_context
from assistants_server.engine.turn import Turn
from assistants_server.events.bus import EventBus
from assistants_server.files.blobs import BlobStore
from assistants_server.runs.failures import TOO_LONG
from assistants_server.runs.lifecycle import end_run, on_fresh_state
from assistants_server.runs.outbox import Outbox

Profiles = Callable[[str], ModelProfile]  # what the model behind a public name can take


async def begin(
    sessionmaker: async_sessionmaker[AsyncSession], backend: ChatBackend,
    bus: EventBus | None, run_id: str, profiles: Profiles, *, resume: bool = False,
    known: RunRow | None = None, blobs: BlobStore | None = None,
) -> tuple[Context, float, Turn, Prefetched] | None:
    """queued -> in_progress (or, with `resume`, the next round of a run in progress), with
    the model's answer already requested; None when there is nothing to do. `known`: the run
    as last committed, used without a read (a change since fails the commit, which then
    starts from a fresh read)."""
    if bus is not None:
        await bus.refresh(run_id)  # streamed from another process?
    outbox = Outbox(bus)
    async with sessionmaker() as session:
        run = await current(session, run_id, known)
        waiting = "in_progress" if resume else "queued"
        if run is None or run.status not in (waiting, "cancelling"):
            return None
        now = int(time.time())
        if run.status == "cancelling":
            await end_run(session, run, "cancelled", now, outbox)
            await session.commit()
            await outbox.publish()
            return None
        if not resume:
            transition_run(run, "in_progress", now)
            outbox.run(run)
        completion_used = int((run.usage or {}).get("completion_tokens", 0))
        context = await build_context(session, run, profiles(run.model), completion_used,
                                      blobs)
        if not context.fits:
            if run.max_prompt_tokens is not None:
                await end_run(session, run, "incomplete", now, outbox,
                              incomplete_reason="max_prompt_tokens")
            else:  # not the client's limit: the model's window is too small for this turn
                await end_run(session, run, "failed", now, outbox, last_error=TOO_LONG)
            await session.commit()
            await outbox.publish()
            return None
        answer = Prefetched(ask(backend, context))
        try:
            # Let the request go out first: SQLite's commit below does not yield, and the
            # backend would otherwise not be asked until the commit and its events are done.
            await asyncio.sleep(0)
            if not resume and not await _commit_start(session, run_id, now, outbox):
                answer.close()
                return None
        except BaseException:
            answer.close()
            raise
    try:
        await outbox.publish()
    except BaseException:
        answer.close()
        raise
    turn = Turn(run, bus, context.found)
    return context, float(run.expires_at or now + 600), turn, answer


async def _commit_start(session: AsyncSession, run_id: str, now: int, outbox: Outbox) -> bool:
    """Commit `in_progress`. Another writer may have touched the run since it was read (a
    lease renewal, a cancel): then the start is applied again to a fresh read, keeping the
    answer already asked for; False when the run is no longer waiting to start."""
    attempts = 0

    async def start() -> bool:
        nonlocal attempts
        attempts += 1
        if attempts > 1:  # the first attempt commits the transition already made
            run = await load(session, run_id)
            if run is None or run.status != "queued":
                return False
            transition_run(run, "in_progress", now)
            outbox.run(run)
        await session.commit()
        return True

    async def reset() -> None:
        await session.rollback()
        outbox.clear()

    try:
        return await on_fresh_state(start, reset)
    except StaleDataError:
        return False


_RUN = select(RunRow).where(RunRow.id == bindparam("id"))  # built once: read every turn


async def load(session: AsyncSession, run_id: str) -> RunRow | None:
    return await session.scalar(_RUN, {"id": run_id})


async def current(
    session: AsyncSession, run_id: str, known: RunRow | None = None
) -> RunRow | None:
    """The run: `known` (as this process last committed it, every attribute loaded) taken into
    the session without a read, else read. If another writer moved the run since (a cancel),
    the version column fails the write, and the caller retries from a fresh read."""
    if known is not None and not inspect(known).unloaded:
        return await session.merge(known, load=False)
    return await load(session, run_id)
