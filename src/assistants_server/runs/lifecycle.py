"""Ending a run consistently: its open message, its open steps and its own status together.

Used by the API (cancel), the runner (complete, fail, incomplete, cancelled) and the sweeper
(expired, or failed when the process driving it died), so a run never ends half-way; and
handing a run back, queued again, when the process driving it stops or died.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from assistants_server.db.models import MessageRow, RunRow, RunStepRow
from assistants_server.db.states import (
    RunStatus,
    StepStatus,
    transition_message,
    transition_run,
    transition_step,
)
from assistants_server.runs.failures import DIED, LastError
from assistants_server.runs.outbox import Outbox

T = TypeVar("T")
log = logging.getLogger(__name__)

# Times a run nobody streams is queued again after the process driving it died.
MAX_RETRIES = 2

_MESSAGE_REASON = {"cancelled": "run_cancelled", "failed": "run_failed",
                   "expired": "run_expired", "incomplete": "max_tokens"}
_STEP_END: dict[str, StepStatus] = {"cancelled": "cancelled", "failed": "failed",
                                    "expired": "expired", "incomplete": "completed",
                                    "completed": "completed"}


async def end_run(
    session: AsyncSession,
    run: RunRow,
    status: RunStatus,
    now: int,
    outbox: Outbox,
    *,
    last_error: LastError | None = None,
    incomplete_reason: str | None = None,
    open_rows: tuple[list[MessageRow], list[RunStepRow]] | None = None,
) -> None:
    """Close the run's open message and steps, then move the run to `status`; the events go to
    `outbox` in the order a stream carries them (message, steps, run). `open_rows`: the
    caller knows them (the runner built them), so they need not be looked up."""
    reason = _MESSAGE_REASON.get(status)
    if open_rows is None:
        await session.flush()  # rows added in this unit of work must be visible to the queries
        open_rows = (list(await session.scalars(select(MessageRow).where(
            MessageRow.run_id == run.id, MessageRow.status == "in_progress"))),
            list(await session.scalars(select(RunStepRow).where(
                RunStepRow.run_id == run.id, RunStepRow.status == "in_progress"))))
    messages, steps = open_rows
    for message in messages:
        transition_message(message, "completed" if status == "completed" else "incomplete",
                           now, reason)
        outbox.message(message)
    for step in steps:
        if status == "failed" and last_error is not None:
            step.last_error = last_error
        transition_step(step, _STEP_END[status], now)
        outbox.step(step, run.expires_at, include=run.include)
    if last_error is not None:
        run.last_error = last_error
    if incomplete_reason is not None:
        run.incomplete_details = {"reason": incomplete_reason}
    transition_run(run, status, now)
    outbox.run(run)


async def hand_back(session: AsyncSession, run: RunRow, now: int, outbox: Outbox) -> None:
    """The process driving `run` is stopping and nobody cancelled the run: its turn is dropped
    and it is queued again, free for any process (this one after a restart) to claim and start
    that turn anew. Of the turn, only the steps of server tools still running were written:
    they go, so the next turn's context holds no call without its output."""
    await session.execute(delete(MessageRow).where(
        MessageRow.run_id == run.id, MessageRow.status == "in_progress"))
    await session.execute(delete(RunStepRow).where(
        RunStepRow.run_id == run.id, RunStepRow.status == "in_progress"))
    transition_run(run, "queued", now)
    outbox.run(run)


async def take_over(session: AsyncSession, run: RunRow, now: int, outbox: Outbox) -> None:
    """A run whose process died (its lease ran out). Nobody streams it, so no token of the
    lost turn reached a client: it is queued again, up to MAX_RETRIES times; else it ends as
    it must."""
    if run.status == "cancelling":
        log.warning("run %s lost its process (%s) while cancelling", run.id, run.lease_owner)
        await end_run(session, run, "cancelled", now, outbox)
    elif not run.streamed and run.retries < MAX_RETRIES:
        run.retries += 1
        log.warning("run %s lost its process (%s) before any token reached a client: "
                    "queued again (retry %d of %d)", run.id, run.lease_owner, run.retries,
                    MAX_RETRIES)
        await hand_back(session, run, now, outbox)
    else:
        log.warning("run %s lost its process (%s): failed", run.id, run.lease_owner)
        await end_run(session, run, "failed", now, outbox, last_error=DIED)


async def on_fresh_state(
    change: Callable[[], Awaitable[T]],
    reset: Callable[[], Awaitable[None]] | None = None,
    attempts: int = 4,
) -> T:
    """Apply a change to a run again from a fresh read when another writer moved the run
    between our read and our write (the version column turns that into StaleDataError).
    `change` must re-read the run and re-check its status; `reset` discards the stale state."""
    for attempt in range(attempts):
        try:
            return await change()
        except StaleDataError:
            if attempt == attempts - 1:
                raise
            if reset is not None:
                await reset()
    raise AssertionError("unreachable")
