"""Reading a Chat Completions answer: the streamed `data:` lines of `chat.completion.chunk`s, a
whole `chat.completion`, and an error response, as `ChatEvent`s and `BackendError`s whose
message says what the backend said.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from assistants_server.backends.chat import (
    BackendError,
    ChatEvent,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)

# How backends word "the prompt is longer than my window" (OpenAI, vLLM, llama.cpp, Ollama).
CONTEXT_LENGTH_HINTS = ("context length", "context_length", "context window", "maximum context",
                        "exceeds the available context", "too many tokens", "n_ctx",
                        "prompt is too long", "exceed_context_size")


def is_context_length(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in CONTEXT_LENGTH_HINTS)


async def status_error(response: httpx.Response, backend: str, model: str) -> BackendError:
    """What a non-200 answer means for the run, in the backend's own words."""
    text = (await response.aread()).decode(errors="replace")
    detail = _error_message(text) or text[:500] or "(empty body)"
    said = (f"The model backend '{backend}' answered HTTP {response.status_code} for model "
            f"'{model}': {detail}")
    status = response.status_code
    if status == 429:
        return BackendError("rate_limit_exceeded", said, fallback=True, status=status)
    if status >= 500 or status in (408, 409):
        return BackendError("server_error", said, fallback=status >= 500, status=status,
                            context_length=is_context_length(detail))
    return BackendError("invalid_prompt", said, context_length=is_context_length(detail),
                        status=status)


def _error_message(text: str) -> str | None:
    try:
        error = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body's lines, split on bytes: a chunk per token makes text decoding and line
    splitting the largest cost of relaying, and every line we need is ASCII-framed."""
    pending = b""
    async for raw in chunks:
        lines = (pending + raw).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")


async def stream_events(
    chunks: AsyncIterator[bytes], backend: str, thinking: Callable[[], None] | None = None,
) -> AsyncIterator[ChatEvent]:
    """Parse the SSE body: `data: {chunk}` lines until `data: [DONE]`. An answer must end with
    a `finish_reason` and `[DONE]`: one without was cut short, whatever the backend's reason
    (some interrupt a request when the next arrives), and is never taken as complete.
    `thinking` is called for a chunk of reasoning (`reasoning_content`), which is not relayed
    but shows the model at work."""
    done = finished = False
    async for line in _lines(chunks):
        # After [DONE], read the body to its end so httpx can pool the connection again.
        if done or not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise BackendError("server_error", f"The model backend '{backend}' sent a stream "
                               f"chunk that is not JSON: "
                               f"{data[:200].decode(errors='replace')!r}") from exc
        if isinstance(chunk, dict) and "error" in chunk:
            message = _error_message(json.dumps(chunk)) or str(chunk["error"])
            raise BackendError("server_error", f"The model backend '{backend}' failed "
                               f"mid-answer: {message}", context_length=is_context_length(message),
                               cut=True)
        # A cheap look at the bytes first: this runs for every chunk of every answer.
        if thinking is not None and b'"reasoning' in data and _reasons(chunk):
            thinking()
        for event in chunk_events(chunk, backend):
            finished = finished or isinstance(event, Finish)
            yield event
    if not done:
        raise BackendError("server_error", f"The model backend '{backend}' closed the stream "
                           "before [DONE]: the answer was cut short.", cut=True)
    if not finished:
        raise BackendError("server_error", f"The model backend '{backend}' ended its answer "
                           "without a finish_reason: it was cut short (a backend that serves "
                           "one request at a time may have interrupted it for another).")


def _reasons(chunk: Any) -> bool:
    if not isinstance(chunk, dict):
        return False
    return any((choice.get("delta") or {}).get("reasoning_content")
               or (choice.get("delta") or {}).get("reasoning")
               for choice in chunk.get("choices") or [] if isinstance(choice, dict))


def chunk_events(chunk: Any, backend: str) -> list[ChatEvent]:
    if not isinstance(chunk, dict):
        raise BackendError("server_error",
                           f"The model backend '{backend}' sent a malformed chunk: {chunk!r}")
    events: list[ChatEvent] = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            events.append(TextDelta(delta["content"]))
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            events.append(ToolCallDelta(
                index=int(call.get("index", 0)), id=call.get("id"), name=function.get("name"),
                arguments=function.get("arguments") or "",
            ))
        if choice.get("finish_reason"):
            events.append(Finish(choice["finish_reason"]))
    usage = chunk.get("usage")
    if usage:
        events.append(Usage(int(usage.get("prompt_tokens") or 0),
                            int(usage.get("completion_tokens") or 0)))
    return events


def completion_events(data: bytes, backend: str) -> list[ChatEvent]:
    """A whole (non-streamed) `chat.completion` as the events its stream would have had."""
    try:
        completion = json.loads(data)
        choice = completion["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackendError("server_error", f"The model backend '{backend}' answered something "
                           f"that is not a chat completion: {data[:200]!r}") from exc
    events: list[ChatEvent] = []
    if message.get("content"):
        events.append(TextDelta(message["content"]))
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments or {})
        events.append(ToolCallDelta(index=index, id=call.get("id"), name=function.get("name"),
                                    arguments=arguments))
    reason = choice.get("finish_reason") or ("tool_calls" if message.get("tool_calls")
                                             else "stop")
    events.append(Finish(reason))
    usage = completion.get("usage")
    if usage:
        events.append(Usage(int(usage.get("prompt_tokens") or 0),
                            int(usage.get("completion_tokens") or 0)))
    return events
