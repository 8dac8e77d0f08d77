"""The `ChatBackend` boundary: what a run needs from a Chat Completions model, in our terms.

A backend turns a chat request into an async stream of `ChatEvent`s (text deltas, tool-call
deltas, usage, finish) and reports failures as `BackendError` with the `last_error` code a
run will carry (`rate_limit_exceeded`, `server_error`, `invalid_prompt`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ErrorCode = Literal["rate_limit_exceeded", "server_error", "invalid_prompt"]


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body of `POST /chat/completions`, streaming with usage."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.tools:
            body["tools"] = self.tools
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        optional = {
            "tool_choice": self.tool_choice, "temperature": self.temperature,
            "top_p": self.top_p, "max_tokens": self.max_tokens,
            "response_format": self.response_format,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """A fragment of one tool call. `id` and `name` come with the first fragment of an index."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Finish:
    reason: str


ChatEvent = TextDelta | ToolCallDelta | Usage | Finish


class BackendError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


class ChatBackend(Protocol):
    def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Stream one completion; raises BackendError when the backend fails."""
        ...


class NoBackend:
    """Stands in when ASSISTANTS_BACKEND_BASE_URL is unset: every run fails saying so."""

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        raise BackendError(
            "server_error",
            "No model backend is configured: set ASSISTANTS_BACKEND_BASE_URL to an "
            "OpenAI-compatible Chat Completions endpoint.",
        )
        yield  # pragma: no cover - makes this an async generator
