"""Drives one turn of a run: queued -> in_progress -> requires_action | a terminal status.

A turn reads the context, streams the model's answer, and writes the outcome in one commit:
the assistant message with its message_creation step, a tool_calls step with the run's
`required_action`, usage, and the status. Text stays in memory until that commit, so a process
that dies mid-turn leaves nothing half-written; the executor's sweeper then fails the run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.backends.chat import (
    BackendError,
    ChatBackend,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistants_server.db.models import MessageRow, RunRow, RunStepRow
from assistants_server.engine.context import Context, build_context
from assistants_server.engine.tokens import count_text
from assistants_server.ids import new_id
from assistants_server.runs.lifecycle import end_run, on_fresh_state
from assistants_server.runs.states import transition_run


@dataclass
class Answer:
    """What the model said in one turn."""

    text: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish: str | None = None
    usage: Usage | None = None

    def add(self, event: object) -> None:
        if isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or event.id or ""
            call["name"] = call["name"] or event.name or ""
            call["arguments"] += event.arguments
        elif isinstance(event, Finish):
            self.finish = event.reason
        elif isinstance(event, Usage):
            self.usage = event


async def drive_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: ChatBackend,
    run_id: str,
    context_window: int,
) -> None:
    begun = await on_fresh_state(lambda: _begin(sessionmaker, run_id, context_window))
    if begun is None:
        return
    context, deadline = begun
    answer = Answer()
    try:
        async with asyncio.timeout(max(0.0, deadline - time.time())):
            async for event in backend.stream_chat(context.request):
                answer.add(event)
    except BackendError as exc:
        error = {"code": exc.code, "message": exc.message}
        await on_fresh_state(lambda: _end(sessionmaker, run_id, "failed", error))
        return
    except TimeoutError:
        await on_fresh_state(lambda: _end(sessionmaker, run_id, "expired", None))
        return
    except asyncio.CancelledError:
        await asyncio.shield(on_fresh_state(lambda: _end(sessionmaker, run_id, "cancelled", None)))
        raise
    await on_fresh_state(lambda: _record(sessionmaker, run_id, context.prompt_tokens, answer))


async def _begin(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: str, context_window: int
) -> tuple[Context, float] | None:
    """queued -> in_progress, and the context to send; None when there is nothing to do."""
    async with sessionmaker() as session:
        run = await _load(session, run_id)
        if run is None or run.status not in ("queued", "cancelling"):
            return None
        now = int(time.time())
        if run.status == "cancelling":
            await end_run(session, run, "cancelled", now)
            await session.commit()
            return None
        transition_run(run, "in_progress", now)
        completion_used = int((run.usage or {}).get("completion_tokens", 0))
        context = await build_context(session, run, context_window, completion_used)
        if not context.fits:
            await end_run(session, run, "incomplete", now, incomplete_reason="max_prompt_tokens")
            await session.commit()
            return None
        await session.commit()
        return context, float(run.expires_at or now + 600)


async def _load(session: AsyncSession, run_id: str) -> RunRow | None:
    return await session.scalar(select(RunRow).where(RunRow.id == run_id))


async def _driven(session: AsyncSession, run_id: str) -> RunRow | None:
    """The run if this turn may still finish it: in progress, or being cancelled."""
    run = await _load(session, run_id)
    return run if run is not None and run.status in ("in_progress", "cancelling") else None


async def _end(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: str,
    status: Any,
    last_error: dict[str, str] | None,
) -> None:
    async with sessionmaker() as session:
        if (run := await _driven(session, run_id)) is None:
            return
        now = int(time.time())
        if status == "cancelled" and run.status == "in_progress":
            transition_run(run, "cancelling", now)
        await end_run(session, run, status, now, last_error=last_error)
        await session.commit()


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: str,
    prompt_estimate: int,
    answer: Answer,
) -> None:
    async with sessionmaker() as session:
        if (run := await _driven(session, run_id)) is None:
            return
        now = int(time.time())
        if run.status == "cancelling":
            await end_run(session, run, "cancelled", now)
            await session.commit()
            return
        usage = answer.usage or Usage(prompt_estimate, count_text(answer.text) + sum(
            count_text(c["arguments"]) for c in answer.calls.values()))
        step_usage = {"prompt_tokens": usage.prompt_tokens,
                      "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.total_tokens}
        _add_usage(run, step_usage)
        truncated = answer.finish == "length" and run.max_completion_tokens is not None
        if answer.text or not answer.calls:
            _add_message(session, run, answer.text, now, step_usage, finished=not truncated)
            step_usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        if answer.calls:
            _require_action(session, run, answer, now, step_usage)
        elif truncated:
            await end_run(session, run, "incomplete", now,
                          incomplete_reason="max_completion_tokens")
        else:
            await end_run(session, run, "completed", now)
        await session.commit()


def _add_usage(run: RunRow, usage: dict[str, int]) -> None:
    total = dict(run.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    run.usage = {key: total.get(key, 0) + value for key, value in usage.items()}


def _add_message(
    session: AsyncSession, run: RunRow, text: str, now: int, usage: dict[str, int],
    *, finished: bool,
) -> None:
    """The assistant's message; an unfinished one stays in_progress for `end_run` to mark
    incomplete with the run."""
    message = MessageRow(
        id=new_id("msg_"), created_at=now, thread_id=run.thread_id, role="assistant",
        content=[{"type": "text", "text": {"value": text, "annotations": []}}],
        status="completed" if finished else "in_progress",
        completed_at=now if finished else None, assistant_id=run.assistant_id, run_id=run.id,
        attachments=[], metadata_={},
    )
    session.add(message)
    session.add(_step(run, "message_creation", now, usage,
                      {"type": "message_creation",
                       "message_creation": {"message_id": message.id}}))


def _require_action(
    session: AsyncSession, run: RunRow, answer: Answer, now: int, usage: dict[str, int]
) -> None:
    calls: list[dict[str, Any]] = [{"id": call["id"] or new_id("call_"), "type": "function",
              "function": {"name": call["name"], "arguments": call["arguments"]}}
             for _, call in sorted(answer.calls.items())]
    session.add(_step(run, "tool_calls", now, usage, {"type": "tool_calls", "tool_calls": [
        {**call, "function": {**call["function"], "output": None}} for call in calls]}))
    run.required_action = {"type": "submit_tool_outputs",
                           "submit_tool_outputs": {"tool_calls": calls}}
    transition_run(run, "requires_action", now)


def _step(
    run: RunRow, kind: str, now: int, usage: dict[str, int], details: dict[str, Any]
) -> RunStepRow:
    status = "in_progress" if kind == "tool_calls" else "completed"
    return RunStepRow(
        id=new_id("step_"), created_at=now, run_id=run.id, thread_id=run.thread_id,
        assistant_id=run.assistant_id, type=kind, status=status, step_details=details,
        completed_at=now if status == "completed" else None, usage=usage, metadata_={},
    )
