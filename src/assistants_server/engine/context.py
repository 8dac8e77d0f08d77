"""What the model sees for one turn of a run: instructions, the thread's messages that fit,
this run's tool rounds, and the tools, as a Chat Completions request.

Truncation follows the run's `truncation_strategy`: `last_messages` keeps the newest N, `auto`
keeps the newest messages that fit the prompt budget: the model's context window (or
`max_prompt_tokens` when set) less room for the reply, the tools' definitions, and a margin
for the model's own tokenizer, which may count more than cl100k does (Qwen and SmolLM count
about 8% more English, 40% more Chinese). The thread is not tokenized: each message's cost is
stored with it when it is written, and engine/history.py reads the newest messages' costs
until the budget is spent or N are kept, then the content of exactly those, so a long thread
costs no more than what is sent.

Images reach the model as `image_url` parts: an `image_file` as a data URL read from the blob
store when the model sees images, else a line of text saying an image was there.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.backends.chat import ChatRequest, ModelProfile
from assistants_server.backends.openai_compat import IMAGE_PLACEHOLDER
from assistants_server.db.models import FileRow, RunRow, RunStepRow
from assistants_server.engine.history import thread_history
from assistants_server.files.blobs import BlobStore
from assistants_server.tokens import REPLY_PRIMING, count_message, count_text
from assistants_server.tools.base import Found
from assistants_server.tools.registry import is_registered, server_types, tool_for

# Of the window: kept free for the model's own tokenizer counting more than cl100k.
TOKENIZER_MARGIN = 0.10
# Kept for the reply when neither the run nor the backend caps it: an eighth of the window,
# within these bounds.
REPLY_RESERVE = (256, 4096)


@dataclass(frozen=True)
class Context:
    request: ChatRequest
    prompt_tokens: int
    fits: bool  # False when not even the newest message fits the budget
    # What this run's finished tool calls left for the answer (search markers, saved files,
    # figures of the last round).
    found: Found = field(default_factory=Found)
    history: tuple[int, int] = (0, 0)  # where the thread's messages are in request.messages

    def shorter(self) -> ChatRequest | None:
        """The request with the older half of the thread's messages left out (a backend
        refused the prompt as too long), or None when only one is left."""
        start, end = self.history
        if end - start < 2:
            return None
        messages = self.request.messages
        keep = start + (end - start) // 2
        return self.request.replace(messages=messages[:start] + messages[keep:])


async def build_context(
    session: AsyncSession, run: RunRow, profile: ModelProfile, completion_used: int,
    blobs: BlobStore | None = None,
) -> Context:
    system = [{"role": "system", "content": run.instructions}] if run.instructions else []
    rounds, found = await _tool_rounds(session, run)
    tools = await _tools(session, run)
    fixed = sum(count_message(m) for m in system + rounds) + REPLY_PRIMING
    if tools:
        fixed += count_text(json.dumps(tools))
    limit = run.truncation_strategy.get("last_messages")
    reply, max_tokens = _reply_room(run, profile, completion_used)
    budget = profile.context_window - reply - int(profile.context_window * TOKENIZER_MARGIN)
    if run.max_prompt_tokens is not None:
        budget = min(budget, run.max_prompt_tokens)
    history, used, fits = await thread_history(session, run.thread_id, budget - fixed, limit)
    await _show_images(session, history, blobs if profile.vision else None)
    request = ChatRequest(
        model=run.model, messages=system + history + rounds, tools=tools,
        tool_choice=_tool_choice(run, first=not rounds),
        parallel_tool_calls=run.parallel_tool_calls,
        temperature=run.temperature, top_p=run.top_p, max_completion_tokens=max_tokens,
        reasoning_effort=run.reasoning_effort,
        response_format=_response_format(run.response_format),
    )
    return Context(request=request, prompt_tokens=fixed + used, fits=fits,
                   history=(len(system), len(system) + len(history)), found=found)


def _reply_room(
    run: RunRow, profile: ModelProfile, completion_used: int
) -> tuple[int, int | None]:
    """The tokens kept for the answer, and the limit sent for it: what is left of the run's
    max_completion_tokens (at most half the window), else the backend's cap (at most a
    quarter): a prompt and its answer must fit the window together, or the backend refuses
    both."""
    window = profile.context_window
    if run.max_completion_tokens is not None:
        limit = max(1, run.max_completion_tokens - completion_used)
        return min(limit, window // 2), min(limit, window // 2)
    if profile.max_completion_tokens is None:
        low, high = REPLY_RESERVE
        return max(low, min(high, window // 8)), None
    # The backend's own cap: a quarter of the window at most, the rest for the thread.
    limit = min(profile.max_completion_tokens, window // 4)
    return limit, limit


async def _show_images(
    session: AsyncSession, history: list[dict[str, Any]], blobs: BlobStore | None
) -> None:
    """`image_file` parts as the model takes them: data URLs read from the blob store for a
    model that sees images (`blobs` given), else a line saying an image was there."""
    for message in history:
        content = message["content"]
        if not isinstance(content, list):
            continue
        for index, part in enumerate(content):
            if part["type"] != "image_file":
                continue
            url = await _data_url(session, blobs, part["file_id"]) if blobs else None
            content[index] = ({"type": "image_url", "image_url": {"url": url, **part["extra"]}}
                              if url else {"type": "text", "text": IMAGE_PLACEHOLDER})
        if all(part["type"] == "text" for part in content):
            message["content"] = "\n".join(part["text"] for part in content)


async def _data_url(session: AsyncSession, blobs: BlobStore, file_id: str) -> str | None:
    row = await session.scalar(select(FileRow).where(FileRow.id == file_id))
    if row is None:
        return None  # deleted since: the model is told an image was there
    try:
        data = b"".join([chunk async for chunk in await blobs.open(file_id)])
    except FileNotFoundError:
        return None
    kind = mimetypes.guess_type(row.filename)[0] or "image/png"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


async def _tool_rounds(
    session: AsyncSession, run: RunRow
) -> tuple[list[dict[str, Any]], Found]:
    """This run's finished tool rounds: the model's calls and their outputs (the client's for
    functions, ours for server tools), and what the calls left for the answer."""
    found = Found()
    if not run.tools or run.usage is None:
        # No tools, or the run's first turn (each turn's commit adds its usage): no rounds,
        # and no query on every plain turn.
        return [], found
    steps = await session.scalars(
        select(RunStepRow).where(RunStepRow.run_id == run.id, RunStepRow.status == "completed")
        .order_by(RunStepRow.created_at, RunStepRow.pk))
    messages: list[dict[str, Any]] = []
    for step in steps:
        if step.type != "tool_calls":
            found.images = []  # figures before a message were shown in it
            continue
        entries = step.step_details["tool_calls"]
        calls = [tool_for(entry["type"]).replay(entry) for entry in entries]
        # "" rather than null: llama-cpp-python's server refuses a null content (HTTP 500).
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]})
        messages += [{"role": "tool", "tool_call_id": c["id"], "content": c["output"]}
                     for c in calls]
        for entry in entries:
            tool_for(entry["type"]).remember(entry, found)
    return messages, found


async def _tools(session: AsyncSession, run: RunRow) -> list[dict[str, Any]]:
    """The tools as the backend is offered them: functions as given, server tools as the
    functions that stand for them (a type this server does not know is left out)."""
    return [await tool_for(tool["type"]).offer(tool, session, run)
            for tool in run.tools if is_registered(tool["type"])]


def _tool_choice(run: RunRow, first: bool = True) -> Any:
    """The run's `tool_choice`; one that forces a tool forces the first call only, so that the
    model answers once the tool has run."""
    if not any(is_registered(tool["type"]) for tool in run.tools):  # no tool offered
        return None
    choice = run.tool_choice
    if not first and (choice == "required" or isinstance(choice, dict)):
        return "auto"
    if isinstance(choice, dict) and choice.get("type") in server_types():
        return {"type": "function", "function": {"name": choice["type"]}}
    if isinstance(choice, dict) and choice.get("type") != "function":
        return "auto"  # a tool this server does not offer the model
    return choice


def _response_format(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict) and value.get("type") in ("json_object", "json_schema"):
        return value
    return None
