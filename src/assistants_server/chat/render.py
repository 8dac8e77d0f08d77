"""A Chat Completions answer built from the engine's events, for backends whose tool calls
this server parses itself: the client sees `tool_calls` exactly as a native backend sends them,
streamed as `chat.completion.chunk`s or whole as a `chat.completion`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse

from assistants_server.backends.chat import (
    BackendError,
    ChatEvent,
    ChatRequest,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistants_server.backends.router import ModelRouter
from assistants_server.kit.errors import (
    APIError,
    BackendUnavailableError,
    InvalidRequestError,
    error_body,
)
from assistants_server.kit.ids import new_id


def request_of(body: dict[str, Any]) -> ChatRequest:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return ChatRequest(
        model=body["model"], messages=body["messages"], tools=body.get("tools") or [],
        tool_choice=body.get("tool_choice"), parallel_tool_calls=body.get("parallel_tool_calls"),
        temperature=body.get("temperature"), top_p=body.get("top_p"),
        max_completion_tokens=limit, reasoning_effort=body.get("reasoning_effort"),
        response_format=body.get("response_format"))


class RateLimitError(APIError):
    status_code = 429
    error_type = "requests"


def api_error(exc: BackendError) -> APIError:
    """The backend's refusal as the client's error: its 4xx as a 400 in its own words, a
    rate limit as 429, anything else as 502."""
    if exc.status == 429:
        return RateLimitError(exc.message, code="rate_limit_exceeded")
    if exc.status is not None and 400 <= exc.status < 500:
        return InvalidRequestError(exc.message, code="context_length_exceeded"
                                   if exc.context_length else None)
    return BackendUnavailableError(exc.message, code="backend_error")


async def tagged_completion(models: ModelRouter, body: dict[str, Any]) -> Response:
    """The answer of a route whose backend's tool calls this server parses; an error before
    its first event is the response's status, as for a relayed answer."""
    events = models.stream_chat(request_of(body))
    frame = _Frame(body["model"])
    try:
        first = await anext(events, None)
        if not body.get("stream"):
            rest = [event async for event in events]
            return JSONResponse(frame.completion([first, *rest] if first else rest))
    except BackendError as exc:
        raise api_error(exc) from None
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return StreamingResponse(_chunks(first, events, frame, usage),
                             media_type="text/event-stream")


class _Frame:
    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = new_id("chatcmpl-"), int(time.time()), model

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                   "model": self.model, "choices": [
                       {"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload)}\n\n".encode()

    def usage(self, usage: Usage) -> bytes:
        payload = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                   "model": self.model, "choices": [], "usage": _usage(usage)}
        return f"data: {json.dumps(payload)}\n\n".encode()

    def completion(self, events: list[ChatEvent]) -> dict[str, Any]:
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        calls = [{"id": e.id, "type": "function",
                  "function": {"name": e.name, "arguments": e.arguments}}
                 for e in events if isinstance(e, ToolCallDelta)]
        finish = next((e.reason for e in events if isinstance(e, Finish)), "stop")
        usage = next((e for e in events if isinstance(e, Usage)), Usage(0, 0))
        message: dict[str, Any] = {"role": "assistant", "content": text or None,
                                   "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "choices": [{"index": 0, "message": message,
                                                  "finish_reason": finish, "logprobs": None}],
                "usage": _usage(usage)}


async def _chunks(
    first: ChatEvent | None, events: AsyncIterator[ChatEvent], frame: _Frame, usage: bool,
) -> AsyncIterator[bytes]:
    """The events as `chat.completion.chunk`s; the usage chunk (no choices) only when the
    client asked for it with stream_options.include_usage, as OpenAI does."""
    yield frame.chunk({"role": "assistant", "content": ""})
    try:
        async for event in _prepend(first, events):
            if isinstance(event, TextDelta):
                yield frame.chunk({"content": event.text})
            elif isinstance(event, ToolCallDelta):
                yield frame.chunk({"tool_calls": [{
                    "index": event.index, "id": event.id, "type": "function",
                    "function": {"name": event.name, "arguments": event.arguments}}]})
            elif isinstance(event, Finish):
                yield frame.chunk({}, event.reason)
            elif usage:
                yield frame.usage(event)
    except BackendError as exc:
        yield error_chunk(exc)
        return
    yield b"data: [DONE]\n\n"


async def _prepend(
    first: ChatEvent | None, events: AsyncIterator[ChatEvent]
) -> AsyncIterator[ChatEvent]:
    if first is not None:
        yield first
    async for event in events:
        yield event


def error_chunk(exc: BackendError) -> bytes:
    """A failure after the stream began, as OpenAI sends one: a `data:` line with the error."""
    return f"data: {json.dumps(error_body(exc.message, 'server_error'))}\n\n".encode()


def _usage(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}
