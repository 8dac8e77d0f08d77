"""Drives one turn of a run: queued -> in_progress -> requires_action | a terminal status.

A turn reads the context, streams the model's answer and relays it to the run's stream as it
comes (message and step snapshots, then text and tool-call deltas), and writes the outcome in
one commit: the assistant message with its message_creation step, a tool_calls step with the
run's `required_action`, usage, and the status. Text stays in memory until that commit, so a
process that dies mid-turn leaves nothing half-written; the executor's sweeper then fails the
run. A turn that is cancelled, fails or expires keeps what was streamed, marked incomplete.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from assistants_server.backends.chat import (
    BackendError,
    ChatBackend,
    ChatEvent,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistants_server.db.models import MessageRow, RunRow, RunStepRow
from assistants_server.engine.context import Context, build_context
from assistants_server.engine.tokens import count_text
from assistants_server.events.bus import EventBus
from assistants_server.events.outbox import Outbox
from assistants_server.ids import new_id
from assistants_server.runs.lifecycle import end_run, on_fresh_state
from assistants_server.runs.states import RunStatus, transition_run

log = logging.getLogger(__name__)
FAULT = {"code": "server_error", "message": "The server had an error while processing this run."}
NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class Turn:
    """What the model says in one turn: relayed as it comes, written when the turn ends.

    The rows it builds (message, message_creation step, tool_calls step) stay out of any
    session until the turn's outcome is written; their snapshots are what the stream shows.
    """

    def __init__(self, run: RunRow, bus: EventBus | None) -> None:
        self.run_id, self.thread_id, self.assistant_id = run.id, run.thread_id, run.assistant_id
        self.expires_at = run.expires_at
        self.bus = bus
        self.text = ""
        self.calls: list[dict[str, str]] = []
        self._slots: dict[int, int] = {}  # backend tool-call index -> our dense index
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.message: MessageRow | None = None
        self.message_step: RunStepRow | None = None
        self.tool_step: RunStepRow | None = None
        self.message_closed = False  # closed mid-turn, when tool calls began
        self._message_live = False  # its created event reached the stream, so deltas may
        self._announced = False  # its created events were published mid-turn
        self._tools_live = False

    async def add(self, event: ChatEvent) -> None:
        if isinstance(event, TextDelta):
            await self._text(event.text)
        elif isinstance(event, ToolCallDelta):
            await self._tool_call(event)
        elif isinstance(event, Finish):
            self.finish = event.reason
        elif isinstance(event, Usage):
            self.usage = event

    async def _text(self, text: str) -> None:
        # Models do not write text after tool calls in one answer; if one did, the message
        # that was already completed on the stream stays as it was shown.
        if not text or self.message_closed or self.tool_step is not None:
            return
        if self.message is None:
            outbox = Outbox(self.bus)
            self._new_message(int(time.time()))
            self._announce_message(outbox)
            self._announced = True
            self._message_live = bool(outbox.events)
            await outbox.publish()
        first = not self.text
        self.text += text
        if self._message_live and self.bus is not None:
            # Formatted by hand: this runs once per token. `annotations` only in the first.
            more = ',"annotations":[]' if first else ""
            await self.bus.publish(self.run_id, [("thread.message.delta", (
                f'{{"id":"{self.message.id}","object":"thread.message.delta","delta":'  # type: ignore[union-attr]
                f'{{"content":[{{"index":0,"type":"text","text":{{"value":{encode_basestring(text)}'
                f'{more}}}}}]}}}}'))])

    async def _tool_call(self, delta: ToolCallDelta) -> None:
        outbox = Outbox(self.bus)
        now = int(time.time())
        if self.message is not None and not self.message_closed:
            self.close_message(now, outbox)
            self.message_closed = True
        if self.tool_step is None:
            self.tool_step = self._step("tool_calls", now, {"type": "tool_calls",
                                                            "tool_calls": []})
            outbox.step(self.tool_step, self.expires_at, "thread.run.step.created")
            outbox.step(self.tool_step, self.expires_at, "thread.run.step.in_progress")
            self._tools_live = bool(outbox.events)
        slot = self._slots.get(delta.index)
        if slot is None:
            slot = self._slots[delta.index] = len(self.calls)
            call = {"id": delta.id or new_id("call_"), "name": delta.name or "",
                    "arguments": delta.arguments}
            self.calls.append(call)
            part: dict[str, Any] = {"index": slot, "id": call["id"], "type": "function",
                                    "function": {"name": call["name"],
                                                 "arguments": delta.arguments, "output": None}}
        else:
            # Only the new fragment: the SDK concatenates strings, so nothing is re-sent.
            call = self.calls[slot]
            function: dict[str, str] = {"arguments": delta.arguments}
            if delta.name and not call["name"]:
                call["name"] = function["name"] = delta.name
            call["arguments"] += delta.arguments
            part = {"index": slot, "type": "function", "function": function}
        if self._tools_live:
            outbox.add(self.run_id, "thread.run.step.delta", json.dumps({
                "id": self.tool_step.id, "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [part]}}},
                separators=(",", ":")))
        await outbox.publish()

    def _new_message(self, now: int) -> None:
        self.message = MessageRow(
            id=new_id("msg_"), created_at=now, thread_id=self.thread_id, role="assistant",
            content=[], status="in_progress", assistant_id=self.assistant_id,
            run_id=self.run_id, attachments=[], metadata_={})
        self.message_step = self._step("message_creation", now, {
            "type": "message_creation", "message_creation": {"message_id": self.message.id}})

    def _announce_message(self, outbox: Outbox) -> None:
        """The step's and the message's created and in_progress events (still empty)."""
        assert self.message is not None and self.message_step is not None
        outbox.step(self.message_step, self.expires_at, "thread.run.step.created")
        outbox.step(self.message_step, self.expires_at, "thread.run.step.in_progress")
        outbox.message(self.message, "thread.message.created")
        outbox.message(self.message, "thread.message.in_progress")

    def _step(self, kind: str, now: int, details: dict[str, Any]) -> RunStepRow:
        return RunStepRow(
            id=new_id("step_"), created_at=now, run_id=self.run_id, thread_id=self.thread_id,
            assistant_id=self.assistant_id, type=kind, status="in_progress",
            step_details=details, usage=None, metadata_={})

    def close_message(self, now: int, outbox: Outbox) -> None:
        """The message and its step completed (the turn goes on with tool calls)."""
        assert self.message is not None and self.message_step is not None
        self.message.content = self._content()
        self.message.status, self.message.completed_at = "completed", now
        self.message_step.status, self.message_step.completed_at = "completed", now
        self.message_step.usage = dict(NO_USAGE)
        outbox.message(self.message)
        outbox.step(self.message_step, self.expires_at)

    def _content(self) -> list[dict[str, Any]]:
        return [{"type": "text", "text": {"value": self.text, "annotations": []}}]

    def rows(self, now: int, outbox: Outbox, *, answered: bool) -> list[Any]:
        """The turn's rows as they stand, open ones in_progress for `end_run` to close.
        `answered`: the model finished, so even an empty answer is a message."""
        if self.message is None and answered and not self.calls:
            self._new_message(now)  # an empty answer: announced below, in this attempt's events
        rows: list[Any] = []
        if self.message is not None and self.message_step is not None:
            if not self.message_closed:
                self.message.status, self.message.completed_at = "in_progress", None
                self.message_step.status, self.message_step.completed_at = "in_progress", None
                if not self._announced:  # each attempt's events go out only if it commits
                    self.message.content = []
                    self._announce_message(outbox)
                self.message.content = self._content()
            rows += [self.message, self.message_step]
        if self.tool_step is not None:
            self.tool_step.step_details = {"type": "tool_calls", "tool_calls": [
                {**call, "function": {**call["function"], "output": None}}
                for call in self.tool_calls()]}
            self.tool_step.status = "in_progress"
            rows.append(self.tool_step)
        for row in rows:
            row.pk = None  # an attempt rolled back may have numbered it; number it afresh
        return rows

    @staticmethod
    def still_open(rows: list[Any]) -> tuple[list[MessageRow], list[RunStepRow]]:
        """What `end_run` closes, among the rows of `rows()`."""
        return ([r for r in rows if isinstance(r, MessageRow) and r.status == "in_progress"],
                [r for r in rows if isinstance(r, RunStepRow) and r.status == "in_progress"])

    def tool_calls(self) -> list[dict[str, Any]]:
        return [{"id": call["id"], "type": "function",
                 "function": {"name": call["name"], "arguments": call["arguments"]}}
                for call in self.calls]


async def drive_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: ChatBackend,
    run_id: str,
    context_window: int,
    bus: EventBus | None = None,
) -> None:
    begun = await on_fresh_state(
        lambda: _begin(sessionmaker, backend, bus, run_id, context_window))
    if begun is None:
        return
    context, deadline, turn, answer = begun
    try:
        async with asyncio.timeout(max(0.0, deadline - time.time())):
            async for event in answer:
                await turn.add(event)
    except BackendError as exc:
        error = {"code": exc.code, "message": exc.message}
        await on_fresh_state(lambda: _end(sessionmaker, turn, "failed", error))
        return
    except TimeoutError:
        await on_fresh_state(lambda: _end(sessionmaker, turn, "expired", None))
        return
    except asyncio.CancelledError:
        await asyncio.shield(on_fresh_state(lambda: _end(sessionmaker, turn, "cancelled", None)))
        raise
    except Exception:
        # A fault of ours mid-answer: the stream gets the `error` event, the run fails.
        log.exception("run %s failed unexpectedly while relaying the answer", run_id)
        await on_fresh_state(lambda: _end(sessionmaker, turn, "failed", FAULT, fault=True))
        return
    finally:
        answer.close()
    # Shielded: a cancel arriving now finds the run `cancelling`, which _record honours; it
    # must not cut the writing of the outcome in half.
    await asyncio.shield(
        on_fresh_state(lambda: _record(sessionmaker, turn, context.prompt_tokens)))


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
    bus: EventBus | None, run_id: str, context_window: int,
) -> tuple[Context, float, Turn, Prefetched] | None:
    """queued -> in_progress, with the model's answer already requested; None when there is
    nothing to do."""
    if bus is not None:
        await bus.refresh(run_id)  # streamed from another process?
    outbox = Outbox(bus)
    async with sessionmaker() as session:
        run = await _load(session, run_id)
        if run is None or run.status not in ("queued", "cancelling"):
            return None
        now = int(time.time())
        if run.status == "cancelling":
            await end_run(session, run, "cancelled", now, outbox)
            await session.commit()
            await outbox.publish()
            return None
        transition_run(run, "in_progress", now)
        outbox.run(run)
        completion_used = int((run.usage or {}).get("completion_tokens", 0))
        context = await build_context(session, run, context_window, completion_used)
        if not context.fits:
            await end_run(session, run, "incomplete", now, outbox,
                          incomplete_reason="max_prompt_tokens")
            await session.commit()
            await outbox.publish()
            return None
        answer = Prefetched(backend.stream_chat(context.request))
        try:
            if not await _commit_start(session, run_id, now, outbox):
                answer.close()
                return None
        except BaseException:
            answer.close()
            raise
    await outbox.publish()
    return context, float(run.expires_at or now + 600), Turn(run, bus), answer


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


async def _load(session: AsyncSession, run_id: str) -> RunRow | None:
    return await session.scalar(select(RunRow).where(RunRow.id == run_id))


async def _driven(session: AsyncSession, run_id: str) -> RunRow | None:
    """The run if this turn may still finish it: in progress, or being cancelled."""
    run = await _load(session, run_id)
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
    """End `run` early with what `turn` streamed so far, marked incomplete with it."""
    if status == "cancelled" and run.status == "in_progress":
        transition_run(run, "cancelling", now)
        outbox.run(run)
    rows = turn.rows(now, outbox, answered=False)
    session.add_all(rows)
    await end_run(session, run, status, now, outbox, last_error=last_error,
                  open_rows=turn.still_open(rows))


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    turn: Turn,
    prompt_estimate: int,
) -> None:
    if turn.bus is not None:
        await turn.bus.refresh(turn.run_id)  # a watcher may have come since the turn began
    outbox = Outbox(turn.bus)
    async with sessionmaker() as session:
        if (run := await _driven(session, turn.run_id)) is None:
            return
        now = int(time.time())
        if run.status == "cancelling":
            await _stop(session, run, turn, "cancelled", now, outbox)
            await session.commit()
            await outbox.publish()
            return
        usage = turn.usage or Usage(prompt_estimate, count_text(turn.text) + sum(
            count_text(c["arguments"]) for c in turn.calls))
        step_usage = {"prompt_tokens": usage.prompt_tokens,
                      "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.total_tokens}
        _add_usage(run, step_usage)
        rows = turn.rows(now, outbox, answered=True)
        session.add_all(rows)
        if turn.calls:
            assert turn.tool_step is not None
            turn.tool_step.usage = step_usage
            if turn.message is not None and not turn.message_closed:
                turn.close_message(now, outbox)
            run.required_action = {"type": "submit_tool_outputs",
                                   "submit_tool_outputs": {"tool_calls": turn.tool_calls()}}
            transition_run(run, "requires_action", now)
            outbox.run(run)
        else:
            assert turn.message_step is not None
            turn.message_step.usage = step_usage
            truncated = turn.finish == "length" and run.max_completion_tokens is not None
            await end_run(session, run, "incomplete" if truncated else "completed", now, outbox,
                          incomplete_reason="max_completion_tokens" if truncated else None,
                          open_rows=turn.still_open(rows))
        await session.commit()
    await outbox.publish()


def _add_usage(run: RunRow, usage: dict[str, int]) -> None:
    total = dict(run.usage or NO_USAGE)
    run.usage = {key: total.get(key, 0) + value for key, value in usage.items()}
