"""What the model sees for one turn of a run: instructions, the thread's messages that fit,
this run's tool rounds, and the tools, as a Chat Completions request.

Truncation follows the run's `truncation_strategy`: `last_messages` keeps the newest N, `auto`
keeps the newest messages that fit the prompt budget (the model's context window, or
`max_prompt_tokens` when set). Messages are read newest first in small batches and reading
stops once the budget is spent, so a long thread costs no more than what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.backends.chat import ChatRequest
from assistants_server.db.models import MessageRow, RunRow, RunStepRow
from assistants_server.engine.tokens import REPLY_PRIMING, count_message

BATCH = 50


@dataclass(frozen=True)
class Context:
    request: ChatRequest
    prompt_tokens: int
    fits: bool  # False when not even the newest message fits the budget


async def build_context(
    session: AsyncSession, run: RunRow, context_window: int, completion_used: int
) -> Context:
    system = [{"role": "system", "content": run.instructions}] if run.instructions else []
    rounds = await _tool_rounds(session, run)
    fixed = sum(count_message(m) for m in system + rounds) + REPLY_PRIMING
    budget = context_window - (run.max_completion_tokens or 0)
    if run.max_prompt_tokens is not None:
        budget = min(budget, run.max_prompt_tokens)
    limit = run.truncation_strategy.get("last_messages")
    history, used, fits = await _history(session, run.thread_id, budget - fixed, limit)
    max_tokens = None
    if run.max_completion_tokens is not None:
        max_tokens = max(1, run.max_completion_tokens - completion_used)
    request = ChatRequest(
        model=run.model, messages=system + history + rounds, tools=_tools(run),
        tool_choice=_tool_choice(run), parallel_tool_calls=run.parallel_tool_calls,
        temperature=run.temperature, top_p=run.top_p, max_tokens=max_tokens,
        response_format=_response_format(run.response_format),
    )
    return Context(request=request, prompt_tokens=fixed + used, fits=fits)


async def _history(
    session: AsyncSession, thread_id: str, budget: int, limit: int | None
) -> tuple[list[dict[str, Any]], int, bool]:
    """Newest-first reading until the budget or `limit` is reached; returned oldest first."""
    kept: list[dict[str, Any]] = []
    used = 0
    cursor: tuple[int, int] | None = None
    while limit is None or len(kept) < limit:
        stmt = select(MessageRow).where(MessageRow.thread_id == thread_id)
        if cursor is not None:
            stmt = stmt.where((MessageRow.created_at < cursor[0]) | (
                (MessageRow.created_at == cursor[0]) & (MessageRow.pk < cursor[1])))
        stmt = stmt.order_by(MessageRow.created_at.desc(), MessageRow.pk.desc()).limit(BATCH)
        rows = list(await session.scalars(stmt))
        for row in rows:
            message = chat_message(row)
            if message is None:
                continue
            cost = count_message(message)
            if used + cost > budget or (limit is not None and len(kept) >= limit):
                return kept[::-1], used, bool(kept)
            kept.append(message)
            used += cost
        if len(rows) < BATCH:
            break
        cursor = (rows[-1].created_at, rows[-1].pk)
    return kept[::-1], used, True


def chat_message(row: MessageRow) -> dict[str, Any] | None:
    """A thread message as a chat message; image parts pass through to vision models."""
    parts: list[dict[str, Any]] = []
    for part in row.content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif part["type"] == "image_url" and row.role == "user":
            parts.append({"type": "image_url", "image_url": part["image_url"]})
    if not parts:
        return None
    if all(p["type"] == "text" for p in parts):
        return {"role": row.role, "content": "".join(p["text"] for p in parts)}
    return {"role": row.role, "content": parts}


async def _tool_rounds(session: AsyncSession, run: RunRow) -> list[dict[str, Any]]:
    """This run's finished function-call rounds: the model's calls and the client's outputs."""
    if not _tools(run):
        return []  # no function tools, no rounds: spare the query on every plain turn
    steps = await session.scalars(
        select(RunStepRow).where(RunStepRow.run_id == run.id, RunStepRow.type == "tool_calls",
                                 RunStepRow.status == "completed")
        .order_by(RunStepRow.created_at, RunStepRow.pk))
    messages: list[dict[str, Any]] = []
    for step in steps:
        calls = [c for c in step.step_details["tool_calls"] if c["type"] == "function"]
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {
                "name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
            for c in calls]})
        messages += [{"role": "tool", "tool_call_id": c["id"],
                      "content": c["function"]["output"] or ""} for c in calls]
    return messages


def _tools(run: RunRow) -> list[dict[str, Any]]:
    return [{"type": "function", "function": tool["function"]}
            for tool in run.tools if tool["type"] == "function"]


def _tool_choice(run: RunRow) -> Any:
    if not _tools(run):
        return None
    choice = run.tool_choice
    if isinstance(choice, dict) and choice.get("type") != "function":
        return "auto"  # file_search / code_interpreter choices are not backend tools
    return choice


def _response_format(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict) and value.get("type") in ("json_object", "json_schema"):
        return value
    return None
