"""Drives a run: queued -> in_progress -> requires_action | a terminal status.

A turn reads the context, streams the model's answer and relays it to the run's stream as it
comes (message and step snapshots, then text and tool-call deltas), and writes the outcome in
one commit: the assistant message with its message_creation step, a tool_calls step with the
run's `required_action`, usage, and the status. Calls of server tools (file_search) are run
here once their step is written, and their outputs start the next turn. Text stays in
memory until its commit, so a process that dies mid-turn leaves nothing half-written; the
executor's sweeper then fails the run. A turn that is cancelled, fails or expires keeps what
was streamed, marked incomplete.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from assistants_server.backends.chat import (
    ASKED_FOR,
    BackendError,
    ChatBackend,
    ChatEvent,
    ModelProfile,
    Usage,
)
from assistants_server.db.models import RunRow, RunStepRow
from assistants_server.engine.context import Context, build_context
from assistants_server.engine.server_tools import ToolServices, execute_calls
from assistants_server.engine.tokens import count_text
from assistants_server.engine.turn import NO_USAGE, Turn
from assistants_server.events.bus import EventBus
from assistants_server.events.outbox import Outbox
from assistants_server.files.blobs import BlobStore
from assistants_server.runs.lifecycle import end_run, on_fresh_state
from assistants_server.runs.states import RunStatus, transition_run, transition_step

log = logging.getLogger(__name__)
T = TypeVar("T")
Profiles = Callable[[str], ModelProfile]  # what the model behind a public name can take
FAULT = {"code": "server_error", "message": "The server had an error while processing this run."}
TOO_LONG = {"code": "invalid_prompt", "message": "The newest message of the thread, with the "
            "instructions and tools, does not fit the model's context window (leaving room "
            "for the answer): shorten them, or raise the backend's context_window."}
# Server tool rounds one run may take before it is stopped (a model calling tools forever).
MAX_ROUNDS = 10


async def drive_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: ChatBackend,
    run_id: str,
    profiles: Profiles,
    bus: EventBus | None = None,
    services: ToolServices | None = None,
    known: RunRow | None = None,
) -> None:
    """Turns until the run waits for the client or ends: a turn whose tool calls the server
    runs itself (file_search) is followed by another with their outputs. `known`: the run as
    the request that queued it committed it, so that starting it needs no read."""
    # `known` serves the first attempt only: a retry (the run moved meanwhile) reads it afresh.
    ASKED_FOR.set(f"run {run_id}")  # named in the backends' log lines
    first = [known] if known is not None else []
    blobs = services.blobs if services is not None else None
    begun = await on_fresh_state(
        lambda: _begin(sessionmaker, backend, bus, run_id, profiles, blobs=blobs,
                       known=first.pop() if first else None))
    for round_ in range(1, MAX_ROUNDS + 1):
        if begun is None:
            return
        context, deadline, turn, answer = begun
        if not await _relay(sessionmaker, turn, answer, deadline):
            return
        # Shielded: a cancel arriving now finds the run `cancelling`, which _record honours;
        # it must not cut the writing of the outcome in half.
        serve = await asyncio.shield(
            on_fresh_state(partial(_record, sessionmaker, turn, context.prompt_tokens)))
        if not serve or not await _serve(sessionmaker, services or ToolServices(), turn,
                                         deadline, profiles):
            return
        if round_ == MAX_ROUNDS:
            error = {"code": "server_error", "message": f"The model called tools in more "
                     f"than {MAX_ROUNDS} rounds without answering; the run was stopped."}
            await on_fresh_state(partial(_end, sessionmaker, turn, "failed", error))
            return
        try:
            begun = await on_fresh_state(partial(
                _begin, sessionmaker, backend, bus, run_id, profiles, resume=True, blobs=blobs))
        except asyncio.CancelledError:
            await asyncio.shield(on_fresh_state(
                partial(_end, sessionmaker, turn, "cancelled", None)))
            raise


async def _relay(
    sessionmaker: async_sessionmaker[AsyncSession], turn: Turn, answer: Prefetched,
    deadline: float,
) -> bool:
    """Relay the model's answer into `turn`; False when the run ended on the way."""

    async def relay() -> bool:
        turn.prepare()  # while the model works on its first token
        async for event in answer:
            await turn.add(event)
        return True

    try:
        return await _guarded(sessionmaker, turn, deadline, relay, "relaying the answer") \
            is not None
    finally:
        answer.close()


