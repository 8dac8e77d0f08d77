"""`ChatBackend` over any OpenAI-compatible `/chat/completions` endpoint, streaming always.

One pooled httpx client; retries with exponential backoff on 429, 5xx and connection
failures, honouring `retry-after-ms` / `retry-after`, but only before the first chunk arrived:
once tokens have been relayed a retry would repeat them, so a mid-stream failure is final.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx

from assistants_server.backends.chat import (
    BackendError,
    ChatEvent,
    ChatRequest,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)

RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0

log = logging.getLogger(__name__)


class OpenAICompatibleBackend:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: str | None = None,
        *,
        max_retries: int = 2,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        body = request.body()
        relayed = False
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                async with self.client.stream(
                    "POST", self.url, json=body, headers=self.headers
                ) as response:
                    if response.status_code != 200:
                        error = await _status_error(response, request.model)
                        if last or response.status_code not in RETRYABLE:
                            raise error
                        await asyncio.sleep(self._delay(attempt, response))
                        continue
                    async for event in _events(response):
                        relayed = True
                        yield event
                    return
            except httpx.TimeoutException as exc:
                if last or relayed:
                    raise BackendError("server_error", f"The model backend at {self.url} "
                                       f"timed out ({type(exc).__name__}).") from exc
                log.warning("model backend timed out (%r); retrying", exc)
            except httpx.TransportError as exc:
                if last or relayed:
                    raise BackendError("server_error", f"The model backend at {self.url} "
                                       f"could not be reached ({exc!r}).") from exc
                log.warning("model backend could not be reached (%r); retrying", exc)
            await asyncio.sleep(self._delay(attempt, None))

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = _retry_after(response) if response is not None else None
        if hinted is not None:
            return min(hinted, MAX_RETRY_AFTER)
        return float(self.backoff_seconds * 2**attempt * (1 - 0.25 * random.random()))


def _retry_after(response: httpx.Response) -> float | None:
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


async def _status_error(response: httpx.Response, model: str) -> BackendError:
    text = (await response.aread()).decode(errors="replace")
    try:
        detail = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = text[:500] or "(empty body)"
    said = f"The model backend answered HTTP {response.status_code} for model '{model}': {detail}"
    if response.status_code == 429:
        return BackendError("rate_limit_exceeded", said)
    if response.status_code >= 500 or response.status_code in (408, 409):
        return BackendError("server_error", said)
    return BackendError("invalid_prompt", said)


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's lines, split on bytes: a chunk per token makes httpx's text decoding and
    line splitting the largest cost of relaying, and every line we need is ASCII-framed."""
    pending = b""
    async for raw in response.aiter_raw():
        lines = (pending + raw).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")


async def _events(response: httpx.Response) -> AsyncIterator[ChatEvent]:
    """Parse the SSE body: `data: {chunk}` lines until `data: [DONE]`."""
    done = False
    async for line in _lines(response):
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
            raise BackendError("server_error", "The model backend sent a stream chunk that is "
                               f"not JSON: {data[:200].decode(errors='replace')!r}") from exc
        if isinstance(chunk, dict) and "error" in chunk:
            message = str((chunk.get("error") or {}).get("message", chunk["error"]))
            raise BackendError("server_error", f"The model backend failed mid-stream: {message}")
        for event in _chunk_events(chunk):
            yield event
    if not done:
        raise BackendError("server_error", "The model backend closed the stream before [DONE].")


def _chunk_events(chunk: Any) -> list[ChatEvent]:
    if not isinstance(chunk, dict):
        raise BackendError("server_error", f"The model backend sent a malformed chunk: {chunk!r}")
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
        events.append(Usage(int(usage.get("prompt_tokens", 0)),
                            int(usage.get("completion_tokens", 0))))
    return events
