"""A turn's outcome written in one commit: the answer (message completed, or tool calls with
the run requiring action), the server tools' outputs, or the run ended early with what was
streamed kept, marked incomplete."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.backends.chat import Usage
from assistants_server.db.models import RunRow, RunStepRow
from assistants_server.db.states import RunStatus, transition_run, transition_step
from assistants_server.engine.start import current
from assistants_server.engine.turn import NO_USAGE, Turn
from assistants_server.runs.failures import LastError
from assistants_server.runs.lifecycle import end_run
from assistants_server.runs.outbox import Outbox
from assistants_server.tokens import count_text
from assistants_server.tools.registry import tool_for


async def record(
    sessionmaker: async_sessionmaker[AsyncSession],
    turn: Turn,
    prompt_estimate: int,
) -> bool:
    """Write the turn's outcome; True when it called server tools, which run next (the run
    stays in progress with their step open)."""
    if turn.bus is not None:
        await turn.bus.refresh(turn.run_id)  # a watcher may have come since the turn began
    outbox = Outbox(turn.bus)
    serve = False
    known, turn.known = turn.known, None  # a retry (the run moved meanwhile) reads it afresh
    async with sessionmaker() as session:
        if (run := await _driven(session, turn.run_id, known)) is None:
            return False
        now = int(time.time())
        if run.status == "cancelling":
            await _stop(session, run, turn, "cancelled", now, outbox)
            await session.commit()
            await outbox.publish()
            return False
        usage = turn.usage or Usage(prompt_estimate, count_text(turn.text) + sum(
            count_text(c["arguments"]) for c in turn.calls))
        step_usage = {"prompt_tokens": usage.prompt_tokens,
                      "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.total_tokens}
        _add_usage(run, step_usage)
        if turn.calls and turn.message is not None and not turn.message_closed:
            turn.close_message(now, outbox)
        rows = turn.rows(now, outbox, answered=True)
        if turn.calls:
            assert rows.tool_step is not None
            rows.tool_step.usage = step_usage
            serve = bool(turn.server_calls())
            if not serve:
                run.required_action = {"type": "submit_tool_outputs",
                                       "submit_tool_outputs": {"tool_calls": turn.tool_calls()}}
                transition_run(run, "requires_action", now)
                outbox.run(run)
        else:
            assert rows.message_step is not None
            rows.message_step.usage = step_usage
            # Cut by the run's max_completion_tokens or by the backend's default cap alike.
            truncated = turn.finish == "length"
            await end_run(session, run, "incomplete" if truncated else "completed", now, outbox,
                          incomplete_reason="max_completion_tokens" if truncated else None,
                          open_rows=rows.still_open())
        session.add_all(rows.all)
        await session.commit()
    turn.written, turn.known = True, run
    await outbox.publish()
    return serve


async def record_tools(
    sessionmaker: async_sessionmaker[AsyncSession], turn: Turn, entries: list[dict[str, Any]],
) -> bool:
    """The server tools' outputs into their step: completed, or left open with the run in
    requires_action when the same answer also called functions."""
    outbox = Outbox(turn.bus)
    async with sessionmaker() as session:
        if (run := await _driven(session, turn.run_id)) is None or turn.tool_step is None:
            return False
        step = await session.scalar(select(RunStepRow).where(
            RunStepRow.id == turn.tool_step.id))
        assert step is not None
        done = {entry["id"]: entry for entry in entries}
        step.step_details = {"type": "tool_calls", "tool_calls": [
            done.get(call["id"], call) for call in step.step_details["tool_calls"]]}
        now = int(time.time())
        functions = turn.tool_calls()
        if run.status == "cancelling":
            await end_run(session, run, "cancelled", now, outbox)
        elif functions:
            run.required_action = {"type": "submit_tool_outputs",
                                   "submit_tool_outputs": {"tool_calls": functions}}
            transition_run(run, "requires_action", now)
            outbox.run(run)
        else:
            _show_outputs(outbox, step)
            transition_step(step, "completed", now)
            outbox.step(step, run.expires_at, include=run.include)
        await session.commit()
    await outbox.publish()
    return run.status == "in_progress"


async def end(
    sessionmaker: async_sessionmaker[AsyncSession],
    turn: Turn,
    status: RunStatus,
    last_error: LastError | None,
    *,
    fault: bool = False,
) -> None:
    """The turn stopped early: what was streamed is kept, marked incomplete with the run. A
    turn cancelled while nobody cancelled its run was stopped by its process stopping: the
    run is left as it is, for the executor to hand it back."""
    if turn.bus is not None:
        await turn.bus.refresh(turn.run_id)  # a watcher may have come since the turn began
    outbox = Outbox(turn.bus)
    if fault:
        outbox.error(turn.run_id)
    async with sessionmaker() as session:
        if (run := await _driven(session, turn.run_id)) is None:
            return
        if status == "cancelled" and run.status != "cancelling":
            return
        await _stop(session, run, turn, status, int(time.time()), outbox, last_error)
        await session.commit()
    await outbox.publish()


async def _stop(
    session: AsyncSession, run: RunRow, turn: Turn, status: RunStatus, now: int, outbox: Outbox,
    last_error: LastError | None = None,
) -> None:
    """End `run` early with what `turn` streamed so far, marked incomplete with it. Once the
    turn's rows are written (its server tools were running), `end_run` finds them itself."""
    if turn.written:
        await end_run(session, run, status, now, outbox, last_error=last_error)
        return
    rows = turn.rows(now, outbox, answered=False)
    session.add_all(rows.all)
    await end_run(session, run, status, now, outbox, last_error=last_error,
                  open_rows=rows.still_open())


async def _driven(
    session: AsyncSession, run_id: str, known: RunRow | None = None
) -> RunRow | None:
    """The run if this turn may still finish it: in progress, or being cancelled."""
    run = await current(session, run_id, known)
    return run if run is not None and run.status in ("in_progress", "cancelling") else None


def _show_outputs(outbox: Outbox, step: RunStepRow) -> None:
    """The calls' outputs as step deltas, before the step's completion shows them all."""
    for slot, entry in enumerate(step.step_details["tool_calls"]):
        for part in tool_for(entry["type"]).output_deltas(slot, entry):
            outbox.tool_call_delta(step, part)


def _add_usage(run: RunRow, usage: dict[str, int]) -> None:
    total = dict(run.usage or NO_USAGE)
    run.usage = {key: total.get(key, 0) + value for key, value in usage.items()}