async def _serve(
    sessionmaker: async_sessionmaker[AsyncSession], services: ToolServices, turn: Turn,
    deadline: float, profiles: Profiles,
) -> bool:
    """Run the turn's server tool calls and record their outputs; True when the model is to
    be asked again (no function call is left for the client)."""
    run = turn.known  # as the turn's outcome was just committed
    assert run is not None
    entries = await _guarded(
        sessionmaker, turn, deadline, lambda: execute_calls(
            sessionmaker, services, run, turn.server_calls(), turn.searches,
            profiles(run.model).context_window),
        "running its tools")
    if entries is None:
        return False
    return await asyncio.shield(
        on_fresh_state(lambda: _record_tools(sessionmaker, turn, entries)))


async def _guarded(
    sessionmaker: async_sessionmaker[AsyncSession], turn: Turn, deadline: float,
    work: Callable[[], Awaitable[T]], doing: str,
) -> T | None:
    """`work`, within the run's deadline; when it fails, runs out of time or is cancelled, the
    run ends the way that calls for (keeping what was streamed) and None is returned."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.time())):
            return await work()
    except BackendError as exc:
        log.warning("run %s failed while %s: %s", turn.run_id, doing, exc.message)
        error = {"code": exc.code, "message": exc.message}
        await on_fresh_state(lambda: _end(sessionmaker, turn, "failed", error))
    except TimeoutError:
        await on_fresh_state(lambda: _end(sessionmaker, turn, "expired", None))
    except asyncio.CancelledError:
        await asyncio.shield(on_fresh_state(lambda: _end(sessionmaker, turn, "cancelled", None)))
        raise
    except Exception:
        # A fault of ours: the stream gets the `error` event, the run fails.
        log.exception("run %s failed unexpectedly while %s", turn.run_id, doing)
        await on_fresh_state(lambda: _end(sessionmaker, turn, "failed", FAULT, fault=True))
    return None


async def _record_tools(
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


class Prefetched:
    """The model's answer, asked for at once: its first event is awaited in a task of its own,
    so the backend works on it while the run's `in_progress` is committed."""

    def __init__(self, stream: AsyncIterator[ChatEvent]) -> None:
        self._stream = stream
        self._first: asyncio.Task[ChatEvent] = asyncio.ensure_future(anext(stream))

    def close(self) -> None:
        """Stop asking: cancel the first read if it is still going, then close the backend's
        stream (its connection goes back to the pool). Safe to call more than once."""
        self._first.cancel()
        self._first.add_done_callback(self._close_stream)

    def _close_stream(self, first: asyncio.Task[ChatEvent]) -> None:
        if not first.cancelled():
            first.exception()  # retrieved: a failure nobody awaited is not worth a warning
        if isinstance(self._stream, AsyncGenerator):
            asyncio.ensure_future(self._stream.aclose())

    async def __aiter__(self) -> AsyncIterator[ChatEvent]:
        try:
            yield await self._first
        except StopAsyncIteration:
            return
        async for event in self._stream:
            yield event


