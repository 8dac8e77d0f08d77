"""The `ChatBackend` boundary: what a run needs from a Chat Completions model, in our terms.

A backend turns a chat request into an async stream of `ChatEvent`s (text deltas, tool-call
deltas, usage, finish) and reports failures as `BackendError` with the `last_error` code a
run will carry (`rate_limit_exceeded`, `server_error`, `invalid_prompt`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ErrorCode = Literal["rate_limit_exceeded", "server_error", "invalid_prompt"]
# What a model call is for ("run run_abc"), named in the backend layer's log lines.
ASKED_FOR: ContextVar[str] = ContextVar("asked_for", default="a request")


@dataclass(frozen=True)
class ChatRequest:
    """One completion as the engine asks for it, in Chat Completions terms. `model` is the
    public name the client used; the model router picks the backend and its own name, and
    each backend maps the parameters to what it accepts (`ChatCompletionsBackend.body`)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_completion_tokens: int | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None

    def replace(self, **changes: Any) -> ChatRequest:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelProfile:
    """What the engine needs to know of the model behind a public name."""

    context_window: int
    vision: bool = False
    max_completion_tokens: int | None = None  # the backend's cap when the run sets none


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
    """A backend failed. `code` is the `last_error.code` a run ends with; `fallback`: another
    backend may be asked instead (it could not be reached, answered 5xx or 429, all before any
    token); `context_length`: the backend refused the prompt as longer than its window.
    `status`: the HTTP status the backend answered, if it answered one."""

    def __init__(
        self, code: ErrorCode, message: str, *, fallback: bool = False,
        context_length: bool = False, status: int | None = None, cut: bool = False,
    ) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.fallback = fallback
        self.context_length = context_length
        self.status = status
        self.cut = cut  # the backend began its answer (HTTP 200) and broke it off


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