async def _begin(
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
        run = await _current(session, run_id, known)
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
        answer = Prefetched(_ask(backend, context))
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
    turn = Turn(run, bus, context.sources, context.searches, context.paths, context.images)
    return context, float(run.expires_at or now + 600), turn, answer


async def _ask(backend: ChatBackend, context: Context) -> AsyncIterator[ChatEvent]:
    """The model's answer to `context`; asked once more with the older half of the thread
    left out when the backend refuses the prompt as longer than its window (its tokenizer
    counts more than ours)."""
    relayed = False
    try:
        async for event in backend.stream_chat(context.request):
            relayed = True
            yield event
    except BackendError as exc:
        shorter = context.shorter()
        if relayed or not exc.context_length or shorter is None:
            raise
        log.warning("the backend refused the prompt as too long (%s); asking again with "
                    "%d of %d messages", exc.message, len(shorter.messages),
                    len(context.request.messages))
        async for event in backend.stream_chat(shorter):
            yield event


async def _commit_start(session: AsyncSession, run_id: str, now: int, outbox: Outbox) -> bool:
    """Commit `in_progress`. Another writer may have touched the run since it was read (a
    lease renewal, a cancel): then the start is applied again to a fresh read, keeping the
    answer already asked for; False when the run is no longer waiting to start."""
    for _ in range(4):
        try:
            await session.commit()
            return True
        except StaleDataError:
            await session.rollback()
            outbox.clear()
            run = await _load(session, run_id)
            if run is None or run.status != "queued":
                return False
            transition_run(run, "in_progress", now)
            outbox.run(run)
    return False


_RUN = select(RunRow).where(RunRow.id == bindparam("id"))  # built once: read every turn


async def _load(session: AsyncSession, run_id: str) -> RunRow | None:
    return await session.scalar(_RUN, {"id": run_id})


async def _current(
    session: AsyncSession, run_id: str, known: RunRow | None = None
) -> RunRow | None:
    """The run: `known` (as this process last committed it, every attribute loaded) taken into
    the session without a read, else read. If another writer moved the run since (a cancel),
    the version column fails the write, and the caller retries from a fresh read."""
    if known is not None and not inspect(known).unloaded:
        return await session.merge(known, load=False)
    return await _load(session, run_id)


async def _driven(
    session: AsyncSession, run_id: str, known: RunRow | None = None
) -> RunRow | None:
    """The run if this turn may still finish it: in progress, or being cancelled."""
    run = await _current(session, run_id, known)
    return run if run is not None and run.status in ("in_progress", "cancelling") else None


async def _end(
    sessionmaker: async_sessionmaker[AsyncSession],
    turn: Turn,
    status: RunStatus,
    last_error: dict[str, str] | None,
    *,
    fault: bool = False,
) -> None:
    """The turn stopped early: what was streamed is kept, marked incomplete with the run."""
    if turn.bus is not None:
        await turn.bus.refresh(turn.run_id)  # a watcher may have come since the turn began
    outbox = Outbox(turn.bus)
    if fault:
        outbox.error(turn.run_id)
    async with sessionmaker() as session:
        if (run := await _driven(session, turn.run_id)) is None:
            return
        await _stop(session, run, turn, status, int(time.time()), outbox, last_error)
        await session.commit()
    await outbox.publish()


async def _stop(
    session: AsyncSession, run: RunRow, turn: Turn, status: RunStatus, now: int, outbox: Outbox,
    last_error: dict[str, str] | None = None,
) -> None:
    """End `run` early with what `turn` streamed so far, marked incomplete with it. Once the
    turn's rows are written (its server tools were running), `end_run` finds them itself."""
    if status == "cancelled" and run.status == "in_progress":
        transition_run(run, "cancelling", now)
        outbox.run(run)
    if turn.written:
        await end_run(session, run, status, now, outbox, last_error=last_error)
        return
    rows = turn.rows(now, outbox, answered=False)
    session.add_all(rows.all)
    await end_run(session, run, status, now, outbox, last_error=last_error,
                  open_rows=rows.still_open())


async def _record(
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


def _show_outputs(outbox: Outbox, step: RunStepRow) -> None:
    """code_interpreter outputs as step deltas, before the step's completion shows them all."""
    for slot, call in enumerate(step.step_details["tool_calls"]):
        outputs = (call.get("code_interpreter") or {}).get("outputs")
        if call["type"] == "code_interpreter" and outputs:
            outbox.tool_call_delta(step, {
                "index": slot, "type": "code_interpreter", "code_interpreter": {
                    "outputs": [{"index": i, **output} for i, output in enumerate(outputs)]}})


def _add_usage(run: RunRow, usage: dict[str, int]) -> None:
    total = dict(run.usage or NO_USAGE)
    run.usage = {key: total.get(key, 0) + value for key, value in usage.items()}
